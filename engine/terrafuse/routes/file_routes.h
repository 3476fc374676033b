// The files API over fd:// (docs/storage.md): list, download (Range; directories as zip),
// streaming atomic upload, delete, and signed URLs that need no token until they expire.
#pragma once

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

Status RegisterFileRoutes(http::Router& router);

}  // namespace terrafuse::routes
