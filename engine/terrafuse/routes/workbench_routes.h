// The browser workbench: the built bundle (web/ → fused/web) served as static files under
// /workbench, with an index.html fallback for the app's own paths (/workbench/tokens).
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

/// Registers GET /workbench and GET /workbench/... (files under Services::web_root) and
/// GET /server/v1/whoami (the owner behind the caller's API token).
Status RegisterWorkbenchRoutes(http::Router& router);

}  // namespace terrafuse::routes
