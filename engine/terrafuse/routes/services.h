// What handlers reach besides their request: one object built by the program's main and
// shared by every handler thread (so everything here must be safe to use concurrently).
#pragma once

#include <string>

#include "terrafuse/http/server_metrics.h"

namespace terrafuse {

struct Services {
  /// The data home (--home): registry, credentials and caches live under it.
  std::string home;
  /// The server's counters, for /metrics; null when no server runs (tests).
  const http::ServerMetrics* metrics = nullptr;
  // To come with their subsystems: result cache, UDF registry, worker pool, encoders.
};

}  // namespace terrafuse
