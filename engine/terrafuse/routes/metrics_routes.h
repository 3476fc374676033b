// GET /metrics: the server's counters in the Prometheus text format (version 0.0.4).
#pragma once

#include <string>

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"
#include "terrafuse/http/server_metrics.h"

namespace terrafuse::routes {

/// Adds GET /metrics and GET /server/v1/metrics.
Status RegisterMetricsRoutes(http::Router& router);

/// Renders the metrics: terrafuse_http_requests_total{class="2xx"} ...,
/// terrafuse_http_requests_in_flight, terrafuse_http_connections_open,
/// terrafuse_http_rejected_busy_total, terrafuse_uptime_seconds.
std::string RenderMetrics(const http::ServerMetrics& metrics);

}  // namespace terrafuse::routes
