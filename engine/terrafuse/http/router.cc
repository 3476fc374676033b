#include "terrafuse/http/router.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <exception>

#include "terrafuse/http/error_response.h"
#include "terrafuse/http/log.h"

namespace terrafuse::http {

namespace {

// Methods a route can be registered for; HEAD and OPTIONS are derived.
constexpr std::array<std::string_view, 5> kRoutableMethods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
// The order methods are listed in Allow headers and error messages.
constexpr std::array<std::string_view, 7> kMethodOrder = {"GET",   "HEAD",   "POST", "PUT",
                                                          "PATCH", "DELETE", "OPTIONS"};
constexpr std::string_view kExtensionSuffix = "[.ext]";
// A pattern ending in "/*" matches its prefix and any path below it (static files).
constexpr std::string_view kPrefixSuffix = "/*";
// An extension is 1 to 16 letters or digits: "mvt", "parquet", "geojson".
constexpr size_t kMaxExtensionLength = 16;

bool IsParamName(std::string_view name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Splits "1548.mvt" into ("1548", "mvt"); returns false when there is no extension.
bool SplitExtension(std::string_view value, std::string_view* stem, std::string_view* extension) {
  size_t dot = value.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  std::string_view ext = value.substr(dot + 1);
  if (ext.empty() || ext.size() > kMaxExtensionLength) return false;
  if (!std::all_of(ext.begin(), ext.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); })) {
    return false;
  }
  *stem = value.substr(0, dot);
  *extension = ext;
  return true;
}

std::string JoinPath(const std::vector<std::string>& segments) {
  std::string path;
  for (const auto& segment : segments) path += "/" + segment;
  return path.empty() ? "/" : path;
}

std::string JoinMethods(const std::vector<std::string>& methods) {
  std::string out;
  for (const auto& method : methods) out += (out.empty() ? "" : ", ") + method;
  return out;
}

}  // namespace

Status Router::Add(std::string_view method, std::string_view pattern, Handler handler, FastHandler fast,
                   AsyncHandler async) {
  auto malformed = [&](std::string_view why) {
    return InvalidArgument("Invalid route pattern '", pattern, "': ", why);
  };
  if (std::find(kRoutableMethods.begin(), kRoutableMethods.end(), method) == kRoutableMethods.end()) {
    return InvalidArgument("Invalid method '", method, "' for route '", pattern,
                           "': use GET, POST, PUT, PATCH or DELETE (HEAD and OPTIONS are automatic)");
  }
  if (!handler) return InvalidArgument("Route ", method, " '", pattern, "' has no handler");
  if (pattern.empty() || pattern.front() != '/') return malformed("it must start with '/'");

  if ((fast || async) && method != "GET") {
    return InvalidArgument("Route ", method, " '", pattern, "': only GET routes answer fast or deferred");
  }
  Route route{std::string(method), std::string(pattern), {}, false, false, std::move(handler), std::move(fast),
              std::move(async)};
  std::string_view rest = pattern.substr(1);
  if (pattern.size() > kPrefixSuffix.size() && pattern.ends_with(kPrefixSuffix)) {
    route.prefix = true;
    rest.remove_suffix(kPrefixSuffix.size());
  }
  if (rest.size() >= kExtensionSuffix.size() && rest.ends_with(kExtensionSuffix)) {
    route.allows_extension = true;
    rest.remove_suffix(kExtensionSuffix.size());
  }
  while (!rest.empty() || (pattern.size() > 1 && route.segments.empty())) {
    size_t slash = rest.find('/');
    std::string_view text = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (text.empty() || (slash != std::string_view::npos && rest.empty())) {
      return malformed("empty segment (a doubled or trailing '/')");
    }
    Segment segment;
    if (text.front() == '{') {
      if (text.back() != '}' || !IsParamName(text.substr(1, text.size() - 2))) {
        return malformed("parameters are whole segments named like '{token}'");
      }
      segment = {std::string(text.substr(1, text.size() - 2)), true};
      for (const auto& other : route.segments) {
        if (other.is_param && other.text == segment.text) {
          return malformed("parameter '{" + segment.text + "}' appears twice");
        }
      }
    } else if (text.find_first_of("{}[]%?#") != std::string_view::npos) {
      return malformed("literal segment '" + std::string(text) +
                       "' contains one of {}[]%?# ('[.ext]' may only end the pattern)");
    } else {
      segment = {std::string(text), false};
    }
    route.segments.push_back(std::move(segment));
  }
  if (route.allows_extension && route.segments.empty()) return malformed("'[.ext]' needs a segment to follow");

  // Two routes with the same method whose segments agree on every literal (parameter
  // names aside) would make one of them unreachable.
  for (const auto& other : routes_) {
    bool same_shape = other.method == route.method && other.segments.size() == route.segments.size() &&
                      other.prefix == route.prefix;
    for (size_t i = 0; same_shape && i < route.segments.size(); ++i) {
      const Segment& a = route.segments[i];
      const Segment& b = other.segments[i];
      same_shape = a.is_param == b.is_param && (a.is_param || a.text == b.text);
    }
    if (same_shape) {
      return InvalidArgument("Duplicate route ", method, " '", pattern, "': it has the same shape as '",
                             other.pattern, "'");
    }
  }
  routes_.push_back(std::move(route));
  const Route& added = routes_.back();
  if (added.prefix) {
    prefix_routes_.push_back(routes_.size() - 1);
  } else {
    if (by_length_.size() <= added.segments.size()) by_length_.resize(added.segments.size() + 1);
    by_length_[added.segments.size()].push_back(routes_.size() - 1);
  }
  return Status::OK();
}

