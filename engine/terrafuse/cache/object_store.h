// The result cache's persistent tier on an object store (S3 or any Arrow FileSystem): one
// object per entry under a prefix. Objects appear whole (an S3 PUT, or a multipart upload,
// is atomic per object), carry their write time and a checksum, and the prefix is kept
// under a size bound by deleting the oldest objects (object stores record no reads).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <arrow/buffer.h>
#include <arrow/filesystem/filesystem.h>

#include "terrafuse/common/status.h"

namespace terrafuse::cache {

/// What the result cache needs of a persistent tier: a local DiskStore or an ObjectStore.
class PersistentStore {
 public:
  virtual ~PersistentStore() = default;
  /// The payload under `key` when present, intact and at most `max_age_seconds` old
  /// (negative: any age); nullptr for a miss.
  virtual Result<std::shared_ptr<arrow::Buffer>> Get(std::string_view key, double max_age_seconds) = 0;
  /// Stores `payload` under `key` (replacing it atomically), then keeps the size bound.
  virtual Status Put(std::string_view key, std::string_view payload) = 0;
  /// Deletes every entry.
  virtual Status Clear() = 0;
};

struct ObjectStoreOptions {
  std::shared_ptr<arrow::fs::FileSystem> fs;
  /// The prefix on `fs` ("bucket/prefix" on S3).
  std::string root;
  int64_t max_bytes = int64_t{10} << 30;
};

class ObjectStore final : public PersistentStore {
 public:
  static Result<std::shared_ptr<ObjectStore>> Open(ObjectStoreOptions options);

  Result<std::shared_ptr<arrow::Buffer>> Get(std::string_view key, double max_age_seconds) override;
  Status Put(std::string_view key, std::string_view payload) override;
  Status Clear() override;

  /// The path of an entry's object on the file system.
  std::string EntryPath(std::string_view key) const;
  /// Bytes used by the entries (a listing).
  Result<int64_t> UsedBytes() const;

 private:
  explicit ObjectStore(ObjectStoreOptions options) : options_(std::move(options)) {}
  Status EvictIfNeeded();

  ObjectStoreOptions options_;
  std::mutex mutex_;
  int64_t approx_bytes_ = -1;  // listed on the first write, then kept up to date by this process
};

}  // namespace terrafuse::cache
