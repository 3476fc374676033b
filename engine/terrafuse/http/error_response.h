// The one place an error becomes an HTTP response (STYLE.md convention 4).
#pragma once

#include <string_view>

#include "terrafuse/common/status.h"
#include "terrafuse/http/response.h"

namespace terrafuse::http {

/// Returns the HTTP status of an error kind: InvalidArgument 400, Unauthenticated 401,
/// PermissionDenied 403, NotFound 404, MethodNotAllowed 405, AlreadyExists 409,
/// TooLarge 413, UnprocessableEntity 422, NotImplemented 501, Unavailable 503,
/// Timeout 504; UdfFailed, WorkerCrashed, IOError and Internal 500.
int HttpStatusOf(ErrorKind kind);

/// Builds the answer to a failed request from a non-OK status: the kind's HTTP status, the
/// JSON body {"error": {"kind", "message", "request_id"}} and the same JSON in the
/// X-Fused-Metadata header (where the Fused SDK looks for error details).
Response ErrorResponse(const Status& status, std::string_view request_id);

/// Builds an error response with an explicit status, for protocol answers that no engine
/// error kind describes (416 Range Not Satisfiable). Same body and header shape.
Response ErrorResponse(int http_status, std::string_view kind, std::string_view message,
                       std::string_view request_id);

}  // namespace terrafuse::http
