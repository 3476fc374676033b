#include "binding_core.h"
#include "terrafuse/cache/disk_store.h"

namespace terrafuse::bindings {

using cache::DiskStore;
using cache::KeyLock;

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
            Result<std::optional<std::string>> got;
            {
              nb::gil_scoped_release release;
              got = self.Get(key, max_age_seconds);
            }
            std::optional<std::string> value = ValueOrThrow(std::move(got));
            if (!value) return nb::none();
            return nb::bytes(value->data(), value->size());
          },
          "key"_a, "max_age_seconds"_a = -1.0)
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
