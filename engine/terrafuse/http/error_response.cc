#include "terrafuse/http/error_response.h"

#include <nlohmann/json.hpp>

namespace terrafuse::http {

int HttpStatusOf(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return 400;
    case ErrorKind::kUnauthenticated: return 401;
    case ErrorKind::kPermissionDenied: return 403;
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kMethodNotAllowed: return 405;
    case ErrorKind::kAlreadyExists: return 409;
    case ErrorKind::kTooLarge: return 413;
    case ErrorKind::kUnprocessableEntity: return 422;
    case ErrorKind::kNotImplemented: return 501;
    case ErrorKind::kUnavailable: return 503;
    case ErrorKind::kTimeout: return 504;
    case ErrorKind::kUdfFailed:
    case ErrorKind::kWorkerCrashed:
    case ErrorKind::kIOError:
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

Response ErrorResponse(const Status& status, std::string_view request_id) {
  ErrorKind kind = status.ok() ? ErrorKind::kInternal : KindOf(status);
  std::string message = status.ok() ? "Error response built from an OK status" : status.message();
  return ErrorResponse(HttpStatusOf(kind), ErrorKindName(kind), message, request_id);
}

Response ErrorResponse(int http_status, std::string_view kind, std::string_view message,
                       std::string_view request_id) {
  nlohmann::json error = {{"kind", kind}, {"message", message}, {"request_id", request_id}};
  nlohmann::json body = {{"error", std::move(error)}};
  // ASCII-only so the same text is a valid header value; invalid UTF-8 in a message (a
  // user-supplied path) is replaced instead of throwing.
  std::string json = body.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  Response response = Response::Json(json, http_status);
  response.headers.Set("X-Fused-Metadata", std::move(json));
  response.headers.Set("Cache-Control", "no-store");
  response.cacheable = false;
  return response;
}

}  // namespace terrafuse::http
