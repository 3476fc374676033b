// Column-at-a-time text writers behind the html, xml and excel encoders: the escaped text
// of one cell per call. Values take the forms of the json encoder without its quoting:
// geometry as WKT, ISO 8601 dates and times, base64 binary, nested values as JSON text.
#pragma once

#include <arrow/array.h>
#include <arrow/type.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/encode/geo_metadata.h"

namespace terrafuse::encode::internal {

/// Appends `s` as XML (or HTML) text content: escapes `&`, `<`, `>` and carriage returns
/// (`&#13;`, which parsers would otherwise turn into newlines), and replaces invalid UTF-8
/// and the characters XML 1.0 cannot hold (controls other than tab, newline and carriage
/// return; U+FFFE, U+FFFF) with U+FFFD.
void AppendXmlText(std::string* out, std::string_view s);

/// How NaN and the infinities are spelled ("NaN", "inf", "-inf").
struct NonFiniteText {
  std::string_view nan;
  std::string_view infinity;
  std::string_view negative_infinity;
};

class CellTextWriter {
 public:
  virtual ~CellTextWriter() = default;

  /// Points the writer at the next chunk of its column.
  void Bind(const std::shared_ptr<arrow::Array>& array) {
    array_ = array;
    DoBind(array);
  }
  bool IsNull(int64_t i) const { return array_->IsNull(i); }
  /// Appends the text of row `i` of the bound chunk, known not to be null.
  virtual Status Append(int64_t i, std::string* out) = 0;

 protected:
  virtual void DoBind(const std::shared_ptr<arrow::Array>& array) = 0;

  std::shared_ptr<arrow::Array> array_;
};

/// Returns a text writer for values of `type`; NotImplemented naming the type for those
/// with no JSON form (intervals, unions).
Result<std::unique_ptr<CellTextWriter>> MakeCellTextWriter(const arrow::DataType& type,
                                                           const NonFiniteText& non_finite);

/// Returns a writer of the WKT of WKB values (binary, large_binary or binary_view).
Result<std::unique_ptr<CellTextWriter>> MakeWktCellWriter(const arrow::DataType& type);

/// One writer per column of `schema`: WKT for geometry columns (per `geo`), else by type.
/// Errors name the column and `format`.
Result<std::vector<std::unique_ptr<CellTextWriter>>> MakeCellTextWriters(
    const arrow::Schema& schema, const GeoInfo& geo, const NonFiniteText& non_finite,
    std::string_view format);

}  // namespace terrafuse::encode::internal
