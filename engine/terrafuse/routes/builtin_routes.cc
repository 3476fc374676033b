#include "terrafuse/routes/builtin_routes.h"

#include "terrafuse/routes/debug_routes.h"
#include "terrafuse/routes/file_routes.h"
#include "terrafuse/routes/health_routes.h"
#include "terrafuse/routes/job_routes.h"
#include "terrafuse/routes/metrics_routes.h"
#include "terrafuse/routes/udf_routes.h"
#include "terrafuse/routes/workbench_routes.h"

namespace terrafuse::routes {

Status RegisterBuiltinRoutes(http::Router& router, const BuiltinRouteOptions& options) {
  ARROW_RETURN_NOT_OK(RegisterHealthRoutes(router));
  ARROW_RETURN_NOT_OK(RegisterMetricsRoutes(router));
  ARROW_RETURN_NOT_OK(RegisterUdfRoutes(router));
  ARROW_RETURN_NOT_OK(RegisterFileRoutes(router));
  ARROW_RETURN_NOT_OK(RegisterWorkbenchRoutes(router));
  ARROW_RETURN_NOT_OK(RegisterJobRoutes(router));
  if (options.debug_routes) ARROW_RETURN_NOT_OK(RegisterDebugRoutes(router));
  return Status::OK();
}

}  // namespace terrafuse::routes
