// Included by every binding file: nanobind headers, and the one way engine errors cross into
// Python (ThrowIfError -> StatusError -> the translator in module.cc -> fused._errors).
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "terrafuse/common/status.h"

namespace terrafuse::bindings {

namespace nb = nanobind;
using namespace nb::literals;

/// Carries a non-OK status to the exception translator.
class StatusError : public std::exception {
 public:
  explicit StatusError(Status status) : status_(std::move(status)) {}
  const char* what() const noexcept override { return status_.message().c_str(); }
  const Status& status() const { return status_; }

 private:
  Status status_;
};

inline void ThrowIfError(const Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <typename T>
T ValueOrThrow(Result<T> result) {
  ThrowIfError(result.status());
  return std::move(result).ValueUnsafe();
}

void InitHash(nb::module_& m);
void InitTiles(nb::module_& m);
void InitCache(nb::module_& m);
void InitEncode(nb::module_& m);
void InitStorage(nb::module_& m);
void InitIngest(nb::module_& m);
void InitWorkers(nb::module_& m);

}  // namespace terrafuse::bindings
