#include "terrafuse/common/json_reader.h"

#include <array>
#include <charconv>

namespace terrafuse {

namespace {

constexpr int kMaxDepth = 128;

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Status Document(JsonValue* out) {
    ARROW_RETURN_NOT_OK(Value(out, 0));
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the document");
    return Status::OK();
  }

 private:
  Status Error(std::string_view what) const {
    return InvalidArgument("invalid JSON at byte ", pos_, ": ", what);
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Status Value(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (pos_ >= text_.size()) return Error("unexpected end");
    size_t start = pos_;
    char c = text_[pos_];
    Status st;
    if (c == '{') {
      st = Object(out, depth);
    } else if (c == '[') {
      st = Array(out, depth);
    } else if (c == '"') {
      out->type = JsonValue::Type::kString;
      st = String(&out->string);
    } else if (Consume("true")) {
      out->type = JsonValue::Type::kBool;
      out->boolean = true;
    } else if (Consume("false")) {
      out->type = JsonValue::Type::kBool;
    } else if (Consume("null")) {
      out->type = JsonValue::Type::kNull;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      st = Number(out);
    } else {
      return Error("unexpected character");
    }
    ARROW_RETURN_NOT_OK(st);
    out->raw = text_.substr(start, pos_ - start);
    return Status::OK();
  }

  Status Object(JsonValue* out, int depth) {
    out->type = JsonValue::Type::kObject;
    out->members.reserve(8);  // one allocation for the small objects read on hot paths
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Status::OK();
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a member name");
      std::string key;
      ARROW_RETURN_NOT_OK(String(&key));
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Error("expected ':'");
      ++pos_;
      JsonValue value;
      ARROW_RETURN_NOT_OK(Value(&value, depth + 1));
      out->members.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return Status::OK();
      }
      return Error("expected ',' or '}'");
    }
  }

  Status Array(JsonValue* out, int depth) {
    out->type = JsonValue::Type::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Status::OK();
    }
    while (true) {
      JsonValue value;
      ARROW_RETURN_NOT_OK(Value(&value, depth + 1));
      out->items.push_back(std::move(value));
      SkipSpace();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Status::OK();
      }
      return Error("expected ',' or ']'");
    }
  }

  Status Hex4(uint32_t* out) {
    if (pos_ + 4 > text_.size()) return Error("truncated \\u escape");
    *out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      *out <<= 4;
      if (c >= '0' && c <= '9')
        *out |= c - '0';
      else if (c >= 'a' && c <= 'f')
        *out |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        *out |= c - 'A' + 10;
      else
        return Error("bad \\u escape");
    }
    return Status::OK();
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  Status String(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      // Copy the run up to the next quote, backslash or control character at once.
      size_t run = pos_;
      while (run < text_.size() && text_[run] != '"' && text_[run] != '\\' &&
             static_cast<unsigned char>(text_[run]) >= 0x20) {
        ++run;
      }
      out->append(text_.data() + pos_, run - pos_);
      pos_ = run;
      if (pos_ >= text_.size()) return Error("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return Status::OK();
      if (c != '\\') return Error("control character in string");
      if (pos_ >= text_.size()) return Error("unterminated string");
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          ARROW_RETURN_NOT_OK(Hex4(&cp));
          // A surrogate must come as a high-low pair: alone it is no character, and its
          // UTF-8 form would be invalid text.
          if (cp >= 0xD800 && cp < 0xDC00 && text_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t low = 0;
            ARROW_RETURN_NOT_OK(Hex4(&low));
            if (low < 0xDC00 || low >= 0xE000) return Error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xD800 && cp < 0xE000) {
            return Error("unpaired surrogate");
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return Error("bad escape");
      }
    }
  }

  // Skips digits; returns how many.
  size_t Digits() {
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ - start;
  }

  // JSON's grammar exactly (no leading zeros, '+', '.5' or '1.'), since `raw` may be copied
  // into other documents as it is.
  Status Number(JsonValue* out) {
    size_t start = pos_;
    auto bad = [&] {
      pos_ = start;
      return Error("bad number");
    };
    if (text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
      if (Digits() > 0) return bad();  // a leading zero
    } else if (Digits() == 0) {
      return bad();
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (Digits() == 0) return bad();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (Digits() == 0) return bad();
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    auto [end, error] = std::from_chars(first, last, out->number);
    if (error != std::errc() || end != last) {
      pos_ = start;
      return Error("number out of range");
    }
    out->type = JsonValue::Type::kNumber;
    return Status::OK();
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const auto& [name, value] : members) {
    if (name == key) return &value;
  }
  return nullptr;
}

