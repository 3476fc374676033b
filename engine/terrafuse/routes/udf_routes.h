// Routes that run UDFs (shared tokens, public names, saved UDFs, posted code) and manage
// them (save, list, delete, tokens, cache purge). docs/design/server.md lists them.
#pragma once

#include <string>
#include <string_view>

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"

namespace terrafuse::routes {

Status RegisterUdfRoutes(http::Router& router);

/// Parses a duration as the SDK writes it: seconds ("90"), or "30s", "10m", "12h", "90d".
Result<double> ParseDurationSeconds(std::string_view text);

/// The default lifetime of cached results (90 days, as the Fused docs state).
inline constexpr double kDefaultResultMaxAgeSeconds = 90.0 * 24 * 3600;

}  // namespace terrafuse::routes
