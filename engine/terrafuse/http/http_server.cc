#include "terrafuse/http/http_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <arrow/io/file.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "terrafuse/http/error_response.h"
#include "terrafuse/http/log.h"
#include "terrafuse/http/response_filters.h"

namespace terrafuse::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// After answering a request whose body was not read (413, 400), keep reading and
// discarding for a moment before closing: closing a socket with unread input sends a
// reset, which can destroy the answer before the client reads it.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kLingerBytes = 4 * 1024 * 1024;
// Pause after a failed accept (out of file descriptors) instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetryPause{100};
// After a timeout shut a connection down, how often to cancel its operation again until it
// ends (an operation whose completion was already queued at the timeout is not cancelled).
constexpr std::chrono::milliseconds kTimeoutRetry{100};
// The largest response head buffer a connection keeps between requests.
constexpr size_t kKeptHeadBytes = 16 * 1024;
// Incoming X-Request-Id values are kept when they are this short and plain.
constexpr size_t kMaxRequestIdLength = 64;

std::string FormatMs(std::chrono::steady_clock::duration elapsed) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3f", std::chrono::duration<double, std::milli>(elapsed).count());
  return buffer;
}

bool IsPlainRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  }
  return true;
}

// Framing headers belong to the server: a handler setting them would corrupt the stream.
bool IsFramingHeader(std::string_view name) {
  switch (name.size()) {
    case 10: return HeaderNameEquals(name, "Connection");
    case 14: return HeaderNameEquals(name, "Content-Length");
    case 17: return HeaderNameEquals(name, "Transfer-Encoding");
    default: return false;
  }
}

bool HasLineBreak(std::string_view text) {
  return std::memchr(text.data(), '\n', text.size()) || std::memchr(text.data(), '\r', text.size());
}

// Whether a handler's header may go out. Framing headers belong to the server (a handler's
// would corrupt the stream), and the injection guard never emits a name or value that could
// start a new header line.
bool Emittable(std::string_view name, std::string_view value) {
  return !name.empty() && !IsFramingHeader(name) && name.find(':') == std::string_view::npos &&
         !HasLineBreak(name) && !HasLineBreak(value);
}

// The status line and headers of a response, into `head` (reused across a connection's
// requests: no allocation once it has grown). Beast's generic serializer cost more than
// everything else of a cached hit; sizing the string once and copying each piece in place
// costs less than appending them. `content_length` is omitted when unset.
void SerializeHead(const Response& response, std::optional<size_t> content_length, bool keep_alive,
                   std::string& head) {
  using namespace std::string_view_literals;
  constexpr std::string_view kServer = "Server: terrafused\r\n"sv;
  constexpr std::string_view kLength = "Content-Length: "sv;
  constexpr std::string_view kClose = "Connection: close\r\n"sv;
  char status[8];
  const std::string_view status_text(
      status, std::to_chars(status, status + sizeof(status), response.status).ptr - status);
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
  char length[24];
  const std::string_view length_text(
      length, content_length ? std::to_chars(length, length + sizeof(length), *content_length).ptr - length : 0);

  // A head once grown big (a long traceback in X-Fused-Metadata) is not kept for the
  // connection's life.
  if (head.capacity() > kKeptHeadBytes) std::string().swap(head);
  size_t size = 9 + status_text.size() + 1 + reason.size() + 2 + kServer.size() + 2;
  if (content_length) size += kLength.size() + length_text.size() + 2;
  if (!keep_alive) size += kClose.size();
  // Which fields go out, decided once (a response has far fewer than 64; any beyond are
  // checked again when written).
  const auto& fields = response.headers.fields();
  uint64_t dropped = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto& [name, value] = fields[i];
    if (Emittable(name, value)) {
      size += name.size() + 2 + value.size() + 2;
    } else {
      if (i < 64) dropped |= uint64_t{1} << i;
      if (!IsFramingHeader(name)) TF_LOG(LogLevel::kError, "invalid_header_dropped", {"name", name});
    }
  }
  head.resize(size);
  char* out = head.data();
  auto put = [&out](std::string_view piece) {
    std::memcpy(out, piece.data(), piece.size());
    out += piece.size();
  };
  put("HTTP/1.1 "sv);
  put(status_text);
  put(" "sv);
  put(std::string_view(reason.data(), reason.size()));
  put("\r\n"sv);
  for (size_t i = 0; i < fields.size(); ++i) {
    const auto& [name, value] = fields[i];
    if (i < 64 ? (dropped >> i) & 1 : !Emittable(name, value)) continue;
    put(name);
    put(": "sv);
    put(value);
    put("\r\n"sv);
  }
  put(kServer);
  if (content_length) {
    put(kLength);
    put(length_text);
    put("\r\n"sv);
  }
  if (!keep_alive) put(kClose);
  put("\r\n"sv);
}

// Runs `function` on `pool` and resumes the awaiting coroutine on its own executor with
// the result, so handler work never runs on an I/O thread.
template <typename Function, typename T = std::invoke_result_t<Function>>
net::awaitable<T> RunOnPool(net::thread_pool& pool, Function function) {
  auto initiate = [&pool, function = std::move(function)](auto handler) mutable {
    net::post(pool, [function = std::move(function), handler = std::move(handler)]() mutable {
      T result = function();
      auto executor = net::get_associated_executor(handler);
      net::post(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
        handler(std::move(result));
      });
    });
  };
  co_return co_await net::async_initiate<const net::use_awaitable_t<>&, void(T)>(std::move(initiate),
                                                                                   net::use_awaitable);
}

// Pieces of streamed bodies (uploads and file downloads).
constexpr size_t kStreamChunk = 1 << 20;

class Session;

}  // namespace

