#include "terrafuse/routes/metrics_routes.h"

#include <cstdio>

#include "terrafuse/cache/result_cache.h"
#include "terrafuse/routes/api_prefix.h"
#include "terrafuse/workers/worker_pool.h"
#include "terrafuse/routes/services.h"

namespace terrafuse::routes {

namespace {

void AppendMetric(std::string* out, const char* name, const char* type, const char* help) {
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

Result<http::Response> Metrics(const http::Request&, Services& services) {
  if (services.metrics == nullptr) return Unavailable("Metrics are not available: no server is running");
  std::string text = RenderMetrics(*services.metrics);
  auto metric = [&text](const char* name, const char* type, const char* help, int64_t value) {
    AppendMetric(&text, name, type, help);
    text += std::string(name) + " " + std::to_string(value) + "\n";
  };
  if (services.results) {
    cache::ResultCacheStats c = services.results->stats();
    metric("terrafuse_cache_memory_hits_total", "counter", "Results answered from memory.", c.memory_hits);
    metric("terrafuse_cache_disk_hits_total", "counter", "Results answered from the disk tier.", c.disk_hits);
    metric("terrafuse_cache_misses_total", "counter", "Results computed by a worker.", c.misses);
    metric("terrafuse_cache_shared_waits_total", "counter",
           "Misses that waited for an identical computation in flight.", c.shared_waits);
    metric("terrafuse_cache_memory_bytes", "gauge", "Bytes held by the memory tier.", c.memory_bytes);
  }
  if (services.pool) {
    workers::WorkerPoolStats w = services.pool->stats();
    metric("terrafuse_worker_calls_total", "counter", "UDF calls answered by workers.", w.calls);
    metric("terrafuse_worker_calls_by_hash_total", "counter",
           "Calls sent without their code: the worker had that UDF version.", w.calls_by_hash);
    metric("terrafuse_worker_calls_batched_total", "counter",
           "Calls sent behind another call in one write to a worker (short calls, when calls wait).",
           w.calls_batched);
    metric("terrafuse_worker_calls_async_total", "counter",
           "Calls queued without a waiting thread (uncached runs of shared tokens), run by the pool's drivers.",
           w.calls_async);
    metric("terrafuse_worker_timeouts_total", "counter", "Calls killed at their time limit.", w.timeouts);
    metric("terrafuse_worker_crashes_total", "counter", "Workers that died during a call.", w.crashes);
    metric("terrafuse_worker_started_total", "counter", "Workers started, replacements included.",
           w.workers_started);
    metric("terrafuse_workers_busy", "gauge", "Workers running a call.", w.busy);
    metric("terrafuse_workers_idle", "gauge", "Workers waiting for a call.", w.idle);
  }
  http::Response response = http::Response::Text(std::move(text), 200, "text/plain; version=0.0.4; charset=utf-8");
  response.cacheable = false;
  response.headers.Set("Cache-Control", "no-store");
  return response;
}

}  // namespace

std::string RenderMetrics(const http::ServerMetrics& metrics) {
  std::string out;
  AppendMetric(&out, "terrafuse_http_requests_total", "counter", "HTTP requests answered, by status class.");
  for (int cls = 1; cls <= 5; ++cls) {
    out += "terrafuse_http_requests_total{class=\"" + std::to_string(cls) + "xx\"} " +
           std::to_string(metrics.responses_by_class[cls].load()) + "\n";
  }
  AppendMetric(&out, "terrafuse_http_requests_in_flight", "gauge", "Requests received and not yet answered.");
  out += "terrafuse_http_requests_in_flight " + std::to_string(metrics.in_flight.load()) + "\n";
  AppendMetric(&out, "terrafuse_http_connections_open", "gauge", "Open client connections.");
  out += "terrafuse_http_connections_open " + std::to_string(metrics.connections.load()) + "\n";
  AppendMetric(&out, "terrafuse_http_rejected_busy_total", "counter",
               "Requests answered 503 because every handler thread was busy and the queue full.");
  out += "terrafuse_http_rejected_busy_total " + std::to_string(metrics.rejected_busy.load()) + "\n";
  AppendMetric(&out, "terrafuse_http_fast_responses_total", "counter",
               "Requests answered from memory on the I/O thread, without the handler pool.");
  out += "terrafuse_http_fast_responses_total " + std::to_string(metrics.fast_responses.load()) + "\n";
  AppendMetric(&out, "terrafuse_http_deferred_responses_total", "counter",
               "Requests answered without a handler thread: uncached UDF calls queued in the worker pool.");
  out += "terrafuse_http_deferred_responses_total " + std::to_string(metrics.deferred_responses.load()) + "\n";
  AppendMetric(&out, "terrafuse_uptime_seconds", "gauge", "Seconds since the server started.");
  char uptime[32];
  std::snprintf(uptime, sizeof(uptime), "%.3f", metrics.UptimeSeconds());
  out += std::string("terrafuse_uptime_seconds ") + uptime + "\n";
  return out;
}

Status RegisterMetricsRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add("GET", "/metrics", Metrics));
  return router.Add("GET", std::string(kApiPrefix) + "/metrics", Metrics);
}

}  // namespace terrafuse::routes
