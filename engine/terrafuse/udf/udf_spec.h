// The in-memory UDF: code, entrypoint, header modules and metadata, as the registry stores it
// and the workers run it. Its version is a content hash of what defines its behaviour.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::udf {

/// A module importable by name inside a UDF (`import utils`).
struct UdfHeader {
  std::string module_name;
  std::string source_code;

  bool operator==(const UdfHeader&) const = default;
};

struct UdfSpec {
  /// The slug: 1 to 100 of [A-Za-z0-9_-]; also the folder and `<Name>.py` file name.
  std::string name;
  /// Python source holding the entrypoint function (UTF-8).
  std::string code;
  /// Name of the function to call.
  std::string entrypoint = "udf";
  std::vector<UdfHeader> headers;
  /// `udf.metadata` of meta.json: a JSON object as text ("fused:udfType", "fused:description",
  /// ...).
  std::string metadata_json = "{}";
  /// `udf.parameters` of meta.json: bound parameter values, a JSON object as text.
  std::string parameters_json = "{}";

  bool operator==(const UdfSpec&) const = default;
};

/// Returns the version of `spec`: XXH3-128 (32 lowercase hex characters) over a framed
/// encoding of code, entrypoint and headers (module name and source, in order). Metadata,
/// parameters and the name are not part of it. See docs/design/registry.md for the framing.
std::string UdfVersion(const UdfSpec& spec);

/// Validates a UDF name: 1 to 100 characters of letters, digits, '_' or '-'.
Status ValidateUdfName(std::string_view name);

/// Validates an owner: an e-mail-like name ("local@terrafuse"), at most 254 characters:
/// letters, digits, '.', '_', '+' or '-' on both sides of exactly one '@'.
Status ValidateOwner(std::string_view owner);

/// Validates a version string: 32 lowercase hex characters.
Status ValidateVersion(std::string_view version);

/// Validates everything the registry needs before writing `spec` to disk: the name, a Python
/// identifier as entrypoint, non-empty UTF-8 code, header module names (identifiers, unique,
/// not clashing with `<Name>.py`) with UTF-8 sources, and metadata/parameters that are JSON
/// objects. Errors name the UDF and the offending field.
Status ValidateUdfSpec(const UdfSpec& spec);

/// Returns `value` quoted for an error message, cut to `max_chars` with "..." when longer.
std::string QuoteForMessage(std::string_view value, size_t max_chars = 120);

}  // namespace terrafuse::udf
