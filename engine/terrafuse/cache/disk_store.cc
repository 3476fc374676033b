#include "terrafuse/cache/disk_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "terrafuse/common/hash.h"

namespace terrafuse::cache {

namespace fs = std::filesystem;

namespace {

// Entry layout: a fixed header, then the payload. The checksum covers the payload, so a
// truncated or corrupted file is detected on read and treated as a miss.
constexpr char kMagic[8] = {'T', 'F', 'C', 'A', 'C', 'H', 'E', '1'};
struct EntryHeader {
  char magic[8];
  int64_t created_unix_ms;
  uint64_t payload_size;
  uint64_t payload_xxh64;
};
static_assert(sizeof(EntryHeader) == 32);

constexpr const char* kEntrySuffix = ".tfc";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ReadExactly(int fd, uint8_t* out, size_t size, const std::string& path, size_t* done) {
  *done = 0;
  while (*done < size) {
    ssize_t n = ::read(fd, out + *done, size - *done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot read cache entry", path);
    if (n == 0) break;  // truncated: the caller sees *done < size
    *done += static_cast<size_t>(n);
  }
  return Status::OK();
}

// Closes a file descriptor on every path out of a scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

Status WriteAll(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "cannot write cache entry", path);
    data += n;
    size -= static_cast<size_t>(n);
  }
  return Status::OK();
}

std::string RandomSuffix() {
  static thread_local std::mt19937_64 rng(std::random_device{}() ^
                                          static_cast<uint64_t>(::getpid()));
  return std::to_string(rng());
}

}  // namespace

Status ValidateKey(std::string_view key) {
  bool ok = !key.empty() && key.size() <= 128 && key.front() != '.';
  for (char c : key) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  }
  if (!ok) {
    return InvalidArgument("Invalid cache key '", key,
                           "': use 1 to 128 characters of letters, digits, '_', '-' or '.', "
                           "not starting with '.'");
  }
  return Status::OK();
}

KeyLock::~KeyLock() { Release(); }

void KeyLock::Release() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
    fd_ = -1;
  }
}

Result<std::shared_ptr<DiskStore>> DiskStore::Open(DiskStoreOptions options) {
  if (options.root.empty()) return InvalidArgument("Cache directory must not be empty");
  if (options.max_bytes <= 0) {
    return InvalidArgument("Cache size bound must be positive, got ", options.max_bytes);
  }
  std::error_code ec;
  fs::create_directories(fs::path(options.root) / "locks", ec);
  if (ec) return IOError("Cannot create cache directory '", options.root, "': ", ec.message());
  return std::shared_ptr<DiskStore>(new DiskStore(std::move(options)));
}

std::string DiskStore::EntryPath(std::string_view key) const {
  // Two-character fan-out keeps directories small for millions of entries.
  std::string name(key);
  std::string shard = name.size() >= 2 ? name.substr(0, 2) : "__";
  return options_.root + "/" + shard + "/" + name + kEntrySuffix;
}

Result<std::shared_ptr<arrow::Buffer>> DiskStore::Get(std::string_view key, double max_age_seconds) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string path = EntryPath(key);
  auto count = [&](int64_t DiskStoreStats::*field) {
    std::lock_guard<std::mutex> guard(mutex_);
    ++(stats_.*field);
  };
  auto miss = [&]() -> Result<std::shared_ptr<arrow::Buffer>> {
    count(&DiskStoreStats::misses);
    return nullptr;
  };
  auto corrupt = [&]() -> Result<std::shared_ptr<arrow::Buffer>> {
    ::unlink(path.c_str());
    count(&DiskStoreStats::corrupt);
    return miss();
  };

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return miss();
    return ErrnoError(errno, "cannot open cache entry", path);
  }
  FdCloser closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "cannot stat cache entry", path);

  EntryHeader header;
  size_t got = 0;
  ARROW_RETURN_NOT_OK(ReadExactly(fd, reinterpret_cast<uint8_t*>(&header), sizeof(header), path, &got));
  if (got < sizeof(header) || std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0 ||
      header.payload_size != static_cast<uint64_t>(st.st_size) - sizeof(header)) {
    return corrupt();
  }
  if (max_age_seconds >= 0 &&
      static_cast<double>(NowUnixMs() - header.created_unix_ms) > max_age_seconds * 1000.0) {
    return miss();
  }
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Buffer> payload,
                        arrow::AllocateBuffer(static_cast<int64_t>(header.payload_size)));
  ARROW_RETURN_NOT_OK(ReadExactly(fd, payload->mutable_data(), header.payload_size, path, &got));
  if (got < header.payload_size ||
      Hash64(std::string_view(reinterpret_cast<const char*>(payload->data()), got)) != header.payload_xxh64) {
    return corrupt();
  }
  // The file's mtime records the last use, which eviction orders by.
  ::futimens(fd, nullptr);
  count(&DiskStoreStats::hits);
  return payload;
}

