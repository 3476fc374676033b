#include "binding_core.h"

#include <algorithm>

#include <arrow/buffer.h>
#include <arrow/io/file.h>

#include "terrafuse/storage/file_system.h"
#include "terrafuse/storage/files.h"

namespace terrafuse::bindings {

using storage::FileEntry;
using storage::Location;
using storage::StorageConfig;

// Runs `function` without the GIL and turns its status into a Python exception.
template <typename Function>
auto Released(Function function) {
  decltype(function()) result;
  {
    nb::gil_scoped_release release;
    result = function();
  }
  if constexpr (std::is_same_v<decltype(result), Status>) {
    ThrowIfError(result);
  } else {
    return ValueOrThrow(std::move(result));
  }
}

void InitStorage(nb::module_& m) {
  nb::class_<StorageConfig>(m, "StorageConfig", "Where fd:// lives and how S3 is reached.")
      .def_static("from_environment", &StorageConfig::FromEnvironment, "home"_a)
      .def_rw("home", &StorageConfig::home)
      .def_rw("fd_root", &StorageConfig::fd_root)
      .def_rw("shared_dir", &StorageConfig::shared_dir)
      .def_prop_rw("s3_endpoint", [](StorageConfig& c) { return c.s3.endpoint; },
                   [](StorageConfig& c, std::string v) { c.s3.endpoint = std::move(v); })
      .def_prop_rw("s3_region", [](StorageConfig& c) { return c.s3.region; },
                   [](StorageConfig& c, std::string v) { c.s3.region = std::move(v); })
      .def_prop_rw("s3_access_key", [](StorageConfig& c) { return c.s3.access_key; },
                   [](StorageConfig& c, std::string v) { c.s3.access_key = std::move(v); })
      .def_prop_rw("s3_secret_key", [](StorageConfig&) { return std::string("***"); },
                   [](StorageConfig& c, std::string v) { c.s3.secret_key = std::move(v); })
      .def_prop_rw("s3_session_token", [](StorageConfig&) { return std::string("***"); },
                   [](StorageConfig& c, std::string v) { c.s3.session_token = std::move(v); });

  nb::class_<FileEntry>(m, "FileEntry", "One file or directory of a listing.")
      .def_ro("uri", &FileEntry::uri)
      .def_ro("name", &FileEntry::name)
      .def_ro("size", &FileEntry::size)
      .def_ro("modified_ms", &FileEntry::modified_ms)
      .def_ro("is_dir", &FileEntry::is_dir);

  m.def(
      "storage_local_path",
      [](std::string_view uri, const StorageConfig& config) -> std::optional<std::string> {
        Location where = Released([&] { return storage::ResolveUri(uri, config); });
        if (!where.local) return std::nullopt;
        return where.path;
      },
      "uri"_a, "config"_a, "Return the local path behind `uri`, or None when it is not on this machine.");
  m.def(
      "storage_stat",
      [](std::string_view uri, const StorageConfig& config) {
        return Released([&]() -> Result<FileEntry> {
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          return storage::Stat(where);
        });
      },
      "uri"_a, "config"_a);
  m.def(
      "storage_list",
      [](std::string_view uri, const StorageConfig& config, bool recursive) {
        return Released([&]() -> Result<std::vector<FileEntry>> {
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          return storage::List(where, recursive);
        });
      },
      "uri"_a, "config"_a, "recursive"_a = false);
  m.def(
      "storage_delete",
      [](std::string_view uri, const StorageConfig& config, int max_depth) {
        Released([&]() -> Status {
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          return storage::Delete(where, max_depth);
        });
      },
      "uri"_a, "config"_a, "max_depth"_a, "Delete a file or a tree at most max_depth deep (-1: any).");
  m.def(
      "storage_copy",
      [](std::string_view source, std::string_view target, const StorageConfig& config) {
        return Released([&]() -> Result<int64_t> {
          ARROW_ASSIGN_OR_RAISE(Location from, storage::ResolveUri(source, config));
          ARROW_ASSIGN_OR_RAISE(Location to, storage::ResolveUri(target, config));
          return storage::CopyFile(from, to);
        });
      },
      "source"_a, "target"_a, "config"_a, "Copy a file (streamed; the target appears atomically).");
  m.def(
      "storage_read",
      [](std::string_view uri, const StorageConfig& config, int64_t offset, int64_t length) {
        std::shared_ptr<arrow::Buffer> data = Released([&]() -> Result<std::shared_ptr<arrow::Buffer>> {
          if (offset < 0) return InvalidArgument("offset must not be negative, got ", offset);
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          auto file = where.fs->OpenInputFile(where.path);
          if (!file.ok()) {
            if (std::dynamic_pointer_cast<ErrorDetail>(file.status().detail())) return file.status();  // ours, clear
            // Says "not found" or "is a directory" in the user's terms.
            ARROW_ASSIGN_OR_RAISE(FileEntry entry, storage::Stat(where));
            if (entry.is_dir) return InvalidArgument("Cannot read '", where.uri, "': it is a directory");
            return storage::Describe(file.status(), where, "read");
          }
          ARROW_ASSIGN_OR_RAISE(int64_t size, (*file)->GetSize());
          const int64_t available = std::max<int64_t>(0, size - offset);
          return (*file)->ReadAt(offset, length < 0 ? available : std::min(length, available));
        });
        return nb::bytes(reinterpret_cast<const char*>(data->data()), static_cast<size_t>(data->size()));
      },
      "uri"_a, "config"_a, "offset"_a = 0, "length"_a = -1,
      "Return a file's bytes (`length` bytes from `offset`; -1: to the end).");
  m.def(
      "storage_write",
      [](std::string_view uri, nb::bytes data, const StorageConfig& config) {
        std::string_view bytes(data.c_str(), data.size());
        Released([&]() -> Status {
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          ARROW_ASSIGN_OR_RAISE(auto writer, storage::AtomicWriter::Open(where));
          ARROW_RETURN_NOT_OK(writer->Write(bytes.data(), static_cast<int64_t>(bytes.size())));
          return writer->Commit();
        });
      },
      "uri"_a, "data"_a, "config"_a, "Write bytes to a file atomically.");
  m.def(
      "storage_zip",
      [](std::string_view uri, const std::string& local_path, const StorageConfig& config) {
        Released([&]() -> Status {
          ARROW_ASSIGN_OR_RAISE(Location where, storage::ResolveUri(uri, config));
          ARROW_ASSIGN_OR_RAISE(auto out, arrow::io::FileOutputStream::Open(local_path));
          ARROW_RETURN_NOT_OK(storage::WriteZip(where, out.get()));
          return out->Close();
        });
      },
      "uri"_a, "local_path"_a, "config"_a, "Write a ZIP of a directory to a local file.");
  m.def("finalize_storage", [] { Released([] { storage::FinalizeStorage(); return Status::OK(); }); },
        "Shut down the S3 client (at interpreter exit).");
}

}  // namespace terrafuse::bindings
