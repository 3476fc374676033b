// The catalog folder of a UDF on disk (shared/spec/udf-format.md §1.1): `<Name>.py`,
// `meta.json`, `README.MD` and one `<module>.py` per header module. Written whole or not at
// all; read back with the loader's rules.
#pragma once

#include <string>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/udf/udf_spec.h"

namespace terrafuse::udf {

struct FolderFile {
  std::string name;  // file name inside the folder
  std::string content;
};

/// Returns the files of the catalog folder of `spec`: `<Name>.py`, the header modules
/// `<module>.py`, `meta.json` (see WriteMetaJson) and `README.MD`
/// ("<!--fused:readme-->\n" + metadata "fused:description" + "\n"). Validates `spec` first.
Result<std::vector<FolderFile>> UdfFolderFiles(const UdfSpec& spec);

/// Writes the catalog folder of `spec` at `dir`: into a temporary directory under
/// `scratch_dir` (default: beside `dir`; same file system), then renamed into place, so
/// readers see the whole folder or none. When `dir` already holds exactly these files nothing
/// is written; when it holds other content (same code, new metadata) the two directories are
/// swapped atomically (renameat2 RENAME_EXCHANGE) and the old one is removed. Missing parent
/// directories are created (again, if removed meanwhile).
Status WriteUdfFolder(const UdfSpec& spec, const std::string& dir,
                      const std::string& scratch_dir = "");

/// Reads the catalog folder at `dir` (udf-format.md §1.6): meta.json with 1 step of type
/// "udf", the code inline (`code`) or from `source`, each header inline (`source_code`) or from
/// `source_file` (default `<module>.py`). The name defaults to the folder's name. File names
/// must stay inside the folder. Missing files are NotFound; a malformed meta.json is
/// InvalidArgument naming `dir`.
Result<UdfSpec> ReadUdfFolder(const std::string& dir);

}  // namespace terrafuse::udf
