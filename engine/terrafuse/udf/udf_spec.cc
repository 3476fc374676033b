#include "terrafuse/udf/udf_spec.h"

#include <cstdint>
#include <set>

#include "terrafuse/common/hash.h"
#include "terrafuse/udf/meta_json.h"

namespace terrafuse::udf {

namespace {

constexpr size_t kMaxNameLength = 100;
constexpr size_t kMaxOwnerLength = 254;

bool IsAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsPythonIdentifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    if (!IsAsciiAlnum(c) && c != '_') return false;
  }
  return true;
}

// Feeds one length-prefixed field, so ("ab", "c") and ("a", "bc") hash differently.
void Frame(Hasher& h, std::string_view value) {
  uint64_t size = value.size();
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(size >> (8 * i));
  h.Update(le, sizeof(le));
  h.Update(value);
}

}  // namespace

std::string QuoteForMessage(std::string_view value, size_t max_chars) {
  std::string out = "'";
  if (value.size() > max_chars) {
    out.append(value.substr(0, max_chars));
    out += "...";
  } else {
    out.append(value);
  }
  out += "'";
  return out;
}

std::string UdfVersion(const UdfSpec& spec) {
  Hasher h;
  Frame(h, "terrafuse.udf.v1");
  Frame(h, spec.code);
  Frame(h, spec.entrypoint);
  Frame(h, std::to_string(spec.headers.size()));
  for (const UdfHeader& header : spec.headers) {
    Frame(h, header.module_name);
    Frame(h, header.source_code);
  }
  return h.HexDigest();
}

Status ValidateUdfName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kMaxNameLength;
  for (char c : name) ok = ok && (IsAsciiAlnum(c) || c == '_' || c == '-');
  if (!ok) {
    return InvalidArgument("Invalid UDF name ", QuoteForMessage(name),
                           ": use 1 to 100 letters, digits, '_' or '-'");
  }
  return Status::OK();
}

Status ValidateOwner(std::string_view owner) {
  auto part_ok = [](std::string_view part, bool domain) {
    if (part.empty()) return false;
    for (char c : part) {
      bool allowed = IsAsciiAlnum(c) || c == '.' || c == '-' || (!domain && (c == '_' || c == '+'));
      if (!allowed) return false;
    }
    return part.front() != '.' && part.back() != '.';
  };
  size_t at = owner.find('@');
  bool ok = owner.size() <= kMaxOwnerLength && at != std::string_view::npos &&
            owner.find('@', at + 1) == std::string_view::npos &&
            part_ok(owner.substr(0, at), false) && part_ok(owner.substr(at + 1), true);
  if (!ok) {
    return InvalidArgument("Invalid owner ", QuoteForMessage(owner),
                           ": expected an e-mail-like name such as 'local@terrafuse' (letters, "
                           "digits, '.', '_', '+' or '-' around one '@', at most 254 characters)");
  }
  return Status::OK();
}

Status ValidateVersion(std::string_view version) {
  bool ok = version.size() == 32;
  for (char c : version) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok) {
    return InvalidArgument("Invalid UDF version ", QuoteForMessage(version, 40),
                           ": expected 32 lowercase hex characters");
  }
  return Status::OK();
}

Status ValidateUdfSpec(const UdfSpec& spec) {
  ARROW_RETURN_NOT_OK(ValidateUdfName(spec.name));
  const std::string udf = "UDF '" + spec.name + "'";
  if (!IsPythonIdentifier(spec.entrypoint)) {
    return InvalidArgument("Invalid entrypoint ", QuoteForMessage(spec.entrypoint), " of ", udf,
                           ": expected a Python function name");
  }
  if (spec.code.empty()) return InvalidArgument(udf, " has no code");
  if (!IsValidUtf8(spec.code)) return InvalidArgument("Code of ", udf, " is not valid UTF-8");
  std::set<std::string_view> modules;
  for (const UdfHeader& header : spec.headers) {
    if (!IsPythonIdentifier(header.module_name)) {
      return InvalidArgument("Invalid header module name ", QuoteForMessage(header.module_name),
                             " of ", udf, ": expected a Python module name (letters, digits, '_')");
    }
    if (header.module_name == spec.name) {
      return InvalidArgument("Header module '", header.module_name, "' of ", udf,
                             " clashes with the UDF's own source file '", spec.name,
                             ".py': rename the module");
    }
    if (!modules.insert(header.module_name).second) {
      return InvalidArgument("Header module '", header.module_name, "' appears twice in ", udf);
    }
    if (!IsValidUtf8(header.source_code)) {
      return InvalidArgument("Source of header module '", header.module_name, "' of ", udf,
                             " is not valid UTF-8");
    }
  }
  ARROW_RETURN_NOT_OK(NormalizeJsonObject(spec.metadata_json, "metadata of " + udf).status());
  ARROW_RETURN_NOT_OK(NormalizeJsonObject(spec.parameters_json, "parameters of " + udf).status());
  return Status::OK();
}

}  // namespace terrafuse::udf
