// A small JSON reader for short documents the engine inspects: GeoParquet `geo` and GeoArrow
// extension metadata, and the header of each worker reply (a few hundred bytes per UDF call).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> items;
  std::vector<std::pair<std::string, JsonValue>> members;
  /// The value's text in the parsed document (valid while the document is).
  std::string_view raw;

  /// Returns the member called `key` of an object, or nullptr.
  const JsonValue* Find(std::string_view key) const;
  bool IsString() const { return type == Type::kString; }
  bool IsObject() const { return type == Type::kObject; }
};

/// Parses one JSON document. Errors name the byte offset of the fault.
Result<JsonValue> ParseJson(std::string_view text);

}  // namespace terrafuse
