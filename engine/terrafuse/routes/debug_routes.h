// Routes for testing the HTTP layer against the real binary (terrafused --debug-routes).
// Never registered otherwise: they serve made-up data and can be made slow on purpose.
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

/// The largest body /_debug/bytes serves, and the longest delay it takes.
inline constexpr int64_t kMaxDebugBytes = 64 * 1024 * 1024;
inline constexpr int64_t kMaxDebugDelayMs = 60 * 1000;

/// Adds GET /server/v1/_debug/bytes?n=N[&delay_ms=M]: N bytes of "abc...z" repeated
/// (application/octet-stream, cacheable, so ETag and Range apply), after sleeping M ms
/// while polling the request's cancel flag.
Status RegisterDebugRoutes(http::Router& router);

}  // namespace terrafuse::routes
