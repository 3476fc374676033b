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

namespace {

// Tracebacks and captured output can be long; HTTP clients limit header sizes (often 8 KiB
// per line), so the header keeps the end of each, the body everything.
constexpr size_t kMaxHeaderTextBytes = 2048;

std::string Tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

Response Build(int http_status, std::string_view kind, std::string_view message,
               std::string_view request_id, const UdfFailureDetail* udf) {
  nlohmann::json error = {{"kind", kind}, {"message", message}, {"request_id", request_id}};
  nlohmann::json header_error = error;
  if (udf != nullptr) {
    error["udf"] = {{"type", udf->type()},
                    {"traceback", udf->traceback()},
                    {"stdout", udf->stdout_text()},
                    {"stderr", udf->stderr_text()}};
    header_error["udf"] = {{"type", udf->type()},
                           {"traceback", Tail(udf->traceback(), kMaxHeaderTextBytes)},
                           {"stdout", Tail(udf->stdout_text(), kMaxHeaderTextBytes)},
                           {"stderr", Tail(udf->stderr_text(), kMaxHeaderTextBytes)}};
  }
  auto dump = [](const nlohmann::json& value) {
    // ASCII-only so the same text is a valid header value; invalid UTF-8 in a message (a
    // user-supplied path) is replaced instead of throwing.
    return value.dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  };
  Response response = Response::Json(dump(nlohmann::json{{"error", std::move(error)}}), http_status);
  response.headers.Set("X-Fused-Metadata", dump(nlohmann::json{{"error", std::move(header_error)}}));
  response.headers.Set("Cache-Control", "no-store");
  response.cacheable = false;
  return response;
}

}  // namespace

Response ErrorResponse(const Status& status, std::string_view request_id) {
  ErrorKind kind = status.ok() ? ErrorKind::kInternal : KindOf(status);
  std::string message = status.ok() ? "Error response built from an OK status" : status.message();
  auto udf = status.ok() ? nullptr : std::dynamic_pointer_cast<UdfFailureDetail>(status.detail());
  return Build(HttpStatusOf(kind), ErrorKindName(kind), message, request_id, udf.get());
}

Response ErrorResponse(int http_status, std::string_view kind, std::string_view message,
                       std::string_view request_id) {
  return Build(http_status, kind, message, request_id, nullptr);
}

}  // namespace terrafuse::http
