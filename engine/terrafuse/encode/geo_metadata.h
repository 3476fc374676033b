// Which columns of a table hold geometry, read from the GeoParquet `geo` schema metadata
// (what the worker protocol sends) or, failing that, from GeoArrow extension metadata on the
// fields (`ARROW:extension:name` = `geoarrow.wkb`, what GeoDataFrame.to_arrow produces).
#pragma once

#include <arrow/array.h>
#include <arrow/type.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::encode {

struct GeometryColumn {
  /// Position of the column in the schema.
  int field_index = -1;
  std::string name;
  /// "WKB", or a GeoArrow native encoding such as "point" or "polygon".
  std::string encoding = "WKB";
  /// The CRS as JSON text (PROJJSON object or string), or empty when not given.
  std::string crs_json;
};

struct GeoInfo {
  /// In schema order.
  std::vector<GeometryColumn> columns;
  /// Index into `columns` of the primary geometry column, or -1 when there is none.
  int primary = -1;
  /// Whether the schema carries `geo` metadata (else it was derived from the fields).
  bool has_geo_metadata = false;

  const GeometryColumn* Primary() const { return primary < 0 ? nullptr : &columns[primary]; }
  /// Returns the geometry column at schema position `field_index`, or nullptr.
  const GeometryColumn* FindByField(int field_index) const;
};

/// Finds the geometry columns of `schema`. Columns named in `geo` but absent from the schema
/// are skipped. Fails with InvalidArgument when `geo` is not valid JSON or not an object.
Result<GeoInfo> ReadGeoInfo(const arrow::Schema& schema);

/// Checks that every geometry column is WKB stored as binary, large_binary or binary_view,
/// as the text formats need; `format` names the output format in the error.
Status RequireWkb(const GeoInfo& info, const arrow::Schema& schema, std::string_view format);

/// Returns GeoParquet 1.1.0 `geo` metadata (JSON) describing `info`'s columns.
std::string MakeGeoMetadata(const GeoInfo& info);

/// Returns the storage array of an extension array, else `array` itself.
const arrow::Array& StorageOf(const arrow::Array& array);
const arrow::DataType& StorageTypeOf(const arrow::DataType& type);

}  // namespace terrafuse::encode
