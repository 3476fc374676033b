#include "binding_core.h"
#include "terrafuse/common/hash.h"

namespace terrafuse::bindings {

void InitHash(nb::module_& m) {
  nb::class_<Hasher>(m, "Hasher", "Streaming XXH3-128 content hash.")
      .def(nb::init<>())
      .def(
          "update",
          [](Hasher& h, nb::bytes data) {
            const char* ptr = data.c_str();
            size_t size = data.size();
            nb::gil_scoped_release release;
            h.Update(ptr, size);
          },
          "data"_a, "Add bytes to the digest.")
      .def(
          "update_buffer",
          [](Hasher& h, nb::handle obj) {
            // Any C-contiguous buffer (numpy arrays, memoryviews) without a copy.
            Py_buffer view;
            if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw nb::python_error();
            {
              nb::gil_scoped_release release;
              h.Update(view.buf, static_cast<size_t>(view.len));
            }
            PyBuffer_Release(&view);
          },
          "buffer"_a, "Add the bytes of a C-contiguous buffer to the digest.")
      .def("hexdigest", &Hasher::HexDigest);
  m.def("hash_hex", [](nb::bytes data) { return HashHex(std::string_view(data.c_str(), data.size())); },
        "data"_a);
}

}  // namespace terrafuse::bindings
