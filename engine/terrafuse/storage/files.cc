#include "terrafuse/storage/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <limits>

#include <arrow/buffer.h>
#include <arrow/io/file.h>
#include <arrow/util/io_util.h>

#include "terrafuse/udf/crypto_internal.h"

namespace terrafuse::storage {

namespace {

namespace afs = arrow::fs;

constexpr int64_t kCopyChunk = 1 << 20;
// Bytes an object-store upload may have in flight (parts of 10 MB) before a write waits.
constexpr int64_t kObjectWindow = 32 << 20;
// Remote sources (S3, http) answer each read with a request: bigger pieces, fewer round trips.
constexpr int64_t kRemoteCopyChunk = 16 << 20;

std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  if (from.empty()) return text;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

int64_t Millis(afs::TimePoint t) {
  if (t == afs::kNoTime) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool IsPartial(std::string_view name) {
  for (size_t start = 0; start <= name.size();) {
    size_t slash = name.find('/', start);
    if (name.substr(start, slash - start).starts_with(kPartialPrefix)) return true;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return false;
}

std::string Join(std::string_view uri, std::string_view name) {
  std::string out(uri);
  if (!out.ends_with('/')) out.push_back('/');
  return out + std::string(name);
}

bool IsStoreRoot(const Location& where) { return where.uri == "fd://"; }

}  // namespace

Status Describe(const Status& status, const Location& where, std::string_view action) {
  if (status.ok()) return status;
  // Our own file systems (http) already name the URI and say what is wrong.
  if (std::dynamic_pointer_cast<ErrorDetail>(status.detail())) return status;
  const int errnum = arrow::internal::ErrnoFromStatus(status);
  if (errnum == ENOENT) return NotFound("No such file or directory: '", where.uri, "'");
  if (errnum == EACCES || errnum == EPERM) return PermissionDenied("Cannot ", action, " '", where.uri, "': permission denied");
  if (errnum == ENOSPC) return IOError("Cannot ", action, " '", where.uri, "': the disk is full");
  // Arrow's messages name the path on the file system: show the user's URI instead.
  std::string message = ReplaceAll(status.message(), where.path, where.uri);
  return IOError("Cannot ", action, " '", where.uri, "': ", message);
}

Result<FileEntry> Stat(const Location& where) {
  auto info = where.fs->GetFileInfo(where.path);
  if (!info.ok()) return Describe(info.status(), where, "read");
  if (info->type() == afs::FileType::NotFound) return NotFound("No such file or directory: '", where.uri, "'");
  FileEntry entry;
  entry.uri = where.uri;
  entry.name = info->base_name();
  entry.is_dir = info->IsDirectory();
  entry.size = entry.is_dir ? 0 : std::max<int64_t>(0, info->size());
  entry.modified_ms = Millis(info->mtime());
  return entry;
}

Result<std::vector<FileEntry>> List(const Location& where, bool recursive) {
  auto top = Stat(where);
  if (!top.ok()) {
    if (IsStoreRoot(where) && KindOf(top.status()) == ErrorKind::kNotFound) return std::vector<FileEntry>{};
    return top.status();
  }
  if (!top->is_dir) return std::vector<FileEntry>{*top};
  afs::FileSelector selector;
  selector.base_dir = where.path;
  selector.recursive = recursive;
  auto infos = where.fs->GetFileInfo(selector);
  if (!infos.ok()) return Describe(infos.status(), where, "list");
  std::vector<FileEntry> out;
  std::string base = where.path;
  while (base.size() > 1 && base.ends_with('/')) base.pop_back();
  for (const afs::FileInfo& info : *infos) {
    std::string_view path = info.path();
    if (!path.starts_with(base) || path.size() <= base.size() + 1) continue;
    std::string name(path.substr(base.size() + 1));
    if (IsPartial(name)) continue;
    FileEntry entry;
    entry.uri = Join(where.uri, name);
    entry.name = std::move(name);
    entry.is_dir = info.IsDirectory();
    entry.size = entry.is_dir ? 0 : std::max<int64_t>(0, info.size());
    entry.modified_ms = Millis(info.mtime());
    out.push_back(std::move(entry));
  }
  std::sort(out.begin(), out.end(), [](const FileEntry& a, const FileEntry& b) { return a.name < b.name; });
  return out;
}

Status Delete(const Location& where, int max_depth) {
  if (IsStoreRoot(where)) return PermissionDenied("Refusing to delete the whole fd:// store; delete its folders");
  ARROW_ASSIGN_OR_RAISE(FileEntry top, Stat(where));
  if (!top.is_dir) return Describe(where.fs->DeleteFile(where.path), where, "delete");
  if (max_depth >= 0) {
    ARROW_ASSIGN_OR_RAISE(std::vector<FileEntry> tree, List(where, /*recursive=*/true));
    int depth = 0;
    for (const FileEntry& entry : tree) {
      depth = std::max(depth, 1 + static_cast<int>(std::count(entry.name.begin(), entry.name.end(), '/')));
    }
    if (depth > max_depth) {
      return InvalidArgument("Refusing to delete '", where.uri, "': it goes ", depth,
                             " levels deep, more than max_deletion_depth=", max_depth,
                             " (pass max_deletion_depth='unlimited' to delete it anyway)");
    }
  }
  return Describe(where.fs->DeleteDir(where.path), where, "delete");
}

AtomicWriter::AtomicWriter(Location where, std::string temp_path, std::shared_ptr<arrow::io::OutputStream> out)
    : where_(std::move(where)), temp_path_(std::move(temp_path)), out_(std::move(out)) {}

AtomicWriter::~AtomicWriter() {
  Abort();
  if (replaced_fd_ >= 0) ::close(replaced_fd_);
}

Result<std::unique_ptr<AtomicWriter>> AtomicWriter::Open(const Location& where) {
  if (IsStoreRoot(where) || where.path.ends_with('/')) {
    return InvalidArgument("Cannot write '", where.uri, "': name a file, as in fd://folder/file.csv");
  }
  auto existing = Stat(where);
  if (existing.ok() && existing->is_dir) {
    return InvalidArgument("Cannot write '", where.uri, "': it is a directory");
  }
  const size_t slash = where.path.rfind('/');
  const std::string parent = slash == std::string::npos ? std::string() : where.path.substr(0, slash);
  const std::string base = where.path.substr(slash + 1);
  if (!where.local) {
    // Object stores publish an object only when its upload completes.
    auto out = where.fs->OpenOutputStream(where.path);
    if (!out.ok()) return Describe(out.status(), where, "write");
    return std::unique_ptr<AtomicWriter>(new AtomicWriter(where, "", *out));
  }
  if (!parent.empty()) ARROW_RETURN_NOT_OK(Describe(where.fs->CreateDir(parent, true), where, "write"));
  ARROW_ASSIGN_OR_RAISE(std::string nonce, udf::internal::RandomAlnum(12));
  // Keep the temp name within NAME_MAX (255) whatever the target's length.
  std::string temp = parent + "/" + std::string(kPartialPrefix) + nonce + "-" + base.substr(0, 200);
  auto out = where.fs->OpenOutputStream(temp);
  if (!out.ok()) return Describe(out.status(), where, "write");
  return std::unique_ptr<AtomicWriter>(new AtomicWriter(where, std::move(temp), *out));
}

Status AtomicWriter::Reserve(int64_t size) {
  auto file = std::dynamic_pointer_cast<arrow::io::FileOutputStream>(out_);
  if (done_ || !file || size <= written_) return Status::OK();
  // fallocate, not posix_fallocate: where the file system cannot reserve, glibc's fallback
  // writes zeros over the whole length.
  int rc;
  do {
    rc = ::fallocate(file->file_descriptor(), 0, 0, size);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    reserved_ = size;
    return Status::OK();
  }
  if (errno == EOPNOTSUPP || errno == ENOSYS) return Status::OK();
  if (errno == EFBIG) {
    return TooLarge("Cannot write '", where_.uri, "': ", size, " bytes is more than its file system allows in one file");
  }
  return Describe(arrow::internal::IOErrorFromErrno(errno, "fallocate"), where_, "write");
}

Status AtomicWriter::Write(const void* data, int64_t size) {
  if (done_) return Internal("AtomicWriter: write after commit or abort");
  Status st = out_->Write(data, size);
  if (!st.ok()) return Describe(st, where_, "write");
  written_ += size;
  // An object store uploads parts in the background with no limit on how many wait in
  // memory: a client faster than the store would fill it. Waiting for them every
  // kObjectWindow bytes (Flush does not cut a part) keeps a few parts in flight.
  if (temp_path_.empty() && (unflushed_ += size) >= kObjectWindow) {
    unflushed_ = 0;
    st = out_->Flush();
    if (!st.ok()) return Describe(st, where_, "write");
  }
  return Status::OK();
}

bool AtomicWriter::can_splice() const {
  return !done_ && std::dynamic_pointer_cast<arrow::io::FileOutputStream>(out_) != nullptr;
}

Status AtomicWriter::WriteFromPipe(int pipe_fd, int64_t size) {
  auto file = std::dynamic_pointer_cast<arrow::io::FileOutputStream>(out_);
  if (done_ || !file) return Internal("AtomicWriter: not a local file open for writing");
  while (size > 0) {
    const ssize_t n = ::splice(pipe_fd, nullptr, file->file_descriptor(), nullptr, static_cast<size_t>(size),
                               SPLICE_F_MOVE);
    if (n > 0) {
      size -= n;
      written_ += n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return Describe(arrow::internal::IOErrorFromErrno(n < 0 ? errno : EIO, "splice"), where_, "write");
    }
  }
  return Status::OK();
}

Status AtomicWriter::Commit() {
  if (done_) return Internal("AtomicWriter: commit after commit or abort");
  Status st;
  if (written_ < reserved_) {
    // Fewer bytes came than were reserved: the file ends where the data does.
    auto file = std::dynamic_pointer_cast<arrow::io::FileOutputStream>(out_);
    if (::ftruncate(file->file_descriptor(), written_) != 0) st = arrow::internal::IOErrorFromErrno(errno, "ftruncate");
  }
  if (st.ok()) st = out_->Close();
  if (st.ok() && !temp_path_.empty()) {
    // A file being replaced stays open across the rename, so that freeing its blocks and
    // cached pages (~0.3 s per GB) happens when the writer is dropped, not inside rename.
    struct stat old_file;
    if (::lstat(where_.path.c_str(), &old_file) == 0 && S_ISREG(old_file.st_mode)) {
      replaced_fd_ = ::open(where_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    }
    st = where_.fs->Move(temp_path_, where_.path);
  }
  if (!st.ok()) {
    Abort();
    return Describe(st, where_, "write");
  }
  done_ = true;
  return Status::OK();
}

void AtomicWriter::Abort() {
  if (done_) return;
  done_ = true;
  (void)out_->Abort();
  if (!temp_path_.empty()) (void)where_.fs->DeleteFile(temp_path_);
}

Result<int64_t> CopyFile(const Location& from, const Location& to) {
  ARROW_ASSIGN_OR_RAISE(FileEntry entry, Stat(from));
  if (entry.is_dir) return InvalidArgument("Cannot copy '", from.uri, "': it is a directory");
  auto in = from.fs->OpenInputStream(from.path);
  if (!in.ok()) return Describe(in.status(), from, "read");
  ARROW_ASSIGN_OR_RAISE(auto writer, AtomicWriter::Open(to));
  for (;;) {
    auto chunk = (*in)->Read(from.local ? kCopyChunk : kRemoteCopyChunk);
    if (!chunk.ok()) return Describe(chunk.status(), from, "read");
    if ((*chunk)->size() == 0) break;
    ARROW_RETURN_NOT_OK(writer->Write((*chunk)->data(), (*chunk)->size()));
  }
  ARROW_RETURN_NOT_OK(writer->Commit());
  return writer->bytes_written();
}

namespace {

void Put16(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}

void Put32(std::string* out, uint64_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();
constexpr uint16_t kDataDescriptorFlag = 0x0008;  // CRC and sizes follow the data
constexpr uint16_t kUtf8Flag = 0x0800;

struct ZipMember {
  std::string name;
  uint32_t crc = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

void PutCommon(std::string* out, const ZipMember& m) {
  Put16(out, 20);  // version needed: 2.0
  Put16(out, kDataDescriptorFlag | kUtf8Flag);
  Put16(out, 0);  // stored
  Put16(out, 0);  // time
  Put16(out, (0 << 9) | (1 << 5) | 1);  // 1980-01-01
  Put32(out, m.crc);
  Put32(out, m.size);
  Put32(out, m.size);
  Put16(out, static_cast<uint32_t>(m.name.size()));
  Put16(out, 0);  // extra length
}

}  // namespace

Status WriteZip(const Location& where, arrow::io::OutputStream* out) {
  ARROW_ASSIGN_OR_RAISE(std::vector<FileEntry> tree, List(where, /*recursive=*/true));
  std::vector<ZipMember> members;
  uint64_t offset = 0;
  auto emit = [&](const std::string& bytes) -> Status {
    offset += bytes.size();
    return out->Write(bytes.data(), static_cast<int64_t>(bytes.size()));
  };
  for (const FileEntry& entry : tree) {
    if (entry.is_dir) continue;
    if (entry.name.size() > 0xffff) return InvalidArgument("ZIP member name too long: '", entry.uri, "'");
    ZipMember member{entry.name, 0, 0, offset};
    if (offset > kMax32 || static_cast<uint64_t>(entry.size) > kMax32) {
      return TooLarge("Cannot zip '", where.uri, "': over 4 GiB (no ZIP64); download its files one by one");
    }
    std::string header;
    Put32(&header, 0x04034b50);
    PutCommon(&header, ZipMember{member.name, 0, 0, 0});
    header += member.name;
    ARROW_RETURN_NOT_OK(emit(header));
    Location file{where.fs, where.path + "/" + entry.name, entry.uri, where.local};
    auto in = file.fs->OpenInputStream(file.path);
    if (!in.ok()) return Describe(in.status(), file, "read");
    for (;;) {
      auto chunk = (*in)->Read(kCopyChunk);
      if (!chunk.ok()) return Describe(chunk.status(), file, "read");
      const int64_t n = (*chunk)->size();
      if (n == 0) break;
      member.crc = static_cast<uint32_t>(crc32(member.crc, (*chunk)->data(), static_cast<uInt>(n)));
      member.size += static_cast<uint64_t>(n);
      offset += static_cast<uint64_t>(n);
      ARROW_RETURN_NOT_OK(out->Write((*chunk)->data(), n));
    }
    if (member.size > kMax32) return TooLarge("Cannot zip '", entry.uri, "': over 4 GiB (no ZIP64)");
    std::string descriptor;
    Put32(&descriptor, 0x08074b50);
    Put32(&descriptor, member.crc);
    Put32(&descriptor, member.size);
    Put32(&descriptor, member.size);
    ARROW_RETURN_NOT_OK(emit(descriptor));
    members.push_back(std::move(member));
  }
  const uint64_t directory_offset = offset;
  std::string directory;
  for (const ZipMember& m : members) {
    Put32(&directory, 0x02014b50);
    Put16(&directory, (3 << 8) | 20);  // made by: Unix, 2.0
    PutCommon(&directory, m);
    Put16(&directory, 0);  // comment length
    Put16(&directory, 0);  // disk number
    Put16(&directory, 0);  // internal attributes
    Put32(&directory, uint64_t{0100644} << 16);  // external: a regular file, rw-r--r--
    Put32(&directory, m.offset);
    directory += m.name;
  }
  if (directory_offset + directory.size() > kMax32 || members.size() > 0xffff) {
    return TooLarge("Cannot zip '", where.uri, "': too large or too many files for a ZIP without ZIP64");
  }
  const size_t directory_size = directory.size();
  Put32(&directory, 0x06054b50);
  Put16(&directory, 0);
  Put16(&directory, 0);
  Put16(&directory, static_cast<uint32_t>(members.size()));
  Put16(&directory, static_cast<uint32_t>(members.size()));
  Put32(&directory, directory_size);
  Put32(&directory, directory_offset);
  Put16(&directory, 0);
  return emit(directory);
}

}  // namespace terrafuse::storage
