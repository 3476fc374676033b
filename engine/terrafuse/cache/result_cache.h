// The server's result cache: encoded responses keyed by everything that changes their bytes.
// Two tiers: a byte-weighted LRU in memory (hits without a syscall) over a persistent tier
// that survives restarts: the local DiskStore, or an ObjectStore on S3. Concurrent identical
// misses are computed once (single-flight), and entries are grouped by a tag (a UDF version
// or a token) so a tag can be purged at once.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <arrow/buffer.h>

#include "terrafuse/cache/disk_store.h"
#include "terrafuse/cache/object_store.h"
#include "terrafuse/common/status.h"

namespace terrafuse::cache {

/// One cached response: the encoded body, its media type and the metadata header.
struct CachedResult {
  std::shared_ptr<arrow::Buffer> body;
  std::string media_type;
  std::string metadata;  // JSON for X-Fused-Metadata
  int64_t created_unix_ms = 0;
  /// The body's strong ETag ('"' + HashHex(body) + '"', as http::BodyETag makes it), set
  /// as the entry enters the memory tier so that hits do not hash the body again.
  std::string etag;

  int64_t Weight() const;
};

struct ResultCacheOptions {
  int64_t memory_bytes = int64_t{256} << 20;
  /// Directory of the disk tier; empty = memory only (unless object_fs is set).
  std::string disk_root;
  /// Size bound of the persistent tier, per tag.
  int64_t disk_bytes = int64_t{10} << 30;
  /// The persistent tier on an object store instead (S3): entries under `object_root` on
  /// `object_fs` (ObjectStore). Takes precedence over disk_root.
  std::shared_ptr<arrow::fs::FileSystem> object_fs;
  std::string object_root;
};

struct ResultCacheStats {
  int64_t memory_hits = 0;
  int64_t disk_hits = 0;
  int64_t misses = 0;
  int64_t computations = 0;
  int64_t shared_waits = 0;  // misses that waited for an identical computation in flight
  int64_t memory_bytes = 0;
};

/// How a lookup was answered, for the X-Fused-Metadata header and the access log.
enum class CacheOutcome { kMemoryHit, kDiskHit, kComputed, kWaitedForOther, kBypassed };
const char* CacheOutcomeName(CacheOutcome outcome);

class ResultCache {
 public:
  using Compute = std::function<Result<CachedResult>()>;

  static Result<std::shared_ptr<ResultCache>> Make(ResultCacheOptions options);

  /// Returns the entry under (tag, key) when present and younger than `max_age_seconds`,
  /// else computes it once even when many threads ask at the same time, stores it and
  /// returns it. `max_age_seconds` <= 0 bypasses the cache. A failed computation is not
  /// stored, and every waiter gets its error.
  Result<CachedResult> GetOrCompute(const std::string& tag, const std::string& key,
                                    double max_age_seconds, const Compute& compute,
                                    CacheOutcome* outcome = nullptr);

  /// Returns the entry under (tag, key) when it is in memory and younger than
  /// `max_age_seconds`, without touching the disk or waiting for a computation: what the
  /// server answers from its I/O thread. nullopt otherwise (GetOrCompute then decides).
  std::optional<CachedResult> PeekMemory(const std::string& tag, const std::string& key,
                                         double max_age_seconds);
  /// Drops every entry of `tag`, in memory and on disk.
  Status Purge(const std::string& tag);

  ResultCacheStats stats() const;

 private:
  struct Entry {
    std::string id;  // tag + '/' + key
    std::string tag;
    CachedResult value;
  };
  struct Flight;

  explicit ResultCache(ResultCacheOptions options) : options_(std::move(options)) {}
  std::shared_ptr<PersistentStore> TagStore(const std::string& tag);
  bool LookupMemory(const std::string& id, double max_age_seconds, CachedResult* out);
  void InsertMemory(const std::string& id, const std::string& tag, const CachedResult& value);

  ResultCacheOptions options_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::unordered_map<std::string, std::shared_ptr<PersistentStore>> stores_;
  ResultCacheStats stats_;
};

/// Serializes an entry for the disk tier (and parses it back; a malformed blob is a miss).
std::string SerializeCachedResult(const CachedResult& value);
Result<CachedResult> ParseCachedResult(std::shared_ptr<arrow::Buffer> blob);

}  // namespace terrafuse::cache