struct HttpServer::Impl {
  Impl(HttpServerOptions opts, Router r, Services& s)
      : options(std::move(opts)),
        router(std::move(r)),
        services(s),
        // Each io_context is run by one thread (the hint lets asio skip some locking).
        ioc(1),
        control(net::make_strand(ioc)),
        acceptor(control),
        signals(control),
        deadline(control),
        work(net::make_work_guard(ioc)),
        pool(static_cast<size_t>(options.handler_threads)) {
    for (int i = 1; i < options.io_threads; ++i) {
      extra_iocs.push_back(std::make_unique<net::io_context>(1));
      extra_work.push_back(net::make_work_guard(*extra_iocs.back()));
    }
    std::random_device random;
    char prefix[16];
    std::snprintf(prefix, sizeof(prefix), "%08x", static_cast<unsigned>(random()));
    request_id_prefix = prefix;
  }

  std::string NextRequestId(std::string_view incoming) {
    if (IsPlainRequestId(incoming)) return std::string(incoming);
    char digits[24];
    char* end = std::to_chars(digits, digits + sizeof(digits), ++request_counter).ptr;
    std::string id;  // one allocation at most (none while it fits the small-string buffer)
    id.reserve(request_id_prefix.size() + 1 + static_cast<size_t>(end - digits));
    id += request_id_prefix;
    id += '-';
    id.append(digits, static_cast<size_t>(end - digits));
    return id;
  }

  // A new connection's executor: the I/O threads' io_contexts in turn. Each is run by one
  // thread, so a connection's handlers run in order without a strand (each strand hop is a
  // lock and a queued operation, and a request makes about five). Called on `control`.
  net::any_io_executor SessionExecutor() {
    const size_t i = next_io_context++ % (extra_iocs.size() + 1);
    return i == 0 ? ioc.get_executor() : extra_iocs[i - 1]->get_executor();
  }

  net::awaitable<void> Accept();
  void StartSession(tcp::socket socket);
  void WaitForSignal();
  void BeginShutdown();
  void ForceStop();
  void Finish();

  // Members are destroyed in reverse order: the pool (last) joins its threads first, and
  // the metrics (before the io_context) outlive the sessions the io_context destroys.
  HttpServerOptions options;
  Router router;
  Services& services;
  ServerMetrics metrics;
  std::string bound_host;
  uint16_t bound_port = 0;
  std::string request_id_prefix;
  std::atomic<uint64_t> request_counter{0};
  std::atomic<int> queued{0};
  std::atomic<bool> stopping{false};

  // The first I/O thread's io_context (also the control strand's); the others' follow.
  net::io_context ioc;
  std::vector<std::unique_ptr<net::io_context>> extra_iocs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> extra_work;
  size_t next_io_context = 0;
  // The control strand owns the acceptor, the session table and the shutdown state.
  net::strand<net::io_context::executor_type> control;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer deadline;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_session_id = 0;
  bool forced = false;
  int running_at_deadline = 0;
  net::thread_pool pool;
};

namespace {

// One client connection: reads requests one after the other (pipelined ones are answered
// in order, one at a time: the client's unread requests wait in TCP buffers), hands each
// to the handler pool and writes the answer.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpServer::Impl& server, tcp::socket socket)
      : server_(server), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    beast::error_code ec;
    auto endpoint = socket_.remote_endpoint(ec);
    client_ = ec ? "-" : endpoint.address().to_string();
    server_.metrics.connections.fetch_add(1);
  }
  ~Session() { server_.metrics.connections.fetch_sub(1); }

  static net::awaitable<void> Run(std::shared_ptr<Session> self) {
    // The timer's pending wait ends with the connection (it holds no reference to it).
    struct StopTimer {
      Session& session;
      ~StopTimer() { session.timer_.cancel(); }
    } stop_timer{*self};
    co_await self->Loop();
  }

  net::any_io_executor executor() { return socket_.get_executor(); }

  // Called on the session's executor at shutdown: a connection waiting for its next
  // request is closed now; one mid-request finishes it first.
  void CloseIfIdle() {
    beast::error_code ignored;
    if (idle_) socket_.cancel(ignored);
  }

  // Thread-safe: tells the running handler to give up (deadline passed).
  void CancelRequest() { cancel_.request_stop(); }

 private:
  // Counts a request as in flight for as long as it lives.
  struct InFlight {
    explicit InFlight(ServerMetrics& m) : metrics(m) { metrics.in_flight.fetch_add(1); }
    ~InFlight() { metrics.in_flight.fetch_sub(1); }
    ServerMetrics& metrics;
  };

  net::awaitable<void> Loop();
  net::awaitable<beast::error_code> ReadHeader(bhttp::request_parser<bhttp::string_body>& parser);
  template <typename Message>
  Request RequestOf(const Message& message);
  net::awaitable<std::optional<bool>> Upload(bhttp::request_parser<bhttp::string_body>& parser,
                                             std::chrono::steady_clock::time_point start);
  net::awaitable<beast::error_code> WriteFile(const Response& response);
  net::awaitable<beast::error_code> SendFile(int fd, int64_t offset, int64_t length);
  net::awaitable<Status> SpliceBody(BodySink& sink, uint64_t length, beast::error_code& ec);
  net::awaitable<Response> Handle(Request& request);
  net::awaitable<std::optional<Response>> TryDeferred(Request& request);
  net::awaitable<beast::error_code> Write(const Request& request, const Response& response, bool keep_alive);
  net::awaitable<void> AnswerReadError(beast::error_code ec, bhttp::request_parser<bhttp::string_body>& parser,
                                       std::chrono::steady_clock::time_point start);
  net::awaitable<void> LingeringClose();
  void WatchForDisconnect();
  void LogRequest(const Request& request, const Response& response, std::chrono::steady_clock::time_point start);

  // Guards the asynchronous operation in flight with a deadline (see SetDeadline).
  class Deadline {
   public:
    Deadline(Session& session, std::chrono::steady_clock::duration timeout) : session_(session) {
      session_.SetDeadline(timeout);
    }
    ~Deadline() { session_.deadline_ = kNoDeadline; }
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

   private:
    Session& session_;
  };
  static constexpr auto kNoDeadline = std::chrono::steady_clock::time_point::max();

  void SetDeadline(std::chrono::steady_clock::duration timeout);
  void ArmTimer(std::chrono::steady_clock::time_point when);
  void OnTimer();

  HttpServer::Impl& server_;
  tcp::socket socket_;
  // One timer per connection, armed lazily: an operation only records its deadline, and the
  // timer, when it fires, re-arms itself for the current one (or gives up when none is
  // set). Keep-alive requests push the deadline later, so a busy connection re-arms its timer
  // about once per timeout instead of arming and cancelling it around every read.
  net::steady_timer timer_;
  std::chrono::steady_clock::time_point deadline_ = kNoDeadline;
  std::chrono::steady_clock::time_point timer_expiry_ = kNoDeadline;  // kNoDeadline: not armed
  beast::flat_buffer buffer_;
  std::string head_;  // the response head being written, reused
  std::string client_;
  bool idle_ = true;  // waiting for the next request; only touched on the session's executor
  bool watching_ = false;  // a handler runs and WatchForDisconnect is armed; on the session's executor
  // One per connection: a disconnect or a forced shutdown ends the connection anyway.
  std::stop_source cancel_;
};

