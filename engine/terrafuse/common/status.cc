#include "terrafuse/common/status.h"

#include <cstring>

namespace terrafuse {

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument: return "invalid_argument";
    case ErrorKind::kUnprocessableEntity: return "unprocessable_entity";
    case ErrorKind::kNotFound: return "not_found";
    case ErrorKind::kMethodNotAllowed: return "method_not_allowed";
    case ErrorKind::kAlreadyExists: return "already_exists";
    case ErrorKind::kPermissionDenied: return "permission_denied";
    case ErrorKind::kUnauthenticated: return "unauthenticated";
    case ErrorKind::kTooLarge: return "too_large";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kUdfFailed: return "udf_failed";
    case ErrorKind::kWorkerCrashed: return "worker_crashed";
    case ErrorKind::kUnavailable: return "unavailable";
    case ErrorKind::kNotImplemented: return "not_implemented";
    case ErrorKind::kIOError: return "io_error";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

ErrorKind KindOf(const Status& status) {
  if (auto detail = std::dynamic_pointer_cast<ErrorDetail>(status.detail())) {
    return detail->kind();
  }
  switch (status.code()) {
    case arrow::StatusCode::Invalid:
    case arrow::StatusCode::TypeError:
    case arrow::StatusCode::IndexError:
      return ErrorKind::kInvalidArgument;
    case arrow::StatusCode::KeyError: return ErrorKind::kNotFound;
    case arrow::StatusCode::AlreadyExists: return ErrorKind::kAlreadyExists;
    case arrow::StatusCode::IOError: return ErrorKind::kIOError;
    case arrow::StatusCode::NotImplemented: return ErrorKind::kNotImplemented;
    case arrow::StatusCode::Cancelled: return ErrorKind::kTimeout;
    default: return ErrorKind::kInternal;
  }
}

Status MakeError(ErrorKind kind, std::string message) {
  arrow::StatusCode code = arrow::StatusCode::UnknownError;
  switch (kind) {
    case ErrorKind::kInvalidArgument:
    case ErrorKind::kUnprocessableEntity: code = arrow::StatusCode::Invalid; break;
    case ErrorKind::kNotFound: code = arrow::StatusCode::KeyError; break;
    case ErrorKind::kAlreadyExists: code = arrow::StatusCode::AlreadyExists; break;
    case ErrorKind::kIOError: code = arrow::StatusCode::IOError; break;
    case ErrorKind::kNotImplemented: code = arrow::StatusCode::NotImplemented; break;
    default: break;
  }
  return Status(code, std::move(message), std::make_shared<ErrorDetail>(kind));
}

Status ErrnoError(int errnum, const std::string& what, const std::string& path) {
  ErrorKind kind = ErrorKind::kIOError;
  if (errnum == ENOENT) kind = ErrorKind::kNotFound;
  if (errnum == EACCES || errnum == EPERM) kind = ErrorKind::kPermissionDenied;
  return MakeError(kind, what + " '" + path + "': " + std::strerror(errnum));
}

}  // namespace terrafuse