bool Router::MatchRoute(const Route& route, const std::vector<std::string>& segments, Match* match) {
  if (route.prefix ? segments.size() < route.segments.size() : route.segments.size() != segments.size()) {
    return false;
  }
  match->params.clear();
  match->extension.clear();
  for (size_t i = 0; i < route.segments.size(); ++i) {
    std::string_view value = segments[i];
    const bool last = i + 1 == segments.size();
    std::string_view stem, extension;
    if (last && route.allows_extension && SplitExtension(value, &stem, &extension)) {
      // "file.csv" matches the literal "file"; a parameter takes the stem.
      if (!route.segments[i].is_param && route.segments[i].text == value) {
        stem = value;  // a literal that itself contains a dot
        extension = {};
      }
      value = stem;
      match->extension = std::string(extension);
    }
    const Segment& segment = route.segments[i];
    if (segment.is_param) {
      if (value.empty()) return false;
      match->params.emplace_back(segment.text, std::string(value));
    } else if (segment.text != value) {
      return false;
    }
  }
  match->handler = &route.handler;
  match->upload = route.upload ? &route.upload : nullptr;
  match->fast = route.fast ? &route.fast : nullptr;
  match->async = route.async ? &route.async : nullptr;
  return true;
}

Status Router::AddUpload(std::string_view method, std::string_view pattern, UploadHandler handler) {
  if (method != "POST" && method != "PUT") {
    return InvalidArgument("Invalid method '", method, "' for upload route '", pattern, "': use POST or PUT");
  }
  if (!handler) return InvalidArgument("Upload route ", method, " '", pattern, "' has no handler");
  // Reached only if a session dispatched it as a plain route, which would be a server bug.
  ARROW_RETURN_NOT_OK(Add(method, pattern, [](const Request&, Services&) -> Result<Response> {
    return Internal("Upload route dispatched without its body stream");
  }));
  routes_.back().upload = std::move(handler);
  return Status::OK();
}

std::optional<Router::Match> Router::Resolve(Request& request) const {
  if (request.route != nullptr) {  // matched before: the request's parameters are filled
    const Route& route = *static_cast<const Route*>(request.route);
    Match match;
    match.handler = &route.handler;
    match.upload = route.upload ? &route.upload : nullptr;
    match.fast = route.fast ? &route.fast : nullptr;
    match.async = route.async ? &route.async : nullptr;
    return match;
  }
  const Route* route = nullptr;
  Result<Match> match = Find(request.method, request.segments, &route);
  if (!match.ok()) return std::nullopt;
  request.path_params = std::move(match->params);
  request.extension = std::move(match->extension);
  request.route = route;
  return std::move(*match);
}

const UploadHandler* Router::FindUpload(Request& request) const {
  if (request.method != "POST" && request.method != "PUT") return nullptr;
  std::optional<Match> match = Resolve(request);
  return match ? match->upload : nullptr;
}

