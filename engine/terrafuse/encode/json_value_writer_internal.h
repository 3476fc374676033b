// Column-at-a-time JSON value writers behind the json and geojson encoders (and the csv
// encoder's nested columns): one writer per column, bound to each chunk in turn, appending
// the JSON text of one row per call.
#pragma once

#include <arrow/array.h>
#include <arrow/table.h>
#include <arrow/type.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/encode/geo_metadata.h"

namespace terrafuse::encode::internal {

class JsonValueWriter {
 public:
  virtual ~JsonValueWriter() = default;

  /// Points the writer at the next chunk of its column.
  void Bind(const std::shared_ptr<arrow::Array>& array) {
    array_ = array;
    DoBind(array);
  }

  /// Appends the JSON text of row `i` of the bound chunk: `null` for a null.
  Status Append(int64_t i, std::string* out) {
    if (array_->IsNull(i)) {
      out->append("null", 4);
      return Status::OK();
    }
    return AppendValue(i, out);
  }

 protected:
  virtual void DoBind(const std::shared_ptr<arrow::Array>& array) = 0;
  /// Appends row `i`, known not to be null.
  virtual Status AppendValue(int64_t i, std::string* out) = 0;

  std::shared_ptr<arrow::Array> array_;
};

/// How WKB geometry is written: as a WKT string, or as a GeoJSON geometry object.
enum class GeometryStyle { kWkt, kGeoJson };

/// Returns a writer for values of `type`: numbers, strings, bools, ISO 8601 dates, times and
/// timestamps (UTC with "Z" when the type has a time zone), base64 binary, arrays for lists
/// and objects for structs and maps. NotImplemented naming the type for intervals and unions.
Result<std::unique_ptr<JsonValueWriter>> MakeJsonValueWriter(const arrow::DataType& type);

/// Returns a writer of WKB values (binary, large_binary or binary_view) in `style`.
Result<std::unique_ptr<JsonValueWriter>> MakeGeometryWriter(const arrow::DataType& type,
                                                            GeometryStyle style);

/// One writer per column of `schema`: geometry columns (per `geo`) in `style`, the others
/// by type. `format` names the output format in errors, which also name the column.
Result<std::vector<std::unique_ptr<JsonValueWriter>>> MakeColumnWriters(const arrow::Schema& schema,
                                                                        const GeoInfo& geo,
                                                                        GeometryStyle style,
                                                                        std::string_view format);

/// A guess of the JSON text size of `table` (numbers and WKB take 2-3x their binary size),
/// to reserve the output once instead of growing it by copies.
int64_t EstimateJsonBytes(const arrow::Table& table, int64_t bytes_per_row);

/// Wraps the error of writing row `row` of column `column` for `format`.
Status RowError(const Status& status, int64_t row, std::string_view column,
                std::string_view format);

}  // namespace terrafuse::encode::internal
