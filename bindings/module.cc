#include <arrow/util/io_util.h>

#include <cstring>

#include "binding_core.h"

namespace terrafuse::bindings {

// The single translator from engine errors to Python: fused._errors.from_kind picks the class.
static void TranslateStatusError(const std::exception_ptr& p, void*) {
  try {
    std::rethrow_exception(p);
  } catch (const StatusError& e) {
    nb::gil_scoped_acquire gil;
    nb::object errors = nb::module_::import_("fused._errors");
    // An OS error says which (e.g. "No space left on device"), not only what failed.
    std::string message = e.status().message();
    if (int err = arrow::internal::ErrnoFromStatus(e.status()); err > 0) message += ": " + std::string(std::strerror(err));
    nb::object exc = errors.attr("from_kind")(ErrorKindName(KindOf(e.status())), message);
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  }
}

}  // namespace terrafuse::bindings

NB_MODULE(_core, m) {
  using namespace terrafuse::bindings;
  m.doc() = "terrafuse engine (C++), private: use the public fused API";
  nb::register_exception_translator(&TranslateStatusError);
  InitHash(m);
  InitTiles(m);
  InitCache(m);
  InitEncode(m);
  InitStorage(m);
  InitIngest(m);
  InitWorkers(m);
}
