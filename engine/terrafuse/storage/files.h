// File operations over a resolved Location, shared by the server's file routes and the SDK:
// listing, deleting with a depth guard, atomic writes, copies and directory zips. Errors
// name the user's URI, never the local root behind fd://.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <arrow/io/interfaces.h>

#include "terrafuse/storage/file_system.h"

namespace terrafuse::storage {

/// Names of in-progress uploads start with this; listings hide them.
inline constexpr std::string_view kPartialPrefix = ".tfupload-";

struct FileEntry {
  /// The entry's URI in the user's terms ("fd://demo/ais.csv").
  std::string uri;
  /// The path relative to the listed directory ("ais.csv", "sub/x.parquet").
  std::string name;
  int64_t size = 0;  // bytes; 0 for directories
  int64_t modified_ms = 0;  // Unix milliseconds; 0 when unknown
  bool is_dir = false;
};

/// Returns a not-found, permission or I/O error for `status` that names `where.uri`
/// instead of the file system's own path.
Status Describe(const Status& status, const Location& where, std::string_view action);

/// Returns the entry at `where`; NotFound naming the URI when nothing is there.
Result<FileEntry> Stat(const Location& where);

/// Lists a directory (its children, or its whole tree when `recursive`), sorted by name.
/// A file lists itself. NotFound naming the URI when nothing is there.
Result<std::vector<FileEntry>> List(const Location& where, bool recursive);

/// Deletes a file, or a directory with everything under it when the tree is at most
/// `max_depth` levels deep (a directory of files is 1; -1 means no limit). Refuses deeper
/// trees with InvalidArgument, and the storage root itself with PermissionDenied.
Status Delete(const Location& where, int max_depth);

/// Writes a file so that readers see either nothing or the whole of it: on local disks a
/// hidden temp file in the target directory renamed at Commit; on object stores a
/// multipart upload completed at Commit. Destroying it uncommitted removes every trace.
class AtomicWriter {
 public:
  /// Creates the parent directories. Fails naming the URI when the target is a directory.
  static Result<std::unique_ptr<AtomicWriter>> Open(const Location& where);
  ~AtomicWriter();

  /// Reserves `size` bytes for a local file whose final size is known (fallocate(2)):
  /// refuses a full disk before any byte is written, and makes the writes that follow
  /// cheaper (ext4: no delayed-allocation bookkeeping per block). A no-op on object stores
  /// and on file systems that cannot reserve. Commit trims the file if fewer bytes came.
  Status Reserve(int64_t size);
  Status Write(const void* data, int64_t size);
  /// True when the target is a local file that WriteFromPipe can fill (zero copy).
  bool can_splice() const;
  /// Moves `size` bytes from the pipe `pipe_fd` into the file in the kernel (splice(2)),
  /// blocking until done.
  Status WriteFromPipe(int pipe_fd, int64_t size);
  /// Makes the file visible under its name.
  Status Commit();
  /// Drops what was written (also done by the destructor).
  void Abort();
  int64_t bytes_written() const { return written_; }

 private:
  AtomicWriter(Location where, std::string temp_path, std::shared_ptr<arrow::io::OutputStream> out);

  Location where_;
  std::string temp_path_;  // empty on object stores
  std::shared_ptr<arrow::io::OutputStream> out_;
  int64_t written_ = 0;
  int64_t reserved_ = 0;
  int64_t unflushed_ = 0;
  int replaced_fd_ = -1;  // the file Commit replaced, closed by the destructor  // object stores: bytes written since the last wait for the parts
  bool done_ = false;
};

/// Streams `from` into `to` (atomically), in 1 MiB pieces (16 MiB from S3 or http: fewer
/// round trips). Returns the bytes copied.
Result<int64_t> CopyFile(const Location& from, const Location& to);

/// Writes a ZIP of every file under the directory `where` to `out` (members stored, not
/// compressed: most geodata is compressed already; no ZIP64, so each member and the
/// archive stay under 4 GiB).
Status WriteZip(const Location& where, arrow::io::OutputStream* out);

}  // namespace terrafuse::storage
