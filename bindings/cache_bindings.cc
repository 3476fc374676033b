#include "binding_core.h"
#include <nanobind/ndarray.h>

#include "terrafuse/cache/disk_store.h"

namespace terrafuse::bindings {

using cache::DiskStore;
using cache::KeyLock;

// Exposes an engine buffer to Python as a read-only memoryview without copying it: a
// capsule owning the buffer backs the view, so the memory lives as long as the view does.
static nb::object BufferView(std::shared_ptr<arrow::Buffer> buffer) {
  auto* owner = new std::shared_ptr<arrow::Buffer>(std::move(buffer));
  nb::capsule keep_alive(owner, [](void* p) noexcept { delete static_cast<std::shared_ptr<arrow::Buffer>*>(p); });
  using Bytes = nb::ndarray<nb::numpy, const uint8_t, nb::ndim<1>>;
  Bytes array((*owner)->data(), {static_cast<size_t>((*owner)->size())}, keep_alive);
  nb::object view = nb::cast(array);
  return nb::steal(PyMemoryView_FromObject(view.ptr()));
}

void InitCache(nb::module_& m) {
  nb::class_<KeyLock>(m, "KeyLock", "A held cross-process lock on one cache key.")
      .def("release", &KeyLock::Release)
      .def("__enter__", [](KeyLock& self) -> KeyLock& { return self; }, nb::rv_policy::reference)
      .def("__exit__", [](KeyLock& self, nb::args) { self.Release(); });

  nb::class_<DiskStore>(m, "DiskStore", "Content-addressed byte store on local disk.")
      .def_static(
          "open",
          [](std::string root, int64_t max_bytes) {
            return ValueOrThrow(DiskStore::Open({std::move(root), max_bytes}));
          },
          "root"_a, "max_bytes"_a)
      .def(
          "get",
          [](DiskStore& self, std::string_view key, double max_age_seconds) -> nb::object {
            Result<std::shared_ptr<arrow::Buffer>> got;
            {
              nb::gil_scoped_release release;
              got = self.Get(key, max_age_seconds);
            }
            std::shared_ptr<arrow::Buffer> payload = ValueOrThrow(std::move(got));
            if (!payload) return nb::none();
            return BufferView(std::move(payload));
          },
          "key"_a, "max_age_seconds"_a = -1.0,
          "Return the payload as a read-only memoryview (no copy), or None on a miss.")
      .def(
          "put",
          [](DiskStore& self, std::string_view key, nb::bytes payload) {
            std::string_view data(payload.c_str(), payload.size());
            Status st;
            {
              nb::gil_scoped_release release;
              st = self.Put(key, data);
            }
            ThrowIfError(st);
          },
          "key"_a, "payload"_a)
      .def("remove", [](DiskStore& self, std::string_view key) { ThrowIfError(self.Remove(key)); },
           "key"_a)
      .def(
          "lock",
          [](DiskStore& self, std::string_view key, double timeout_seconds) {
            Result<std::unique_ptr<KeyLock>> lock;
            {
              nb::gil_scoped_release release;
              lock = self.Lock(key, timeout_seconds);
            }
            return ValueOrThrow(std::move(lock));
          },
          "key"_a, "timeout_seconds"_a)
      .def("entry_path", &DiskStore::EntryPath, "key"_a)
      .def("clear", [](DiskStore& self) { ThrowIfError(self.Clear()); })
      .def("used_bytes", [](DiskStore& self) { return ValueOrThrow(self.UsedBytes()); })
      .def_prop_ro("root", &DiskStore::root)
      .def("stats", [](DiskStore& self) {
        auto s = self.stats();
        nb::dict d;
        d["hits"] = s.hits;
        d["misses"] = s.misses;
        d["corrupt"] = s.corrupt;
        d["evictions"] = s.evictions;
        return d;
      });
  m.def("validate_cache_key", [](std::string_view key) { ThrowIfError(cache::ValidateKey(key)); },
        "key"_a);
}

}  // namespace terrafuse::bindings
