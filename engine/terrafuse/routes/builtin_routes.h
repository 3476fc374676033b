// The route table of terrafused, assembled in one explicit place (STYLE.md convention 9).
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

struct BuiltinRouteOptions {
  /// Adds the /server/v1/_debug/... routes used by the HTTP tests.
  bool debug_routes = false;
};

/// Registers every route of the server. Fails, naming the route, if any pattern is
/// malformed or duplicates another.
Status RegisterBuiltinRoutes(http::Router& router, const BuiltinRouteOptions& options);

}  // namespace terrafuse::routes
