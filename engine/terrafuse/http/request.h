// What a handler sees of an HTTP request: decoded, socket-free, immutable once routed.
#pragma once

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/http/headers.h"

namespace terrafuse::http {

using Params = std::vector<std::pair<std::string, std::string>>;

/// A request target split into its parts, every part percent-decoded.
struct Target {
  /// The decoded path, e.g. "/server/v1/run file" for "/server/v1/run%20file".
  std::string path;
  /// The path's segments, each decoded on its own, so "%2F" stays inside its segment.
  std::vector<std::string> segments;
  /// Query parameters in order, repeated names kept; '+' decodes to a space.
  Params query;
};

/// Parses an origin-form target ("/path?query"). Fails with InvalidArgument naming the
/// offending text for anything else (absolute-form, '*') or a malformed percent-escape.
Result<Target> ParseTarget(std::string_view target);

/// Decodes %XX escapes, and '+' as a space when `plus_as_space` (query strings only).
Result<std::string> PercentDecode(std::string_view text, bool plus_as_space);

struct Request {
  std::string method;  // as received, e.g. "GET"; HEAD stays "HEAD" (routed to GET handlers)
  std::string target;  // raw, as received
  std::string path;
  std::vector<std::string> segments;
  Params query;
  Headers headers;
  std::string body;
  std::string client_address;
  std::string request_id;
  /// Set when the client disconnects or the server gives up on the request at shutdown:
  /// long handlers poll it and return early.
  std::stop_token cancel;

  // Filled by the router.
  Params path_params;
  /// The file extension of the last path segment, without the dot, when the route allows
  /// one ("mvt" for ".../1548.mvt"); empty otherwise.
  std::string extension;
  /// The matched route (opaque outside the router): TryFast, FindAsync and FindUpload match
  /// the path once per request.
  const void* route = nullptr;
  /// What a route's FastHandler resolved and leaves to its AsyncHandler, which runs next on
  /// the same I/O thread (a shared token's run: resolved once per request, not twice).
  mutable std::shared_ptr<void> route_state;

  /// Returns the first query value named `name`.
  std::optional<std::string_view> Query(std::string_view name) const;
  /// Returns the path parameter `name` (pattern segment "{name}").
  std::optional<std::string_view> PathParam(std::string_view name) const;
  bool cancelled() const { return cancel.stop_requested(); }
};

}  // namespace terrafuse::http
