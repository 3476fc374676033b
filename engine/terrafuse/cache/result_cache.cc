#include "terrafuse/cache/result_cache.h"

#include <cstring>
#include <future>

#include "terrafuse/common/hash.h"

namespace terrafuse::cache {

namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char kBlobMagic[4] = {'T', 'F', 'R', '1'};

void AppendU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

}  // namespace

int64_t CachedResult::Weight() const {
  constexpr int64_t kOverhead = 256;  // list node, index entry, strings' own headers
  return (body ? body->size() : 0) + static_cast<int64_t>(media_type.size() + metadata.size() + etag.size()) +
         kOverhead;
}

const char* CacheOutcomeName(CacheOutcome outcome) {
  switch (outcome) {
    case CacheOutcome::kMemoryHit: return "hit";
    case CacheOutcome::kDiskHit: return "disk_hit";
    case CacheOutcome::kComputed: return "miss";
    case CacheOutcome::kWaitedForOther: return "shared";
    case CacheOutcome::kBypassed: return "bypass";
  }
  return "miss";
}

std::string SerializeCachedResult(const CachedResult& value) {
  std::string out(kBlobMagic, sizeof(kBlobMagic));
  AppendU32(out, static_cast<uint32_t>(value.media_type.size()));
  out += value.media_type;
  AppendU32(out, static_cast<uint32_t>(value.metadata.size()));
  out += value.metadata;
  out.append(reinterpret_cast<const char*>(&value.created_unix_ms), 8);
  if (value.body) out.append(reinterpret_cast<const char*>(value.body->data()), value.body->size());
  return out;
}

