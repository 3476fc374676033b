#include "terrafuse/routes/health_routes.h"

#include "terrafuse/routes/api_prefix.h"

namespace terrafuse::routes {

namespace {

Result<http::Response> Health(const http::Request&, Services&) {
  http::Response response = http::Response::Json(R"({"status":"ok"})");
  response.cacheable = false;
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

}  // namespace

Status RegisterHealthRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add("GET", "/health", Health));
  return router.Add("GET", std::string(kApiPrefix) + "/health", Health);
}

}  // namespace terrafuse::routes
