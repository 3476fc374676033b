// Batch job routes under the API prefix (private: Bearer token; a caller sees only its own
// jobs): create, list, status, logs, tail and cancel. docs/server.md describes them.
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

Status RegisterJobRoutes(http::Router& router);

}  // namespace terrafuse::routes