Result<CachedResult> ParseCachedResult(std::shared_ptr<arrow::Buffer> blob) {
  const uint8_t* p = blob->data();
  int64_t left = blob->size();
  auto take = [&](void* out, int64_t n) {
    if (left < n) return false;
    std::memcpy(out, p, n);
    p += n;
    left -= n;
    return true;
  };
  auto take_string = [&](std::string* out) {
    uint32_t n = 0;
    if (!take(&n, 4) || left < n) return false;
    out->assign(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return true;
  };
  char magic[4];
  CachedResult value;
  if (!take(magic, 4) || std::memcmp(magic, kBlobMagic, 4) != 0 || !take_string(&value.media_type) ||
      !take_string(&value.metadata) || !take(&value.created_unix_ms, 8)) {
    return Internal("Malformed cached result");
  }
  const int64_t offset = p - blob->data();
  value.body = arrow::SliceBuffer(std::move(blob), offset, left);
  return value;
}

// An identical computation in flight: later askers wait on its result.
struct ResultCache::Flight {
  std::promise<Result<CachedResult>> promise;
  std::shared_future<Result<CachedResult>> result = promise.get_future().share();
};

Result<std::shared_ptr<ResultCache>> ResultCache::Make(ResultCacheOptions options) {
  if (options.memory_bytes < 0) return InvalidArgument("Result cache memory size must not be negative");
  return std::shared_ptr<ResultCache>(new ResultCache(std::move(options)));
}

namespace {

// The local DiskStore as the persistent tier.
class DiskTier final : public PersistentStore {
 public:
  explicit DiskTier(std::shared_ptr<DiskStore> store) : store_(std::move(store)) {}
  Result<std::shared_ptr<arrow::Buffer>> Get(std::string_view key, double max_age_seconds) override {
    return store_->Get(key, max_age_seconds);
  }
  Status Put(std::string_view key, std::string_view payload) override { return store_->Put(key, payload); }
  Status Clear() override { return store_->Clear(); }

 private:
  std::shared_ptr<DiskStore> store_;
};

}  // namespace

std::shared_ptr<PersistentStore> ResultCache::TagStore(const std::string& tag) {
  if (options_.disk_root.empty() && !options_.object_fs) return nullptr;
  std::lock_guard<std::mutex> guard(mutex_);
  auto it = stores_.find(tag);
  if (it != stores_.end()) return it->second;
  std::shared_ptr<PersistentStore> store;
  if (options_.object_fs) {
    auto opened = ObjectStore::Open({options_.object_fs, options_.object_root + "/" + tag, options_.disk_bytes});
    if (opened.ok()) store = *opened;
  } else {
    auto opened = DiskStore::Open({options_.disk_root + "/" + tag, options_.disk_bytes});
    if (opened.ok()) store = std::make_shared<DiskTier>(*opened);
  }
  if (!store) return nullptr;  // the persistent tier is an optimisation: run without it
  return stores_[tag] = store;
}

bool ResultCache::LookupMemory(const std::string& id, double max_age_seconds, CachedResult* out) {
  auto it = index_.find(id);
  if (it == index_.end()) return false;
  const CachedResult& value = it->second->value;
  if (static_cast<double>(NowUnixMs() - value.created_unix_ms) > max_age_seconds * 1000.0) {
    return false;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  *out = value;
  return true;
}

void ResultCache::InsertMemory(const std::string& id, const std::string& tag, const CachedResult& value) {
  if (value.Weight() > options_.memory_bytes) return;  // would evict everything else
  auto it = index_.find(id);
  if (it != index_.end()) {
    stats_.memory_bytes -= it->second->value.Weight();
    lru_.erase(it->second);
  }
  lru_.push_front(Entry{id, tag, value});
  index_[id] = lru_.begin();
  stats_.memory_bytes += value.Weight();
  while (stats_.memory_bytes > options_.memory_bytes && !lru_.empty()) {
    stats_.memory_bytes -= lru_.back().value.Weight();
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

std::optional<CachedResult> ResultCache::PeekMemory(const std::string& tag, const std::string& key,
                                                    double max_age_seconds) {
  if (max_age_seconds <= 0) return std::nullopt;
  const std::string id = tag + "/" + key;
  std::lock_guard<std::mutex> guard(mutex_);
  CachedResult hit;
  if (!LookupMemory(id, max_age_seconds, &hit)) return std::nullopt;
  ++stats_.memory_hits;
  return hit;
}

Result<CachedResult> ResultCache::GetOrCompute(const std::string& tag, const std::string& key,
                                               double max_age_seconds, const Compute& compute,
                                               CacheOutcome* outcome) {
  CacheOutcome ignored;
  if (outcome == nullptr) outcome = &ignored;
  if (max_age_seconds <= 0) {
    *outcome = CacheOutcome::kBypassed;
    return compute();
  }
  ARROW_RETURN_NOT_OK(ValidateKey(tag));
  ARROW_RETURN_NOT_OK(ValidateKey(key));
  const std::string id = tag + "/" + key;

  std::shared_ptr<Flight> flight;
  std::shared_future<Result<CachedResult>> in_flight;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    CachedResult hit;
    if (LookupMemory(id, max_age_seconds, &hit)) {
      ++stats_.memory_hits;
      *outcome = CacheOutcome::kMemoryHit;
      return hit;
    }
    auto it = flights_.find(id);
    if (it != flights_.end()) {
      ++stats_.shared_waits;
      in_flight = it->second->result;
    } else {
      flight = flights_[id] = std::make_shared<Flight>();
    }
  }
  if (in_flight.valid()) {
    *outcome = CacheOutcome::kWaitedForOther;
    return in_flight.get();
  }

  // This thread leads the computation; every path below settles the flight.
  Result<CachedResult> result = [&]() -> Result<CachedResult> {
    std::shared_ptr<PersistentStore> store = TagStore(tag);
    if (store) {
      auto got = store->Get(key, max_age_seconds);
      if (got.ok() && *got) {
        auto parsed = ParseCachedResult(*got);
        if (parsed.ok()) {
          *outcome = CacheOutcome::kDiskHit;
          return parsed;
        }
      }
    }
    *outcome = CacheOutcome::kComputed;
    Result<CachedResult> computed = compute();
    if (computed.ok()) {
      computed->created_unix_ms = NowUnixMs();
      // A failed disk write only costs a later recomputation.
      if (store) (void)store->Put(key, SerializeCachedResult(*computed));
    }
    return computed;
  }();
  if (result.ok() && result->etag.empty()) {
    const std::string_view body = result->body ? std::string_view(*result->body) : std::string_view();
    result->etag = "\"" + HashHex(body) + "\"";
  }
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (result.ok()) InsertMemory(id, tag, *result);
    if (*outcome == CacheOutcome::kDiskHit) {
      ++stats_.disk_hits;
    } else {
      ++stats_.misses;
      ++stats_.computations;
    }
    flights_.erase(id);
  }
  flight->promise.set_value(result);
  return result;
}

Status ResultCache::Purge(const std::string& tag) {
  ARROW_RETURN_NOT_OK(ValidateKey(tag));
  {
    std::lock_guard<std::mutex> guard(mutex_);
    for (auto it = lru_.begin(); it != lru_.end();) {
      if (it->tag == tag) {
        stats_.memory_bytes -= it->value.Weight();
        index_.erase(it->id);
        it = lru_.erase(it);
      } else {
        ++it;
      }
    }
  }
  std::shared_ptr<PersistentStore> store = TagStore(tag);
  return store ? store->Clear() : Status::OK();
}

ResultCacheStats ResultCache::stats() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return stats_;
}

}  // namespace terrafuse::cache