void Session::SetDeadline(std::chrono::steady_clock::duration timeout) {
  deadline_ = std::chrono::steady_clock::now() + timeout;
  // A pending wait that fires no later than the new deadline re-arms itself when it fires.
  if (timer_expiry_ > deadline_) ArmTimer(deadline_);
}

void Session::ArmTimer(std::chrono::steady_clock::time_point when) {
  timer_expiry_ = when;
  timer_.expires_at(when);  // cancels a pending wait, whose handler then does nothing
  timer_.async_wait([weak = weak_from_this()](beast::error_code ec) {
    if (ec) return;  // re-armed or cancelled
    if (auto self = weak.lock()) self->OnTimer();
  });
}

void Session::OnTimer() {
  timer_expiry_ = kNoDeadline;
  if (deadline_ == kNoDeadline) return;  // no operation waits: the next one arms the timer
  const auto now = std::chrono::steady_clock::now();
  if (deadline_ > now) {
    ArmTimer(deadline_);
    return;
  }
  // Timed out. Shutting the socket down (not only cancelling) also fails the operation an
  // asynchronous read or write starts next, even one whose previous step completed at this
  // very moment; the retry catches an operation the shutdown did not wake.
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.cancel(ignored);
  ArmTimer(now + kTimeoutRetry);
}

// Reads until `parser` has a whole header, as Beast's async_read_header does, without its two
// layers of composed operations (a fifth of a cached hit's instructions went to them). The
// parser enforces the header limit as it is fed.
net::awaitable<beast::error_code> Session::ReadHeader(bhttp::request_parser<bhttp::string_body>& parser) {
  constexpr size_t kMinRead = 512;
  constexpr size_t kMaxRead = 64 * 1024;
  beast::error_code ec;
  for (;;) {
    if (buffer_.size() > 0) {
      buffer_.consume(parser.put(buffer_.data(), ec));
      if (ec != bhttp::error::need_more && (ec || parser.is_header_done())) co_return ec;
      ec = {};
    }
    const size_t size = std::clamp(buffer_.capacity() - buffer_.size(), kMinRead, kMaxRead);
    const size_t n = co_await socket_.async_read_some(buffer_.prepare(size), net::redirect_error(net::use_awaitable, ec));
    buffer_.commit(n);
    if (ec == net::error::eof) {
      co_return parser.got_some() ? beast::error_code(bhttp::error::partial_message)
                                  : beast::error_code(bhttp::error::end_of_stream);
    }
    if (ec) co_return ec;
  }
}

net::awaitable<void> Session::Loop() {
  const HttpServerOptions& options = server_.options;
  bool first = true;
  while (!server_.stopping.load()) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.header_limit));
    // The body limit is applied once the route is known: upload routes have their own.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;

    // A new connection gets the read timeout for its first request; a kept-alive one
    // may wait the (longer) idle timeout for its next.
    idle_ = true;
    {
      Deadline deadline(*this, first ? options.read_timeout : options.idle_timeout);
      ec = co_await ReadHeader(parser);
    }
    idle_ = false;
    first = false;
    const auto start = std::chrono::steady_clock::now();
    if (!ec) {
      // Upload routes stream their body into a sink instead of reading it here (only POST
      // and PUT routes can be: other requests skip the second parse of their target).
      const bhttp::verb method = parser.get().method();
      if (method == bhttp::verb::post || method == bhttp::verb::put) {
        std::optional<bool> uploaded = co_await Upload(parser, start);
        if (uploaded) {
          if (!*uploaded) break;
          continue;
        }
      }
      // Beast checks a declared Content-Length against the limit only while parsing the
      // header, so check it here; chunked bodies are checked as they arrive.
      if (auto length = parser.content_length(); length && *length > options.body_limit) {
        ec = bhttp::error::body_limit;  // answered by AnswerReadError
      } else {
        parser.body_limit(options.body_limit);
      }
    }
    if (!ec) {
      if (auto expect = parser.get()[bhttp::field::expect]; beast::iequals(expect, "100-continue")) {
        bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, 11};
        Deadline deadline(*this, options.write_timeout);
        co_await bhttp::async_write(socket_, go_on, net::redirect_error(net::use_awaitable, ec));
      }
    }
    if (!ec && !parser.is_done()) {  // a body follows (a GET has none: no operation to start)
      Deadline deadline(*this, options.read_timeout);
      co_await bhttp::async_read(socket_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
    }
    if (ec) {
      co_await AnswerReadError(ec, parser, start);
      break;
    }

    std::optional<InFlight> in_flight(std::in_place, server_.metrics);
    auto& message = parser.get();
    Request request = RequestOf(message);
    request.body = std::move(message.body());

    Response response;
    Result<Target> target = ParseTarget(request.target);
    if (target.ok()) {
      request.path = std::move(target->path);
      request.segments = std::move(target->segments);
      request.query = std::move(target->query);
      // Answers already in memory are sent from this thread: no hop to the handler pool.
      if (std::optional<Response> fast = server_.router.TryFast(request, server_.services)) {
        response = std::move(*fast);
        FinalizeResponse(request, response);
        server_.metrics.fast_responses.fetch_add(1);
      } else if (std::optional<Response> deferred = co_await TryDeferred(request)) {
        response = std::move(*deferred);
      } else {
        response = co_await Handle(request);
      }
    } else {
      request.path = request.target;
      response = ErrorResponse(target.status(), request.request_id);
      FinalizeResponse(request, response);
    }

    const bool keep_alive = message.keep_alive() && !server_.stopping.load();
    // Counted before writing, so a client that reads /metrics next sees this answer in it.
    server_.metrics.CountResponse(response.status);
    in_flight.reset();  // answered: a client reading /metrics next must not count it in flight
    ec = co_await Write(request, response, keep_alive);
    LogRequest(request, response, start);
    if (ec || !keep_alive) break;
  }
  beast::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

