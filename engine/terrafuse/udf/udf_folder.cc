#include "terrafuse/udf/udf_folder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "terrafuse/udf/crypto_internal.h"
#include "terrafuse/udf/meta_json.h"

namespace terrafuse::udf {

namespace fs = std::filesystem;

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Returns the file's content, or nullopt when it does not exist.
Result<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    return ErrnoError(errno, "cannot open UDF file", path);
  }
  FdCloser closer{fd};
  std::string out;
  char buffer[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot read UDF file", path);
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  return out;
}

Status WriteNewFile(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create UDF file", path);
  FdCloser closer{fd};
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot write UDF file", path);
    data += n;
    left -= static_cast<size_t>(n);
  }
  // The folder is renamed into place next: its files must be on disk before the name is.
  if (::fsync(fd) != 0) return ErrnoError(errno, "cannot flush UDF file", path);
  return Status::OK();
}

void SyncDirectory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// True when `dir` holds every file of `files` with exactly that content.
Result<bool> FolderHolds(const std::string& dir, const std::vector<FolderFile>& files) {
  for (const FolderFile& file : files) {
    ARROW_ASSIGN_OR_RAISE(auto content, ReadFileIfExists(dir + "/" + file.name));
    if (!content || *content != file.content) return false;
  }
  return true;
}

// A file name read from meta.json must name a file inside the folder.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

}  // namespace

Result<std::vector<FolderFile>> UdfFolderFiles(const UdfSpec& spec) {
  ARROW_RETURN_NOT_OK(ValidateUdfSpec(spec));
  std::vector<FolderFile> files;
  files.push_back({spec.name + ".py", spec.code});
  for (const UdfHeader& header : spec.headers) {
    files.push_back({header.module_name + ".py", header.source_code});
  }
  ARROW_ASSIGN_OR_RAISE(std::string meta, WriteMetaJson(spec));
  files.push_back({"meta.json", std::move(meta)});
  std::string description = JsonStringMember(spec.metadata_json, "fused:description");
  files.push_back({"README.MD", "<!--fused:readme-->\n" + description + "\n"});
  return files;
}

Status WriteUdfFolder(const UdfSpec& spec, const std::string& dir, const std::string& scratch_dir) {
  ARROW_ASSIGN_OR_RAISE(std::vector<FolderFile> files, UdfFolderFiles(spec));
  ARROW_ASSIGN_OR_RAISE(bool same, FolderHolds(dir, files));
  if (same) return Status::OK();

  const fs::path target(dir);
  const std::string parent = target.parent_path().string();
  const std::string scratch = scratch_dir.empty() ? parent : scratch_dir;
  std::error_code ec;
  fs::create_directories(scratch, ec);
  if (ec) return IOError("Cannot create UDF directory '", scratch, "': ", ec.message());
  ARROW_ASSIGN_OR_RAISE(std::string suffix, internal::RandomAlnum(12));
  const std::string tmp = scratch + "/.tmp-" + target.filename().string() + "-" + suffix;
  if (::mkdir(tmp.c_str(), 0755) != 0) return ErrnoError(errno, "cannot create UDF directory", tmp);
  auto discard = [&](Status st) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return st;
  };
  for (const FolderFile& file : files) {
    Status st = WriteNewFile(tmp + "/" + file.name, file.content);
    if (!st.ok()) return discard(st);
  }
  SyncDirectory(tmp);

  // A concurrent delete may remove the parent between creating it and renaming into it.
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    fs::create_directories(parent, ec);
    if (ec) return discard(IOError("Cannot create UDF directory '", parent, "': ", ec.message()));
    if (::rename(tmp.c_str(), dir.c_str()) == 0) {
      SyncDirectory(parent);
      return Status::OK();
    }
    if (errno == ENOENT && attempt < kAttempts) continue;
    if (errno != ENOTEMPTY && errno != EEXIST) {
      return discard(ErrnoError(errno, "cannot move UDF folder into place", dir));
    }
    // Someone else wrote this version meanwhile, or it holds older metadata.
    ARROW_ASSIGN_OR_RAISE(same, FolderHolds(dir, files));
    if (same) return discard(Status::OK());
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
      SyncDirectory(parent);
      return discard(Status::OK());  // tmp now holds the old folder
    }
    if (errno == ENOENT && attempt < kAttempts) continue;  // removed meanwhile: rename again
    return discard(ErrnoError(errno, "cannot replace UDF folder", dir));
  }
}

Result<UdfSpec> ReadUdfFolder(const std::string& dir) {
  ARROW_ASSIGN_OR_RAISE(auto meta_text, ReadFileIfExists(dir + "/meta.json"));
  if (!meta_text) return NotFound("Cannot load UDF from '", dir, "': no meta.json");
  ARROW_ASSIGN_OR_RAISE(MetaJsonUdf meta, ParseMetaJson(*meta_text, dir));

  UdfSpec spec;
  spec.name = meta.name.empty() ? fs::path(dir).filename().string() : meta.name;
  spec.entrypoint = meta.entrypoint;
  spec.metadata_json = std::move(meta.metadata_json);
  spec.parameters_json = std::move(meta.parameters_json);

  auto read_member = [&](const std::string& file, const std::string& role) -> Result<std::string> {
    if (!IsPlainFileName(file)) {
      return InvalidArgument("Invalid meta.json in '", dir, "': ", role, " '", file,
                             "' must be a file name inside the folder");
    }
    ARROW_ASSIGN_OR_RAISE(auto content, ReadFileIfExists(dir + "/" + file));
    if (!content) {
      return NotFound("Cannot load UDF '", spec.name, "' from '", dir, "': its ", role, " '", file,
                      "' is missing");
    }
    return std::move(*content);
  };

  if (meta.code) {
    spec.code = std::move(*meta.code);
  } else {
    ARROW_ASSIGN_OR_RAISE(spec.code, read_member(*meta.source, "source file"));
  }
  for (MetaJsonHeader& header : meta.headers) {
    UdfHeader h{header.module_name, ""};
    if (header.source_code) {
      h.source_code = std::move(*header.source_code);
    } else {
      std::string file = header.source_file.value_or(header.module_name + ".py");
      if (file.empty()) file = header.module_name + ".py";
      ARROW_ASSIGN_OR_RAISE(h.source_code, read_member(file, "header module file"));
    }
    spec.headers.push_back(std::move(h));
  }
  return spec;
}

}  // namespace terrafuse::udf
