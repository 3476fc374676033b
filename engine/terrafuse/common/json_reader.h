// A small JSON reader for short documents the engine inspects: GeoParquet `geo` and GeoArrow
// extension metadata, the header of each worker reply (a few hundred bytes per UDF call) and
// UDF meta.json. The engine's own, because linking a JSON library beside pyarrow's
// libparquet (which exports simdjson symbols of its own version) mixes two copies in one process.
#pragma once

#include <cstdint>
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

/// Parses one JSON document (RFC 8259; numbers must fit a double, \u escapes of surrogates must
/// pair up). Bytes of strings are not checked to be UTF-8: callers that need it check the text.
/// Errors name the byte offset of the fault.
Result<JsonValue> ParseJson(std::string_view text);

/// Appends `value` to `*out` as a JSON string literal: quotes, backslashes, control characters
/// and DEL escaped, all other bytes (UTF-8) copied as they are: callers that take text from
/// outside check it with IsValidUtf8.
void AppendJsonString(std::string* out, std::string_view value);

/// The length (2 to 4) of the multi-byte UTF-8 sequence at `p` (a byte >= 0x80, before `end`),
/// storing its code point in `*code`; 0 when it is not valid UTF-8 (overlong forms,
/// surrogates and code points above U+10FFFF are not).
int Utf8Sequence(const unsigned char* p, const unsigned char* end, uint32_t* code);

/// True when `text` is valid UTF-8.
bool IsValidUtf8(std::string_view text);

/// Appends `text` as a JSON string literal of ASCII only, for HTTP header values such as
/// X-Fused-Metadata: other characters as \u escapes (surrogate pairs above U+FFFF), bytes that
/// are not UTF-8 (a text cut inside a character) as U+FFFD, one per byte.
void AppendAsciiJsonString(std::string* out, std::string_view text);

/// Returns `value` as compact JSON: no whitespace, strings escaped by AppendJsonString (so
/// `"\u00e9"` becomes `"é"`), numbers as written in the parsed document (`raw`), so they
/// round-trip exactly. Object members keep their order, repeated keys included.
std::string MinifyJson(const JsonValue& value);

}  // namespace terrafuse