template <typename Message>
Request Session::RequestOf(const Message& message) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  const auto incoming_id = message["X-Request-Id"];
  request.request_id = server_.NextRequestId(std::string_view(incoming_id.data(), incoming_id.size()));
  request.client_address = client_;
  for (const auto& field : message) {
    request.headers.Add(std::string(field.name_string()), std::string(field.value()));
  }
  request.cancel = cancel_.get_token();
  return request;
}

// Answers a request to an upload route: opens its sink (auth and path checks come before
// any of the body is read), then feeds it the body piece by piece as it arrives. Returns
// nullopt when the request is not for an upload route, else whether to keep the connection.
net::awaitable<std::optional<bool>> Session::Upload(bhttp::request_parser<bhttp::string_body>& parser,
                                                    std::chrono::steady_clock::time_point start) {
  Request request = RequestOf(parser.get());
  Result<Target> target = ParseTarget(request.target);
  if (!target.ok()) co_return std::nullopt;
  request.path = std::move(target->path);
  request.segments = std::move(target->segments);
  request.query = std::move(target->query);
  const UploadHandler* upload = server_.router.FindUpload(request);
  if (upload == nullptr) co_return std::nullopt;

  InFlight in_flight(server_.metrics);
  const bool wants_keep_alive = parser.get().keep_alive();
  const bool expects_continue = beast::iequals(parser.get()[bhttp::field::expect], "100-continue");
  Services& services = server_.services;
  auto opened = co_await RunOnPool(server_.pool, [&]() -> Result<std::unique_ptr<BodySink>> {
    try {
      return (*upload)(request, services);
    } catch (const std::exception& e) {
      TF_LOG(LogLevel::kError, "handler_exception", {"request_id", request.request_id}, {"what", e.what()});
      return Internal("Internal error; the server log has the details under request_id=", request.request_id);
    }
  });
  Response response;
  bool body_read = false;
  bool finished_ok = false;
  beast::error_code ec;
  std::unique_ptr<BodySink> sink;
  if (!opened.ok()) {
    response = ErrorResponse(opened.status(), request.request_id);
  } else {
    sink = std::move(opened).ValueUnsafe();
    Status status;
    const auto declared = parser.content_length();
    // A declared length is checked (limit, space) before the client is told to send it.
    if (declared && *declared > server_.options.upload_limit) {
      status = TooLarge("Upload exceeds the ", server_.options.upload_limit, "-byte limit");
    } else if (declared && *declared > 0) {
      status = co_await RunOnPool(server_.pool, [&] { return sink->Expect(*declared); });
    }
    if (expects_continue && status.ok()) {
      bhttp::response<bhttp::empty_body> go_on{bhttp::status::continue_, 11};
      Deadline deadline(*this, server_.options.write_timeout);
      co_await bhttp::async_write(socket_, go_on, net::redirect_error(net::use_awaitable, ec));
    }
    std::vector<char> chunk(kStreamChunk);
    if (declared) {
      // A declared length: read straight from the socket into the chunk, in reads as big
      // as the chunk, never past the body (a pipelined request may follow).
      uint64_t remaining = status.ok() ? *declared : 0;
      if (status.ok() && remaining > 0 && sink->CanSplice()) {
        // Bytes Beast already read past the header go in by Write, the rest by splice.
        const size_t ahead = static_cast<size_t>(std::min<uint64_t>(buffer_.size(), remaining));
        if (ahead > 0) {
          const size_t copied = net::buffer_copy(net::buffer(chunk.data(), ahead), buffer_.data());
          buffer_.consume(copied);
          remaining -= copied;
          status = co_await RunOnPool(server_.pool, [&] { return sink->Write(chunk.data(), copied); });
        }
        if (status.ok()) status = co_await SpliceBody(*sink, remaining, ec);
        remaining = 0;
      }
      while (!ec && status.ok() && remaining > 0) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), remaining));
        size_t filled = net::buffer_copy(net::buffer(chunk.data(), want), buffer_.data());
        buffer_.consume(filled);
        while (!ec && filled < want) {
          // A timeout per read: a big upload may take long, a stalled one may not.
          Deadline deadline(*this, server_.options.read_timeout);
          filled += co_await socket_.async_read_some(net::buffer(chunk.data() + filled, want - filled),
                                                     net::redirect_error(net::use_awaitable, ec));
        }
        if (ec) break;
        remaining -= filled;
        status = co_await RunOnPool(server_.pool, [&] { return sink->Write(chunk.data(), filled); });
      }
    } else {
      // Chunked transfer encoding: Beast's parser decodes it into the chunk.
      bhttp::request_parser<bhttp::buffer_body> body_parser{std::move(parser)};
      body_parser.body_limit(server_.options.upload_limit);
      // Beast sizes each socket read by the buffer's free capacity (512 bytes when it has
      // none): room for big reads makes ~100x fewer syscalls.
      buffer_.reserve(kStreamChunk);
      while (!ec && status.ok() && !body_parser.is_done()) {
        body_parser.get().body().data = chunk.data();
        body_parser.get().body().size = chunk.size();
        {
          Deadline deadline(*this, server_.options.read_timeout);
          co_await bhttp::async_read(socket_, buffer_, body_parser, net::redirect_error(net::use_awaitable, ec));
        }
        if (ec == bhttp::error::need_buffer) ec = {};
        const size_t received = chunk.size() - body_parser.get().body().size;
        if (!ec && received > 0) {
          status = co_await RunOnPool(server_.pool, [&] { return sink->Write(chunk.data(), received); });
        }
      }
    }
    if (ec == bhttp::error::body_limit) {
      status = TooLarge("Upload exceeds the ", server_.options.upload_limit, "-byte limit");
      ec = {};
    }
    if (!ec && status.ok()) {
      body_read = true;
      auto finished = co_await RunOnPool(server_.pool, [&]() -> Result<Response> { return sink->Finish(); });
      if (finished.ok()) {
        finished_ok = true;
        response = std::move(finished).ValueUnsafe();
      } else {
        response = ErrorResponse(finished.status(), request.request_id);
      }
    } else if (!status.ok()) {
      response = ErrorResponse(status, request.request_id);
    }
    // Dropping an unfinished sink deletes the partial upload (file work: on the pool). A
    // finished one is dropped once the answer is out: it may still free a replaced file.
    if (!finished_ok) {
      co_await RunOnPool(server_.pool, [&] {
        sink.reset();
        return 0;
      });
    }
    if (ec) {
      TF_LOG(LogLevel::kInfo, "upload_aborted", {"request_id", request.request_id},
             {"path", RedactTokens(request.path)}, {"reason", ec.message()});
      co_return false;
    }
  }
  FinalizeResponse(request, response);
  const bool keep_alive = body_read && wants_keep_alive && !server_.stopping.load();
  server_.metrics.CountResponse(response.status);
  ec = co_await Write(request, response, keep_alive);
  LogRequest(request, response, start);
  if (sink) {
    co_await RunOnPool(server_.pool, [&] {
      sink.reset();
      return 0;
    });
  }
  // The body was not (all) read: drain a little so the client sees the answer.
  if (!ec && !body_read) co_await LingeringClose();
  co_return keep_alive && !ec;
}

