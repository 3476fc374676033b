#include "terrafuse/cache/object_store.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include <arrow/io/interfaces.h>

#include "terrafuse/cache/disk_store.h"
#include "terrafuse/common/hash.h"

namespace terrafuse::cache {

namespace {

namespace afs = arrow::fs;

constexpr char kMagic[8] = {'T', 'F', 'O', 'B', 'J', 'C', 'H', '1'};
constexpr std::string_view kSuffix = ".tfc";

struct ObjectHeader {
  char magic[8];
  int64_t created_unix_ms;
  uint64_t payload_size;
  uint64_t payload_xxh64;
};
static_assert(sizeof(ObjectHeader) == 32);

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsEntry(const afs::FileInfo& info) { return info.IsFile() && info.path().ends_with(kSuffix); }

}  // namespace

Result<std::shared_ptr<ObjectStore>> ObjectStore::Open(ObjectStoreOptions options) {
  if (!options.fs) return InvalidArgument("Object cache needs a file system");
  if (options.root.empty()) return InvalidArgument("Object cache prefix must not be empty");
  if (options.max_bytes <= 0) return InvalidArgument("Cache size bound must be positive, got ", options.max_bytes);
  while (options.root.ends_with('/')) options.root.pop_back();
  return std::shared_ptr<ObjectStore>(new ObjectStore(std::move(options)));
}

std::string ObjectStore::EntryPath(std::string_view key) const {
  return options_.root + "/" + std::string(key) + std::string(kSuffix);
}

Result<std::shared_ptr<arrow::Buffer>> ObjectStore::Get(std::string_view key, double max_age_seconds) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string path = EntryPath(key);
  auto file = options_.fs->OpenInputFile(path);
  if (!file.ok()) {
    // A missing object is a miss; so is any other failure: the tier is only an optimisation.
    return std::shared_ptr<arrow::Buffer>();
  }
  // One read of the whole object (one GET), then checks in memory.
  ARROW_ASSIGN_OR_RAISE(int64_t size, (*file)->GetSize());
  auto blob = (*file)->ReadAt(0, size);
  if (!blob.ok()) return std::shared_ptr<arrow::Buffer>();
  ObjectHeader header;
  const int64_t got = (*blob)->size();
  if (got < static_cast<int64_t>(sizeof(header))) return std::shared_ptr<arrow::Buffer>();
  std::memcpy(&header, (*blob)->data(), sizeof(header));
  auto payload = arrow::SliceBuffer(*blob, sizeof(header));
  if (std::memcmp(header.magic, kMagic, sizeof(kMagic)) != 0 || header.payload_size != static_cast<uint64_t>(payload->size()) ||
      Hash64(std::string_view(reinterpret_cast<const char*>(payload->data()), payload->size())) != header.payload_xxh64) {
    (void)options_.fs->DeleteFile(path);  // corrupt: drop it
    return std::shared_ptr<arrow::Buffer>();
  }
  if (max_age_seconds >= 0 && static_cast<double>(NowUnixMs() - header.created_unix_ms) > max_age_seconds * 1000.0) {
    return std::shared_ptr<arrow::Buffer>();
  }
  return payload;
}

Status ObjectStore::Put(std::string_view key, std::string_view payload) {
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  ObjectHeader header;
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.created_unix_ms = NowUnixMs();
  header.payload_size = payload.size();
  header.payload_xxh64 = Hash64(payload);
  const std::string path = EntryPath(key);
  // Object stores need no directories; a local file system (tests, NFS) does.
  if (options_.fs->type_name() == "local") ARROW_RETURN_NOT_OK(options_.fs->CreateDir(options_.root, true));
  // The object becomes visible only when the stream is closed (PUT or completed multipart).
  ARROW_ASSIGN_OR_RAISE(auto out, options_.fs->OpenOutputStream(path));
  Status st = out->Write(&header, sizeof(header));
  if (st.ok()) st = out->Write(payload.data(), static_cast<int64_t>(payload.size()));
  if (st.ok()) st = out->Close();
  if (!st.ok()) {
    (void)out->Abort();
    return IOError("Cannot write cache object '", path, "': ", st.message());
  }
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (approx_bytes_ >= 0) approx_bytes_ += static_cast<int64_t>(sizeof(header) + payload.size());
  }
  return EvictIfNeeded();
}

Result<int64_t> ObjectStore::UsedBytes() const {
  afs::FileSelector selector;
  selector.base_dir = options_.root;
  selector.recursive = true;
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, options_.fs->GetFileInfo(selector));
  int64_t total = 0;
  for (const auto& info : infos) {
    if (IsEntry(info)) total += info.size();
  }
  return total;
}

Status ObjectStore::EvictIfNeeded() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (approx_bytes_ >= 0 && approx_bytes_ <= options_.max_bytes) return Status::OK();
  }
  // Other servers may share the prefix: list to get the true size before evicting.
  afs::FileSelector selector;
  selector.base_dir = options_.root;
  selector.recursive = true;
  selector.allow_not_found = true;
  ARROW_ASSIGN_OR_RAISE(auto infos, options_.fs->GetFileInfo(selector));
  std::vector<afs::FileInfo> entries;
  int64_t total = 0;
  for (auto& info : infos) {
    if (!IsEntry(info)) continue;
    total += info.size();
    entries.push_back(std::move(info));
  }
  if (total > options_.max_bytes) {
    std::sort(entries.begin(), entries.end(), [](const afs::FileInfo& a, const afs::FileInfo& b) {
      return a.mtime() < b.mtime();  // oldest write first
    });
    for (const afs::FileInfo& e : entries) {
      if (total <= options_.max_bytes) break;
      if (options_.fs->DeleteFile(e.path()).ok()) total -= e.size();
    }
  }
  std::lock_guard<std::mutex> guard(mutex_);
  approx_bytes_ = total;
  return Status::OK();
}

Status ObjectStore::Clear() {
  Status st = options_.fs->DeleteDirContents(options_.root, /*missing_dir_ok=*/true);
  if (!st.ok()) return IOError("Cannot clear the cache under '", options_.root, "': ", st.message());
  std::lock_guard<std::mutex> guard(mutex_);
  approx_bytes_ = 0;
  return Status::OK();
}

}  // namespace terrafuse::cache
