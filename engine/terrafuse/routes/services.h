// What handlers reach besides their request: one object built by the program's main and
// shared by every handler thread (so everything here must be safe to use concurrently).
#pragma once

#include <memory>
#include <string>

#include "terrafuse/http/server_metrics.h"

namespace terrafuse {

namespace cache {
class ResultCache;
}
namespace encode {
class EncoderRegistry;
}
namespace jobs {
class JobStore;
class JobRunner;
}  // namespace jobs
namespace storage {
struct StorageConfig;
}
namespace udf {
class Registry;
}
namespace workers {
class WorkerPool;
}

struct Services {
  /// The data home (--home): registry, credentials and caches live under it.
  std::string home;
  /// The built workbench (index.html + assets/) served at /workbench; empty: not served.
  std::string web_root;
  /// The server's counters, for /metrics; null when no server runs (tests).
  const http::ServerMetrics* metrics = nullptr;
  /// UDFs, users and tokens (SQLite under the home).
  std::shared_ptr<udf::Registry> registry;
  /// Warm Python workers that run UDF code.
  workers::WorkerPool* pool = nullptr;
  /// Output formats by name.
  const encode::EncoderRegistry* encoders = nullptr;
  /// Encoded results by UDF version + parameters + tile + format.
  std::shared_ptr<cache::ResultCache> results;
  /// Batch jobs (SQLite under the home) and the threads running their tasks; null when the
  /// server runs no jobs.
  jobs::JobStore* jobs = nullptr;
  jobs::JobRunner* job_runner = nullptr;
  /// Where the file routes resolve fd:// (local paths and file:// refused); null: no files API.
  std::shared_ptr<const storage::StorageConfig> storage;
  /// Key of signed file URLs (<home>/signing.key).
  std::string signing_key;
};

}  // namespace terrafuse