net::awaitable<Response> Session::Handle(Request& request) {
  const int max_queued = server_.options.max_queued > 0
                             ? server_.options.max_queued
                             : server_.options.handler_threads * kQueuedRequestsPerThread;
  if (server_.queued.fetch_add(1) >= max_queued) {
    server_.queued.fetch_sub(1);
    server_.metrics.rejected_busy.fetch_add(1);
    Response busy = ErrorResponse(Unavailable("Server busy: ", max_queued, " requests are already waiting for a "
                                              "handler thread; retry shortly"),
                                  request.request_id);
    busy.headers.Set("Retry-After", "1");
    FinalizeResponse(request, busy);
    co_return busy;
  }
  watching_ = true;
  WatchForDisconnect();
  Response response = co_await RunOnPool(server_.pool, [this, &request]() {
    Response out;
    try {
      out = server_.router.Dispatch(request, server_.services);
      FinalizeResponse(request, out);
    } catch (...) {  // Dispatch catches handler exceptions; this is for bad_alloc and the like
      TF_LOG(LogLevel::kError, "finalize_exception", {"request_id", request.request_id});
      out = ErrorResponse(Internal("Internal error; the server log has the details under request_id=",
                                   request.request_id),
                          request.request_id);
    }
    server_.queued.fetch_sub(1);
    return out;
  });
  // Stop watching: the socket is about to be written and then read again.
  watching_ = false;
  beast::error_code ignored;
  socket_.cancel(ignored);
  co_return response;
}

// Starts the route's AsyncHandler and waits for its answer without holding a handler
// thread (e.g. a UDF call waiting in the worker pool's queue); nullopt when the route has
// none or it declined: the request then goes to the handler pool.
net::awaitable<std::optional<Response>> Session::TryDeferred(Request& request) {
  const AsyncHandler* async = server_.router.FindAsync(request);
  if (async == nullptr) co_return std::nullopt;
  using Built = std::pair<std::function<Response()>, bool>;  // empty: declined
  Built built = co_await net::async_initiate<const net::use_awaitable_t<>&, void(Built)>(
      [&](auto handler) {
        auto slot = std::make_shared<decltype(handler)>(std::move(handler));
        auto executor = net::get_associated_executor(*slot);
        Respond respond = [slot, executor](std::function<Response()> build, bool heavy) {
          net::post(executor, [slot, build = std::move(build), heavy]() mutable {
            (*slot)(Built{std::move(build), heavy});
          });
        };
        bool taken = false;
        try {
          taken = (*async)(request, server_.services, respond);
        } catch (const std::exception& e) {
          TF_LOG(LogLevel::kError, "async_handler_exception", {"request_id", request.request_id},
                 {"path", request.path}, {"what", e.what()});
        }
        if (taken) {
          server_.metrics.deferred_responses.fetch_add(1);
          watching_ = true;
          WatchForDisconnect();
        } else {
          net::post(executor, [slot]() mutable { (*slot)(Built{}); });
        }
      },
      net::use_awaitable);
  if (!built.first) co_return std::nullopt;
  watching_ = false;  // as in Handle: the socket is about to be written and then read again
  beast::error_code ignored;
  socket_.cancel(ignored);
  auto finish = [this, &request, build = std::move(built.first)]() {
    Response out;
    try {
      out = build();
    } catch (...) {
      TF_LOG(LogLevel::kError, "deferred_build_exception", {"request_id", request.request_id});
      out = ErrorResponse(Internal("Internal error; the server log has the details under request_id=",
                                   request.request_id),
                          request.request_id);
    }
    FinalizeResponse(request, out);
    return out;
  };
  if (built.second) co_return co_await RunOnPool(server_.pool, std::move(finish));
  co_return finish();
}