Result<JsonValue> ParseJson(std::string_view text) {
  JsonValue value;
  ARROW_RETURN_NOT_OK(Parser(text).Document(&value));
  return value;
}

namespace {

// For each byte: 0 = copy as is, 'u' = \u00XX, else the letter after the backslash.
constexpr std::array<char, 256> MakeEscapeTable() {
  std::array<char, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = 'u';
  table[0x7f] = 'u';
  table['\b'] = 'b';
  table['\f'] = 'f';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  table['"'] = '"';
  table['\\'] = '\\';
  return table;
}
constexpr std::array<char, 256> kEscape = MakeEscapeTable();

}  // namespace

void AppendJsonString(std::string* out, std::string_view value) {
  // Runs of bytes that need no escape are copied at once: the encoders write every string
  // value of a table through here.
  out->push_back('"');
  const char* run = value.data();
  const char* end = value.data() + value.size();
  for (const char* p = run; p < end; ++p) {
    const char escape = kEscape[static_cast<unsigned char>(*p)];
    if (escape == 0) continue;
    out->append(run, p);
    if (escape == 'u') {
      static constexpr char kHex[] = "0123456789abcdef";
      const char u[6] = {'\\', 'u', '0', '0', kHex[(*p >> 4) & 0xF], kHex[*p & 0xF]};
      out->append(u, 6);
    } else {
      const char pair[2] = {'\\', escape};
      out->append(pair, 2);
    }
    run = p + 1;
  }
  out->append(run, end);
  out->push_back('"');
}

int Utf8Sequence(const unsigned char* p, const unsigned char* end, uint32_t* code) {
  const unsigned char c = *p;
  const int length = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
  if (length == 0 || end - p < length) return 0;
  uint32_t value = length == 2 ? (c & 0x1f) : length == 3 ? (c & 0x0f) : (c & 0x07);
  for (int i = 1; i < length; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    value = (value << 6) | (p[i] & 0x3f);
  }
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};  // shorter forms
  if (value < kMinimum[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) return 0;
  *code = value;
  return length;
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    if (*p < 0x80) {
      ++p;
      continue;
    }
    uint32_t code;
    const int length = Utf8Sequence(p, end, &code);
    if (length == 0) return false;
    p += length;
  }
  return true;
}

namespace {

void AppendMinified(std::string* out, const JsonValue& value) {
  switch (value.type) {
    case JsonValue::Type::kNull: *out += "null"; break;
    case JsonValue::Type::kBool: *out += value.boolean ? "true" : "false"; break;
    case JsonValue::Type::kNumber:
      if (!value.raw.empty()) {
        *out += value.raw;
      } else {  // a value built in code: the shortest text that reads back the same
        char buf[32];
        out->append(buf, std::to_chars(buf, buf + sizeof(buf), value.number).ptr);
      }
      break;
    case JsonValue::Type::kString: AppendJsonString(out, value.string); break;
    case JsonValue::Type::kArray:
      out->push_back('[');
      for (size_t i = 0; i < value.items.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendMinified(out, value.items[i]);
      }
      out->push_back(']');
      break;
    case JsonValue::Type::kObject:
      out->push_back('{');
      for (size_t i = 0; i < value.members.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendJsonString(out, value.members[i].first);
        out->push_back(':');
        AppendMinified(out, value.members[i].second);
      }
      out->push_back('}');
      break;
  }
}

}  // namespace

void AppendAsciiJsonString(std::string* out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto escape = [out](uint32_t unit) {
    const char u[6] = {'\\', 'u', kHex[unit >> 12], kHex[(unit >> 8) & 15], kHex[(unit >> 4) & 15],
                       kHex[unit & 15]};
    out->append(u, 6);
  };
  out->push_back('"');
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out->push_back(static_cast<char>(c));
      ++p;
      continue;
    }
    if (c < 0x80) {
      if (c == '"' || c == '\\') {
        out->push_back('\\');
        out->push_back(static_cast<char>(c));
      } else if (c == '\n') {
        out->append("\\n");
      } else {
        escape(c);
      }
      ++p;
      continue;
    }
    uint32_t code;
    const int length = Utf8Sequence(p, end, &code);
    if (length == 0) {
      escape(0xfffd);
      ++p;
      continue;
    }
    if (code >= 0x10000) {
      escape(0xd800 + ((code - 0x10000) >> 10));
      escape(0xdc00 + ((code - 0x10000) & 0x3ff));
    } else {
      escape(code);
    }
    p += length;
  }
  out->push_back('"');
}

std::string MinifyJson(const JsonValue& value) {
  std::string out;
  out.reserve(value.raw.size());
  AppendMinified(&out, value);
  return out;
}

}  // namespace terrafuse
