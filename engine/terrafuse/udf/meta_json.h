// meta.json of the catalog folder format (shared/spec/udf-format.md §1.3), written and read.
// The only place that parses JSON in this subsystem (with the engine's reader,
// common/json_reader.h).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/json_reader.h"
#include "terrafuse/common/status.h"
#include "terrafuse/udf/udf_spec.h"

namespace terrafuse::udf {

/// The name of the meta.json format version written ("0.0.3").
inline constexpr const char* kMetaJsonVersion = "0.0.3";
/// The only UDF type of the format ("geopandas_v2").
inline constexpr const char* kUdfType = "geopandas_v2";

/// One entry of `udf.headers`: a module given inline (`source_code`) or by file (`source_file`).
struct MetaJsonHeader {
  std::string module_name;
  std::optional<std::string> source_code;
  std::optional<std::string> source_file;
};

/// The `job_config.steps[0].udf` object of a meta.json, before its files are read.
struct MetaJsonUdf {
  std::string name;  // empty when meta.json has none
  std::string entrypoint = "udf";
  std::optional<std::string> code;    // inline code
  std::optional<std::string> source;  // file holding the code
  std::vector<MetaJsonHeader> headers;
  std::string metadata_json = "{}";    // minified JSON object
  std::string parameters_json = "{}";  // minified JSON object
};

/// Returns the meta.json text of `spec`: format 0.0.3, one `udf` step of type geopandas_v2,
/// `"source": "<Name>.py"`, headers as `{"module_name", "source_file": "<module>.py"}`, and
/// `udf.metadata` = {"fused:name", "fused:slug", "fused:udfType": "auto", "fused:id": null}
/// updated with the spec's metadata (as `Udf.meta_json()` in python/fused/_udf.py).
/// Indented by 4 spaces, ending in a newline. Fails when metadata or parameters are not
/// JSON objects.
Result<std::string> WriteMetaJson(const UdfSpec& spec);

/// Parses a meta.json with the loader's rules (udf-format.md §1.6): a `job_config` object,
/// exactly 1 step, of type "udf", a `udf` object of type geopandas_v2 (when given), `code` or
/// `source`, headers each with a `module_name`. Errors name `origin` and the fault.
Result<MetaJsonUdf> ParseMetaJson(std::string_view text, std::string_view origin);

/// Parses `text` as a JSON object and returns it minified; empty text gives "{}".
/// Fails with InvalidArgument naming `what` when it is not JSON or not an object.
Result<std::string> NormalizeJsonObject(std::string_view text, std::string_view what);

/// Returns the string value of `key` in the JSON object `object_json`, or "" when absent or not
/// a string.
std::string JsonStringMember(std::string_view object_json, std::string_view key);

}  // namespace terrafuse::udf