Result<Router::Match> Router::Find(std::string_view method, const std::vector<std::string>& segments,
                                   const Route** found) const {
  const std::string_view lookup = method == "HEAD" ? std::string_view("GET") : method;
  const Route* best = nullptr;
  Match best_match;
  bool path_known = false;
  Match match;
  // Only routes of the path's length, and prefix routes, can match (this runs on every
  // request; each list is in the order the routes were added).
  static const std::vector<size_t> kNone;
  const std::vector<size_t>& same_length = segments.size() < by_length_.size() ? by_length_[segments.size()] : kNone;
  for (const std::vector<size_t>* candidates : {&same_length, &prefix_routes_}) {
    for (size_t index : *candidates) {
      const Route& route = routes_[index];
      // Another method's route only tells whether the path exists (404 or 405).
      if (path_known && route.method != lookup) continue;
      if (!MatchRoute(route, segments, &match)) continue;
      path_known = true;
      if (route.method != lookup) continue;
      // Prefer the route with a literal at the first position where the two differ.
      bool better = best == nullptr;
      bool differ = false;
      for (size_t i = 0; !better && i < std::min(route.segments.size(), best->segments.size()); ++i) {
        if (route.segments[i].is_param != best->segments[i].is_param) {
          better = !route.segments[i].is_param;
          differ = true;
          break;
        }
      }
      // A "/*" prefix route loses to any route that spells the path out.
      if (!better && !differ && best->prefix && !route.prefix) better = true;
      if (better) {
        best = &route;
        best_match = std::move(match);
      }
    }
  }
  if (best != nullptr) {
    if (found) *found = best;
    return best_match;
  }
  const std::string path = JoinPath(segments);
  if (!path_known) return NotFound("No route for '", path, "'");
  return MethodNotAllowed("Method '", method, "' is not allowed on '", path, "': use ",
                          JoinMethods(AllowedMethods(segments)));
}

std::vector<std::string> Router::AllowedMethods(const std::vector<std::string>& segments) const {
  std::vector<std::string_view> found;
  for (const auto& route : routes_) {
    Match match;
    if (!MatchRoute(route, segments, &match)) continue;
    found.push_back(route.method);
    if (route.method == "GET") found.push_back("HEAD");
  }
  std::vector<std::string> allowed;
  if (found.empty()) return allowed;
  found.push_back("OPTIONS");
  for (std::string_view method : kMethodOrder) {
    if (std::find(found.begin(), found.end(), method) != found.end()) allowed.emplace_back(method);
  }
  return allowed;
}

Response Router::Dispatch(Request& request, Services& services) const {
  try {
    if (request.method == "OPTIONS") {
      // CORS preflight (and plain OPTIONS): which methods and headers a browser may use.
      std::vector<std::string> allowed = AllowedMethods(request.segments);
      if (allowed.empty()) return ErrorResponse(NotFound("No route for '", request.path, "'"), request.request_id);
      Response response;
      response.status = 204;
      response.cacheable = false;
      response.headers.Set("Allow", JoinMethods(allowed));
      response.headers.Set("Access-Control-Allow-Methods", JoinMethods(allowed));
      auto asked = request.headers.Find("Access-Control-Request-Headers");
      response.headers.Set("Access-Control-Allow-Headers", asked ? std::string(*asked) : "*");
      response.headers.Set("Access-Control-Max-Age", "86400");
      return response;
    }
    Result<Match> match = Find(request.method, request.segments);
    if (!match.ok()) {
      Response response = ErrorResponse(match.status(), request.request_id);
      if (KindOf(match.status()) == ErrorKind::kMethodNotAllowed) {
        response.headers.Set("Allow", JoinMethods(AllowedMethods(request.segments)));
      }
      return response;
    }
    request.path_params = std::move(match->params);
    request.extension = std::move(match->extension);
    Result<Response> response = (*match->handler)(request, services);
    if (!response.ok()) return ErrorResponse(response.status(), request.request_id);
    return std::move(response).ValueUnsafe();
  } catch (const std::exception& e) {
    TF_LOG(LogLevel::kError, "handler_exception", {"request_id", request.request_id},
           {"method", request.method}, {"path", request.path}, {"what", e.what()});
  } catch (...) {
    TF_LOG(LogLevel::kError, "handler_exception", {"request_id", request.request_id},
           {"method", request.method}, {"path", request.path}, {"what", "unknown exception"});
  }
  // The exception text stays in the server log: it may name internals.
  return ErrorResponse(Internal("Internal error while handling ", request.method, " '", request.path,
                                "'; the server log has the details under request_id=", request.request_id),
                       request.request_id);
}

std::optional<Response> Router::TryFast(Request& request, Services& services) const {
  if (request.method != "GET" && request.method != "HEAD") return std::nullopt;
  try {
    std::optional<Match> match = Resolve(request);
    if (!match || match->fast == nullptr) return std::nullopt;
    return (*match->fast)(request, services);
  } catch (const std::exception& e) {
    TF_LOG(LogLevel::kError, "fast_handler_exception", {"request_id", request.request_id},
           {"path", request.path}, {"what", e.what()});
  } catch (...) {
    TF_LOG(LogLevel::kError, "fast_handler_exception", {"request_id", request.request_id},
           {"path", request.path}, {"what", "unknown exception"});
  }
  return std::nullopt;
}

const AsyncHandler* Router::FindAsync(Request& request) const {
  if (request.method != "GET" && request.method != "HEAD") return nullptr;
  std::optional<Match> match = Resolve(request);
  return match ? match->async : nullptr;
}

}  // namespace terrafuse::http
