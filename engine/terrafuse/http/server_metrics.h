// Counters the server keeps for /metrics: plain atomics, updated on every request.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace terrafuse::http {

struct ServerMetrics {
  /// Answered requests by status class: index 1 = 1xx ... 5 = 5xx (0 unused).
  std::array<std::atomic<int64_t>, 6> responses_by_class{};
  /// Requests read and not yet answered.
  std::atomic<int64_t> in_flight{0};
  /// Open client connections.
  std::atomic<int64_t> connections{0};
  /// Requests answered 503 because the handler queue was full.
  std::atomic<int64_t> rejected_busy{0};
  /// Requests answered on the I/O thread by a route's fast handler (cached results).
  std::atomic<int64_t> fast_responses{0};
  /// Requests whose answer came from work done without a handler thread (a route's
  /// AsyncHandler: uncached UDF calls queued in the worker pool).
  std::atomic<int64_t> deferred_responses{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  void CountResponse(int status) {
    int cls = status / 100;
    if (cls >= 1 && cls <= 5) responses_by_class[cls].fetch_add(1, std::memory_order_relaxed);
  }
  double UptimeSeconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
};

}  // namespace terrafuse::http
