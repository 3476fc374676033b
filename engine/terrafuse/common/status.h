// The engine's one error currency: arrow::Status / arrow::Result<T>, with the kinds Arrow
// lacks carried in an ErrorDetail (STYLE.md, conventions 2-5).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/util/string_util.h>

namespace terrafuse {

using arrow::Result;
using arrow::Status;

/// What went wrong, in the terms callers act on. HTTP statuses and Python exception classes
/// are derived from this in exactly one place each.
enum class ErrorKind {
  kInvalidArgument,
  kUnprocessableEntity,
  kNotFound,
  kMethodNotAllowed,
  kAlreadyExists,
  kPermissionDenied,
  kUnauthenticated,
  kTooLarge,
  kTimeout,
  kUdfFailed,
  kWorkerCrashed,
  kUnavailable,
  kNotImplemented,
  kIOError,
  kInternal,
};

/// Returns the stable lower_snake name of a kind ("not_found"), used in JSON and Python.
const char* ErrorKindName(ErrorKind kind);

/// Attached to every Status the engine creates, so the kind survives propagation.
class ErrorDetail : public arrow::StatusDetail {
 public:
  explicit ErrorDetail(ErrorKind kind) : kind_(kind) {}
  const char* type_id() const override { return "terrafuse::ErrorDetail"; }
  std::string ToString() const override { return ErrorKindName(kind_); }
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

/// Attached to UdfFailed errors: what the UDF raised and printed, for the caller.
class UdfFailureDetail : public ErrorDetail {
 public:
  UdfFailureDetail(std::string type, std::string traceback, std::string stdout_text,
                   std::string stderr_text)
      : ErrorDetail(ErrorKind::kUdfFailed),
        type_(std::move(type)),
        traceback_(std::move(traceback)),
        stdout_(std::move(stdout_text)),
        stderr_(std::move(stderr_text)) {}
  const std::string& type() const { return type_; }
  const std::string& traceback() const { return traceback_; }
  const std::string& stdout_text() const { return stdout_; }
  const std::string& stderr_text() const { return stderr_; }

 private:
  std::string type_, traceback_, stdout_, stderr_;
};

/// Returns the kind of a non-OK status; statuses from Arrow itself map to their closest kind.
ErrorKind KindOf(const Status& status);

Status MakeError(ErrorKind kind, std::string message);

template <typename... Args>
Status InvalidArgument(Args&&... args) {
  return MakeError(ErrorKind::kInvalidArgument, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status NotFound(Args&&... args) {
  return MakeError(ErrorKind::kNotFound, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status AlreadyExists(Args&&... args) {
  return MakeError(ErrorKind::kAlreadyExists, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status PermissionDenied(Args&&... args) {
  return MakeError(ErrorKind::kPermissionDenied, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status Unauthenticated(Args&&... args) {
  return MakeError(ErrorKind::kUnauthenticated, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status Timeout(Args&&... args) {
  return MakeError(ErrorKind::kTimeout, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status UnprocessableEntity(Args&&... args) {
  return MakeError(ErrorKind::kUnprocessableEntity, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status MethodNotAllowed(Args&&... args) {
  return MakeError(ErrorKind::kMethodNotAllowed, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status TooLarge(Args&&... args) {
  return MakeError(ErrorKind::kTooLarge, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status Unavailable(Args&&... args) {
  return MakeError(ErrorKind::kUnavailable, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status IOError(Args&&... args) {
  return MakeError(ErrorKind::kIOError, arrow::internal::JoinToString(std::forward<Args>(args)...));
}
template <typename... Args>
Status Internal(Args&&... args) {
  return MakeError(ErrorKind::kInternal, arrow::internal::JoinToString(std::forward<Args>(args)...));
}

/// An IOError naming `what` and `path`, with strerror(errnum) appended.
Status ErrnoError(int errnum, const std::string& what, const std::string& path);

}  // namespace terrafuse