// While a handler runs nobody reads the socket; wait for it to become readable, and if
// that is because the client closed it, cancel the request. With several I/O threads the
// wait can also complete on a stale readiness event with nothing to read: the peek must
// not block (that would stall this connection's I/O thread), and the watch goes on.
void Session::WatchForDisconnect() {
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
    if (ec || !self->watching_) return;  // cancelled, or the handler finished first
    char byte;
    const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return;  // the client's next (pipelined) request: not a disconnect
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      self->WatchForDisconnect();
      return;
    }
    self->cancel_.request_stop();  // closed (0) or reset
  });
}

net::awaitable<beast::error_code> Session::Write(const Request& request, const Response& response,
                                                 bool keep_alive) {
  const std::string_view body = response.Body();
  const bool bodiless_status = response.status < 200 || response.status == 204 || response.status == 304;
  const bool send_body = request.method != "HEAD" && !bodiless_status;
  // HEAD announces the length GET would send; 1xx, 204 and 304 carry no length at all.
  std::string& head = head_;
  SerializeHead(response, bodiless_status ? std::nullopt : std::optional<size_t>(response.BodySize()), keep_alive,
                head);
  beast::error_code ec;
  if (send_body && response.file) {
    {
      Deadline deadline(*this, server_.options.write_timeout);
      co_await net::async_write(socket_, net::buffer(head), net::redirect_error(net::use_awaitable, ec));
    }
    if (!ec) ec = co_await WriteFile(response);
    co_return ec;
  }
  const std::array<net::const_buffer, 2> buffers{net::buffer(head),
                                                 send_body ? net::buffer(body.data(), body.size()) : net::const_buffer()};
  // Most answers fit in the socket's send buffer: one non-blocking sendmsg sends them with no
  // asio operation, timer or suspension (a third of a cached hit's work). What it leaves
  // (a full buffer, a slow client) goes out asynchronously, under the write timeout.
  iovec iov[2] = {{const_cast<void*>(buffers[0].data()), buffers[0].size()},
                  {const_cast<void*>(buffers[1].data()), buffers[1].size()}};
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = 2;
  ssize_t sent;
  do {
    sent = ::sendmsg(socket_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    co_return beast::error_code(errno, boost::system::system_category());
  }
  beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(buffers);
  rest.consume(sent > 0 ? static_cast<size_t>(sent) : 0);
  if (beast::buffer_bytes(rest) == 0) co_return ec;
  Deadline deadline(*this, server_.options.write_timeout);
  co_await net::async_write(socket_, rest, net::redirect_error(net::use_awaitable, ec));
  co_return ec;
}

// Streams a file body (after its head): reads a piece on the handler pool, writes it, and
// so on, so memory stays at one piece whatever the file's size. A read failing midway
// cannot change the status any more: the connection is closed, and the client sees a
// short body.
net::awaitable<beast::error_code> Session::WriteFile(const Response& response) {
  beast::error_code ec;
  int64_t offset = response.file_offset;
  int64_t remaining = response.file_length;
  // A file on the local disk goes from the page cache to the socket in the kernel.
  if (auto local = std::dynamic_pointer_cast<arrow::io::ReadableFile>(response.file); local && remaining > 0) {
    co_return co_await SendFile(local->file_descriptor(), offset, remaining);
  }
  while (!ec && remaining > 0) {
    const int64_t want = std::min<int64_t>(remaining, kStreamChunk);
    auto piece = co_await RunOnPool(server_.pool, [&]() -> Result<std::shared_ptr<arrow::Buffer>> {
      return response.file->ReadAt(offset, want);
    });
    if (!piece.ok() || (*piece)->size() == 0) {
      TF_LOG(LogLevel::kError, "file_read_failed",
             {"error", piece.ok() ? std::string("file shorter than announced") : piece.status().message()});
      co_return net::error::make_error_code(net::error::connection_aborted);
    }
    offset += (*piece)->size();
    remaining -= (*piece)->size();
    Deadline deadline(*this, server_.options.write_timeout);
    co_await net::async_write(socket_, net::buffer((*piece)->data(), static_cast<size_t>((*piece)->size())),
                              net::redirect_error(net::use_awaitable, ec));
  }
  co_return ec;
}

// sendfile(2) in a loop on the non-blocking socket, waiting for it to drain when full
// (with the write timeout, as every other write).
net::awaitable<beast::error_code> Session::SendFile(int fd, int64_t offset, int64_t length) {
  beast::error_code ec;
  tcp::socket& socket = socket_;
  socket.non_blocking(true, ec);
  off_t position = static_cast<off_t>(offset);
  int64_t remaining = length;
  while (!ec && remaining > 0) {
    const ssize_t sent = ::sendfile(socket.native_handle(), fd, &position,
                                    static_cast<size_t>(std::min<int64_t>(remaining, int64_t{1} << 30)));
    if (sent > 0) {
      remaining -= sent;
    } else if (sent == 0) {
      TF_LOG(LogLevel::kError, "file_read_failed", {"error", "file shorter than announced"});
      ec = net::error::make_error_code(net::error::connection_aborted);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Deadline deadline(*this, server_.options.write_timeout);
      co_await socket.async_wait(tcp::socket::wait_write, net::redirect_error(net::use_awaitable, ec));
    } else if (errno != EINTR) {
      ec = beast::error_code(errno, boost::system::system_category());
    }
  }
  beast::error_code ignored;
  socket.non_blocking(false, ignored);
  co_return ec;
}

// Moves `length` body bytes from the socket into a local file without copying them through
// user space: splice(2) socket → pipe → file. The pumping runs on the handler pool (disk
// writes may block) and keeps going while the socket has data (up to kPumpBudget per turn),
// so a fast sender costs no thread hand-over per piece; when the socket runs dry the I/O
// thread waits for it, with the read timeout. The non-blocking socket splice never waits
// on a slow client on a pool thread.
net::awaitable<Status> Session::SpliceBody(BodySink& sink, uint64_t length, beast::error_code& ec) {
  constexpr uint64_t kPumpBudget = uint64_t{64} << 20;
  constexpr int kPumpWaitMs = 2;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    co_return IOError("Cannot receive the upload: pipe: ", std::strerror(errno));
  }
  struct PipeCloser {
    int* fds;
    ~PipeCloser() {
      ::close(fds[0]);
      ::close(fds[1]);
    }
  } closer{pipe_fds};
  int capacity = ::fcntl(pipe_fds[1], F_SETPIPE_SZ, static_cast<int>(kStreamChunk));
  if (capacity <= 0) capacity = ::fcntl(pipe_fds[1], F_GETPIPE_SZ);
  tcp::socket& socket = socket_;
  socket.non_blocking(true, ec);
  const int socket_fd = socket.native_handle();
  uint64_t remaining = length;
  Status status;
  struct Pumped {
    Status status;
    uint64_t moved = 0;
    int error = 0;        // errno of the socket splice that stopped it (EAGAIN: no data yet)
    bool closed = false;  // the client hung up mid-body
  };
  while (!ec && status.ok() && remaining > 0) {
    Pumped pumped = co_await RunOnPool(server_.pool, [&]() -> Pumped {
      Pumped out;
      while (out.moved < remaining && out.moved < kPumpBudget) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(remaining - out.moved, capacity));
        const ssize_t n = ::splice(socket_fd, nullptr, pipe_fds[1], nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          out.status = sink.WriteFromPipe(pipe_fds[0], static_cast<size_t>(n));
          if (!out.status.ok()) return out;
          out.moved += static_cast<uint64_t>(n);
        } else if (n == 0) {
          out.closed = true;
          return out;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // A fast sender refills the socket within microseconds: a short wait here saves
          // two thread hand-overs; a slow one sends us back to the I/O thread to wait.
          pollfd ready{socket_fd, POLLIN, 0};
          if (::poll(&ready, 1, kPumpWaitMs) <= 0) {
            out.error = EAGAIN;
            return out;
          }
        } else if (errno != EINTR) {
          out.error = errno;
          return out;
        }
      }
      return out;
    });
    remaining -= pumped.moved;
    status = pumped.status;
    if (!status.ok()) break;
    if (pumped.closed) {
      ec = bhttp::error::partial_message;
    } else if (pumped.error == EAGAIN || pumped.error == EWOULDBLOCK) {
      Deadline deadline(*this, server_.options.read_timeout);
      co_await socket.async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
    } else if (pumped.error != 0) {
      ec = beast::error_code(pumped.error, boost::system::system_category());
    }
  }
  beast::error_code ignored;
  socket.non_blocking(false, ignored);
  co_return status;
}

