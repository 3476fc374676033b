// Where the API lives: Fused's SDK talks to `<base_url>` = `http://HOST:PORT/server/v1`.
#pragma once

#include <string_view>

namespace terrafuse::routes {

inline constexpr std::string_view kApiPrefix = "/server/v1";

}  // namespace terrafuse::routes
