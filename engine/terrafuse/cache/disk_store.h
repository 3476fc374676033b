// A content-addressed byte store on local disk: the one store behind @fused.cache, the
// fused.run result cache and fused.download. Safe across processes: entries appear
// atomically (temp file + rename), carry a checksum, and a per-key file lock lets one
// process compute a value while the others wait for it.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <arrow/buffer.h>

#include "terrafuse/common/status.h"

namespace terrafuse::cache {

struct DiskStoreOptions {
  /// Directory holding the entries; created when missing.
  std::string root;
  /// Size bound over all entries; least recently used entries are evicted past it.
  int64_t max_bytes = int64_t{10} << 30;
};

struct DiskStoreStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t corrupt = 0;
  int64_t evictions = 0;
};

/// Held while a key is being computed; releasing it (destruction) lets waiters proceed.
class KeyLock {
 public:
  explicit KeyLock(int fd) : fd_(fd) {}
  ~KeyLock();
  KeyLock(const KeyLock&) = delete;
  KeyLock& operator=(const KeyLock&) = delete;
  void Release();

 private:
  int fd_;
};

class DiskStore {
 public:
  /// Opens (creating when missing) the store at options.root.
  static Result<std::shared_ptr<DiskStore>> Open(DiskStoreOptions options);

  /// Returns the payload stored under `key` when present, written at most
  /// `max_age_seconds` ago (negative: any age) and intact. A corrupt or truncated entry
  /// is deleted and reported as a miss (nullptr). A hit marks the entry as recently used.
  /// The payload is read once into an unzeroed buffer: large values are not copied again.
  Result<std::shared_ptr<arrow::Buffer>> Get(std::string_view key, double max_age_seconds);

  /// Stores `payload` under `key`, replacing any previous entry atomically, then evicts
  /// least recently used entries while the store is over its size bound.
  Status Put(std::string_view key, std::string_view payload);

  /// Deletes the entry under `key`; a missing entry is not an error.
  Status Remove(std::string_view key);

  /// Takes the cross-process lock of `key`, waiting at most `timeout_seconds`.
  /// Fails with a Timeout error naming the key when another holder keeps it longer.
  Result<std::unique_ptr<KeyLock>> Lock(std::string_view key, double timeout_seconds);

  /// Returns the path an entry is (or would be) stored at.
  std::string EntryPath(std::string_view key) const;

  /// Deletes every entry.
  Status Clear();

  /// Returns the bytes currently used by entries (a directory scan).
  Result<int64_t> UsedBytes() const;

  DiskStoreStats stats() const;
  const std::string& root() const { return options_.root; }

 private:
  explicit DiskStore(DiskStoreOptions options) : options_(std::move(options)) {}
  Status EvictIfNeeded();

  DiskStoreOptions options_;
  mutable std::mutex mutex_;
  DiskStoreStats stats_;
  int64_t approx_bytes_ = -1;  // lazily scanned, then kept up to date by this process
};

/// Validates a key: 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.'.
Status ValidateKey(std::string_view key);

}  // namespace terrafuse::cache
