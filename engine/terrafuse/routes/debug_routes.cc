#include "terrafuse/routes/debug_routes.h"

#include <charconv>
#include <optional>
#include <chrono>
#include <thread>

#include "terrafuse/routes/api_prefix.h"

namespace terrafuse::routes {

namespace {

// Cancellation is checked this often while a debug request sleeps.
constexpr std::chrono::milliseconds kCancelPollInterval{10};

Result<int64_t> IntegerParam(const http::Request& request, std::string_view name, int64_t max,
                             std::optional<int64_t> fallback) {
  auto text = request.Query(name);
  if (!text) {
    if (fallback) return *fallback;
    return InvalidArgument("Missing query parameter '", name, "': expected an integer between 0 and ", max);
  }
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < 0 || value > max) {
    return InvalidArgument("Invalid ", name, "='", *text, "': expected an integer between 0 and ", max);
  }
  return value;
}

Result<http::Response> Bytes(const http::Request& request, Services&) {
  ARROW_ASSIGN_OR_RAISE(int64_t n, IntegerParam(request, "n", kMaxDebugBytes, std::nullopt));
  ARROW_ASSIGN_OR_RAISE(int64_t delay_ms, IntegerParam(request, "delay_ms", kMaxDebugDelayMs, 0));
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (request.cancelled()) return Unavailable("Request ", request.request_id, " was cancelled");
    std::this_thread::sleep_for(kCancelPollInterval);
  }
  std::string body(static_cast<size_t>(n), '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  return http::Response::Bytes(std::move(body), "application/octet-stream");
}

}  // namespace

Status RegisterDebugRoutes(http::Router& router) {
  return router.Add("GET", std::string(kApiPrefix) + "/_debug/bytes", Bytes);
}

}  // namespace terrafuse::routes
