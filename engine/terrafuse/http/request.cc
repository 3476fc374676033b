#include "terrafuse/http/request.h"

namespace terrafuse::http {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string_view> FindIn(const Params& params, std::string_view name) {
  for (const auto& [key, value] : params) {
    if (key == name) return std::string_view(value);
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view text, bool plus_as_space) {
  if (text.find('%') == std::string_view::npos && (!plus_as_space || text.find('+') == std::string_view::npos)) {
    return std::string(text);  // the common case: nothing to decode
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) {
        return InvalidArgument("Invalid percent-escape '", text.substr(i), "' in '", text,
                               "': '%' must be followed by two hex digits");
      }
      int high = HexValue(text[i + 1]);
      int low = HexValue(text[i + 2]);
      if (high < 0 || low < 0) {
        return InvalidArgument("Invalid percent-escape '", text.substr(i, 3), "' in '", text,
                               "': '%' must be followed by two hex digits");
      }
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<Target> ParseTarget(std::string_view target) {
  if (target.empty() || target.front() != '/') {
    return InvalidArgument("Invalid request target '", target, "': expected a path starting with '/'");
  }
  Target out;
  // Most targets have nothing to decode: one scan spares a decoding pass per part.
  const bool plain = target.find('%') == std::string_view::npos && target.find('+') == std::string_view::npos;
  auto decode = [plain](std::string_view text, bool plus_as_space, std::string* out) -> Status {
    if (plain) {
      out->assign(text);
      return Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(*out, PercentDecode(text, plus_as_space));
    return Status::OK();
  };
  size_t query_start = target.find('?');
  std::string_view raw_path = target.substr(0, query_start);
  if (size_t hash = raw_path.find('#'); hash != std::string_view::npos) raw_path = raw_path.substr(0, hash);
  ARROW_RETURN_NOT_OK(decode(raw_path, false, &out.path));

  // Segments are split before decoding: an encoded '/' belongs to its segment.
  out.segments.reserve(8);  // API and tile paths have 4 to 9: one allocation instead of four
  std::string_view rest = raw_path.substr(1);
  while (true) {
    size_t slash = rest.find('/');
    ARROW_RETURN_NOT_OK(decode(rest.substr(0, slash), false, &out.segments.emplace_back()));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (out.segments.size() == 1 && out.segments[0].empty()) out.segments.clear();  // "/"

  if (query_start == std::string_view::npos) return out;
  std::string_view query = target.substr(query_start + 1);
  if (size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2"
    size_t eq = pair.find('=');
    auto& [name, value] = out.query.emplace_back();
    ARROW_RETURN_NOT_OK(decode(pair.substr(0, eq), true, &name));
    if (eq != std::string_view::npos) ARROW_RETURN_NOT_OK(decode(pair.substr(eq + 1), true, &value));
  }
  return out;
}

std::optional<std::string_view> Request::Query(std::string_view name) const {
  return FindIn(query, name);
}

std::optional<std::string_view> Request::PathParam(std::string_view name) const {
  return FindIn(path_params, name);
}

}  // namespace terrafuse::http
