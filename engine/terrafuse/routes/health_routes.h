// GET /health: liveness for load balancers and the SDK's "is a server running" check.
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

/// Adds GET /health and GET /server/v1/health → 200 {"status":"ok"}, never cached.
Status RegisterHealthRoutes(http::Router& router);

}  // namespace terrafuse::routes