// Decides what a failed read deserves: limits and malformed requests are answered (then
// the connection closes, its input being unusable); closes and timeouts are not.
net::awaitable<void> Session::AnswerReadError(beast::error_code ec,
                                              bhttp::request_parser<bhttp::string_body>& parser,
                                              std::chrono::steady_clock::time_point start) {
  const HttpServerOptions& options = server_.options;
  Status status;
  if (ec == bhttp::error::header_limit) {
    status = TooLarge("Request line and headers exceed the ", options.header_limit, "-byte limit");
  } else if (ec == bhttp::error::body_limit) {
    status = TooLarge("Request body exceeds the ", options.body_limit, "-byte limit");
  } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() &&
             ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
    status = InvalidArgument("Malformed HTTP request: ", ec.message());
  } else {
    // The client closed, went quiet past a timeout, or the server is shutting down.
    if (ec != bhttp::error::end_of_stream && ec != net::error::operation_aborted) {
      TF_LOG(LogLevel::kDebug, "connection_closed", {"client", client_}, {"reason", ec.message()});
    }
    co_return;
  }
  InFlight in_flight(server_.metrics);
  Request request;
  request.method = parser.is_header_done() ? std::string(parser.get().method_string()) : "-";
  request.path = parser.is_header_done() ? std::string(parser.get().target()) : "-";
  request.request_id = server_.NextRequestId("");
  request.client_address = client_;
  Response response = ErrorResponse(status, request.request_id);
  FinalizeResponse(request, response);
  server_.metrics.CountResponse(response.status);
  beast::error_code write_ec = co_await Write(request, response, /*keep_alive=*/false);
  LogRequest(request, response, start);
  if (!write_ec) co_await LingeringClose();
}

net::awaitable<void> Session::LingeringClose() {
  beast::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16 * 1024> scratch;
  size_t discarded = 0;
  Deadline deadline(*this, kLingerTimeout);  // for the whole linger, not per read
  while (!ec && discarded < kLingerBytes) {
    discarded += co_await socket_.async_read_some(net::buffer(scratch), net::redirect_error(net::use_awaitable, ec));
  }
}

void Session::LogRequest(const Request& request, const Response& response,
                         std::chrono::steady_clock::time_point start) {
  const bool head = request.method == "HEAD";
  TF_LOG(LogLevel::kInfo, "request", {"request_id", request.request_id}, {"method", request.method},
         {"path", RedactTokens(request.path)}, {"status", std::to_string(response.status)},
         {"bytes", std::to_string(head ? 0 : response.BodySize())},
         {"ms", FormatMs(std::chrono::steady_clock::now() - start)}, {"client", client_});
}

}  // namespace

net::awaitable<void> HttpServer::Impl::Accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(SessionExecutor(), net::redirect_error(net::use_awaitable, ec));
    if (stopping.load()) co_return;  // the new socket closes as it goes out of scope
    if (ec) {
      if (ec == net::error::operation_aborted) co_return;
      TF_LOG(LogLevel::kWarn, "accept_failed", {"error", ec.message()});
      net::steady_timer pause(control, kAcceptRetryPause);
      co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
      continue;
    }
    StartSession(std::move(socket));
  }
}

