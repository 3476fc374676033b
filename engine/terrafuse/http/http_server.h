// The HTTP/1.1 server: a listener, one coroutine per connection (Boost.Beast on Asio), and
// a bounded thread pool that runs handlers, so a slow handler never blocks network I/O.
//
//   listener ──accept──> session (keep-alive loop: read → handler pool → write)
//                           └─ Router::Dispatch → handler → FinalizeResponse (CORS, ETag, Range)
//
// Every limit is a named constant below; HttpServerOptions starts from them.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "terrafuse/common/status.h"
#include "terrafuse/http/router.h"
#include "terrafuse/http/server_metrics.h"

namespace terrafuse::http {

/// The default port of terrafused (`--port`); 0 asks the OS for a free one.
inline constexpr uint16_t kDefaultPort = 8000;
/// Request line + headers: tile URLs with many UDF parameters fit with room to spare.
inline constexpr size_t kDefaultHeaderLimit = 64 * 1024;
/// Request body: posted UDF code with its header modules and parameters.
inline constexpr size_t kDefaultBodyLimit = 32 * 1024 * 1024;
/// Time to receive one whole request once it has started, and to send one response.
inline constexpr std::chrono::seconds kDefaultReadTimeout{30};
inline constexpr std::chrono::seconds kDefaultWriteTimeout{60};
/// Time a keep-alive connection may wait for its next request.
inline constexpr std::chrono::seconds kDefaultIdleTimeout{60};
/// Time in-flight requests get to finish after a shutdown starts.
inline constexpr std::chrono::seconds kDefaultShutdownDeadline{10};
/// Requests that may wait for a handler thread, per thread, before new ones get 503.
inline constexpr int kQueuedRequestsPerThread = 64;

struct HttpServerOptions {
  /// Address to bind: an IP literal or a resolvable name. Loopback unless told otherwise.
  std::string host = "127.0.0.1";
  uint16_t port = kDefaultPort;
  /// Threads running handlers (encoding, waiting on workers).
  int handler_threads = 4;
  /// Threads running network I/O; one keeps up with loopback traffic on small machines.
  int io_threads = 1;
  size_t header_limit = kDefaultHeaderLimit;
  size_t body_limit = kDefaultBodyLimit;
  /// Body of upload routes (streamed to storage, never held in memory): no limit by default.
  uint64_t upload_limit = UINT64_MAX;
  std::chrono::milliseconds read_timeout = kDefaultReadTimeout;
  std::chrono::milliseconds write_timeout = kDefaultWriteTimeout;
  std::chrono::milliseconds idle_timeout = kDefaultIdleTimeout;
  std::chrono::milliseconds shutdown_deadline = kDefaultShutdownDeadline;
  /// Requests queued or running on handler threads beyond which new ones get 503;
  /// 0 means handler_threads * kQueuedRequestsPerThread.
  int max_queued = 0;
  /// Handle SIGINT and SIGTERM: the first starts a graceful shutdown, a second one ends
  /// it at once.
  bool handle_signals = false;
};

class HttpServer {
 public:
  /// Binds host:port and starts the handler threads. Fails with InvalidArgument for bad
  /// options, and with IOError naming host:port when it cannot listen (port in use,
  /// unknown host).
  static Result<std::unique_ptr<HttpServer>> Make(HttpServerOptions options, Router router,
                                                  Services& services);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Returns the bound address (e.g. "127.0.0.1") and port (the real one when 0 was asked).
  const std::string& host() const;
  uint16_t port() const;

  /// Serves until Stop() or a signal, then shuts down gracefully: stops accepting, closes
  /// idle connections and lets in-flight requests finish, each answered in full. Returns
  /// OK when all finished, or a Timeout error when the shutdown deadline cut some off (their
  /// handlers may still be running: the caller should exit). Call once.
  Status Run();

  /// Starts the graceful shutdown; safe from any thread, any number of times.
  void Stop();

  const ServerMetrics& metrics() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace terrafuse::http