Status DiskStore::Put(std::string_view key, std::string_view payload) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string path = EntryPath(key);
  const std::string dir = fs::path(path).parent_path().string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return IOError("Cannot create cache directory '", dir, "': ", ec.message());

  EntryHeader header;
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.created_unix_ms = NowUnixMs();
  header.payload_size = payload.size();
  header.payload_xxh64 = Hash64(payload);

  // Write beside the target, then rename: readers see the old entry or the new, never a part.
  const std::string tmp = path + ".tmp." + RandomSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot create cache entry", tmp);
  Status st = WriteAll(fd, reinterpret_cast<const char*>(&header), sizeof(header), tmp);
  if (st.ok()) st = WriteAll(fd, payload.data(), payload.size(), tmp);
  if (::close(fd) != 0 && st.ok()) st = ErrnoError(errno, "cannot write cache entry", tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = ErrnoError(errno, "cannot move cache entry into place", path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (approx_bytes_ >= 0) approx_bytes_ += static_cast<int64_t>(sizeof(header) + payload.size());
  }
  return EvictIfNeeded();
}

Status DiskStore::Remove(std::string_view key) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string path = EntryPath(key);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "cannot delete cache entry", path);
  }
  return Status::OK();
}

Result<std::unique_ptr<KeyLock>> DiskStore::Lock(std::string_view key, double timeout_seconds) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string path = options_.root + "/locks/" + std::string(key) + ".lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot open cache lock", path);
  // flock is released by the kernel when the holder dies, so a crashed process never
  // leaves a key locked forever. Poll with a short back-off up to the deadline.
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, timeout_seconds) * 1e6));
  auto pause = std::chrono::milliseconds(1);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      int err = errno;
      ::close(fd);
      return ErrnoError(err, "cannot lock cache key", path);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd);
      return Timeout("Timed out after ", timeout_seconds, "s waiting for cache key '", key,
                     "' to be computed by another process");
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return std::make_unique<KeyLock>(fd);
}

Result<int64_t> DiskStore::UsedBytes() const {
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(options_.root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == kEntrySuffix) {
      total += static_cast<int64_t>(it->file_size(ec));
    }
  }
  if (ec) return IOError("Cannot scan cache directory '", options_.root, "': ", ec.message());
  return total;
}

Status DiskStore::EvictIfNeeded() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (approx_bytes_ >= 0 && approx_bytes_ <= options_.max_bytes) return Status::OK();
  }
  // Other processes write here too: rescan to get the true size before evicting.
  struct Entry {
    fs::path path;
    int64_t size;
    fs::file_time_type used;
  };
  std::vector<Entry> entries;
  int64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(options_.root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == kEntrySuffix) {
      Entry e{it->path(), static_cast<int64_t>(it->file_size(ec)), it->last_write_time(ec)};
      total += e.size;
      entries.push_back(std::move(e));
    }
  }
  int64_t evicted = 0;
  if (total > options_.max_bytes) {
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.used < b.used; });
    for (const Entry& e : entries) {
      if (total <= options_.max_bytes) break;
      if (fs::remove(e.path, ec)) {
        total -= e.size;
        ++evicted;
      }
    }
  }
  std::lock_guard<std::mutex> guard(mutex_);
  approx_bytes_ = total;
  stats_.evictions += evicted;
  return Status::OK();
}

Status DiskStore::Clear() {
  std::error_code ec;
  for (auto it = fs::directory_iterator(options_.root, ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == "locks") continue;
    fs::remove_all(it->path(), ec);
  }
  if (ec) return IOError("Cannot clear cache directory '", options_.root, "': ", ec.message());
  std::lock_guard<std::mutex> guard(mutex_);
  approx_bytes_ = 0;
  return Status::OK();
}

DiskStoreStats DiskStore::stats() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return stats_;
}

}  // namespace terrafuse::cache