void HttpServer::Impl::StartSession(tcp::socket socket) {
  auto session = std::make_shared<Session>(*this, std::move(socket));
  const uint64_t id = next_session_id++;
  sessions.emplace(id, session);
  net::co_spawn(session->executor(), Session::Run(session), [this, id](std::exception_ptr error) {
    // The catch-all of every connection: nothing escapes into the event loop.
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        TF_LOG(LogLevel::kError, "session_exception", {"what", e.what()});
      } catch (...) {
        TF_LOG(LogLevel::kError, "session_exception", {"what", "unknown exception"});
      }
    }
    net::post(control, [this, id] {
      sessions.erase(id);
      if (stopping.load() && sessions.empty()) Finish();
    });
  });
}

void HttpServer::Impl::WaitForSignal() {
  signals.async_wait([this](beast::error_code ec, int signal_number) {
    if (ec) return;  // cancelled at the end of the shutdown
    const char* name = signal_number == SIGINT ? "SIGINT" : signal_number == SIGTERM ? "SIGTERM" : "signal";
    if (!stopping.load()) {
      TF_LOG(LogLevel::kInfo, "signal", {"signal", name}, {"action", "graceful shutdown"});
      BeginShutdown();
      WaitForSignal();
    } else {
      TF_LOG(LogLevel::kWarn, "signal", {"signal", name}, {"action", "second signal: stopping now"});
      ForceStop();
    }
  });
}

void HttpServer::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  beast::error_code ignored;
  acceptor.close(ignored);
  TF_LOG(LogLevel::kInfo, "shutdown_started", {"connections", std::to_string(sessions.size())},
         {"in_flight", std::to_string(metrics.in_flight.load())},
         {"deadline_ms", std::to_string(options.shutdown_deadline.count())});
  if (sessions.empty()) {
    Finish();
    return;
  }
  for (auto& [id, weak] : sessions) {
    if (auto session = weak.lock()) net::post(session->executor(), [session] { session->CloseIfIdle(); });
  }
  deadline.expires_after(options.shutdown_deadline);
  deadline.async_wait([this](beast::error_code ec) {
    if (!ec) ForceStop();
  });
}

void HttpServer::Impl::ForceStop() {
  stopping.store(true);
  forced = true;
  running_at_deadline = static_cast<int>(metrics.in_flight.load());
  TF_LOG(LogLevel::kWarn, "shutdown_forced", {"in_flight", std::to_string(running_at_deadline)});
  for (auto& [id, weak] : sessions) {
    if (auto session = weak.lock()) session->CancelRequest();
  }
  Finish();
}

void HttpServer::Impl::Finish() {
  beast::error_code ignored;
  acceptor.close(ignored);
  signals.cancel(ignored);
  deadline.cancel();
  work.reset();
  for (auto& guard : extra_work) guard.reset();
  ioc.stop();
  for (auto& context : extra_iocs) context->stop();
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() = default;

Result<std::unique_ptr<HttpServer>> HttpServer::Make(HttpServerOptions options, Router router,
                                                     Services& services) {
  if (options.handler_threads < 1) {
    return InvalidArgument("Invalid handler thread count ", options.handler_threads, ": use 1 or more");
  }
  if (options.io_threads < 1) {
    return InvalidArgument("Invalid I/O thread count ", options.io_threads, ": use 1 or more");
  }
  const std::string where = options.host + ":" + std::to_string(options.port);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(router), services);
  const HttpServerOptions& opts = impl->options;

  beast::error_code ec;
  tcp::endpoint endpoint;
  net::ip::address address = net::ip::make_address(opts.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, opts.port);
  } else {
    tcp::resolver resolver(impl->ioc);
    auto results = resolver.resolve(opts.host, std::to_string(opts.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return IOError("Cannot listen on ", where, ": ", ec ? ec.message() : "host has no address");
    }
    endpoint = results.begin()->endpoint();
  }
  tcp::acceptor& acceptor = impl->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return IOError("Cannot listen on ", where, ": ", ec.message());
  tcp::endpoint bound = acceptor.local_endpoint(ec);
  if (ec) return IOError("Cannot listen on ", where, ": ", ec.message());
  impl->bound_host = bound.address().to_string();
  impl->bound_port = bound.port();
  if (opts.handle_signals) {
    impl->signals.add(SIGINT, ec);
    if (!ec) impl->signals.add(SIGTERM, ec);
    if (ec) return IOError("Cannot install signal handlers: ", ec.message());
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

const std::string& HttpServer::host() const { return impl_->bound_host; }

uint16_t HttpServer::port() const { return impl_->bound_port; }

const ServerMetrics& HttpServer::metrics() const { return impl_->metrics; }

void HttpServer::Stop() {
  net::post(impl_->control, [impl = impl_.get()] { impl->BeginShutdown(); });
}

Status HttpServer::Run() {
  Impl& impl = *impl_;
  impl.metrics.started = std::chrono::steady_clock::now();
  net::co_spawn(impl.control, impl.Accept(), [](std::exception_ptr error) {
    if (error) TF_LOG(LogLevel::kError, "listener_exception", {"what", "the accept loop ended with an exception"});
  });
  if (impl.options.handle_signals) net::post(impl.control, [&impl] { impl.WaitForSignal(); });

  auto run = [](net::io_context& context) {
    // Completion handlers catch their own exceptions; this loop is the last line.
    for (;;) {
      try {
        context.run();
        return;
      } catch (const std::exception& e) {
        TF_LOG(LogLevel::kError, "event_loop_exception", {"what", e.what()});
      }
    }
  };
  std::vector<std::thread> threads;
  for (auto& context : impl.extra_iocs) threads.emplace_back(run, std::ref(*context));
  run(impl.ioc);
  for (auto& thread : threads) thread.join();

  if (impl.forced) {
    return Timeout("Shutdown deadline of ", impl.options.shutdown_deadline.count(), " ms passed with ",
                   impl.running_at_deadline, " request(s) still running");
  }
  return Status::OK();
}

}  // namespace terrafuse::http
