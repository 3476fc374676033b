#include "terrafuse/storage/http_file_system.h"

#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gnutls/gnutls.h>

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>

namespace terrafuse::storage {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace afs = arrow::fs;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

struct Url {
  std::string scheme;  // "http" or "https"
  std::string host;    // without brackets for IPv6
  std::string port;
  std::string target;  // path and query, starting with '/'
  std::string text;    // the whole URL (without fragment), for messages

  std::string Origin() const { return scheme + "://" + host + ":" + port; }
  std::string HostHeader() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    const bool default_port = (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    return default_port ? h : h + ":" + port;
  }
};

Result<Url> ParseUrl(std::string_view text) {
  Url url;
  if (size_t hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
  url.text = std::string(text);
  size_t sep = text.find("://");
  if (sep == std::string_view::npos) return InvalidArgument("Invalid URL '", text, "': expected http(s)://host/path");
  url.scheme = std::string(text.substr(0, sep));
  for (char& c : url.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme != "http" && url.scheme != "https") {
    return InvalidArgument("Invalid URL '", text, "': only http:// and https:// are supported");
  }
  std::string_view rest = text.substr(sep + 3);
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  url.target = end == std::string_view::npos ? "/" : std::string(rest.substr(end));
  if (url.target.front() == '?') url.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("Invalid URL '", text, "': credentials in URLs are not supported");
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("Invalid URL '", text, "': unclosed '[' in the host");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (after.starts_with(":")) port = after.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (url.host.empty()) return InvalidArgument("Invalid URL '", text, "': no host");
  int port_number = 0;
  if (!port.empty()) {
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
    if (ec != std::errc() || p != port.data() + port.size() || port_number < 1 || port_number > 65535) {
      return InvalidArgument("Invalid URL '", text, "': bad port '", port, "'");
    }
  }
  url.port = port.empty() ? (url.scheme == "https" ? "443" : "80") : std::string(port);
  for (char c : url.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return InvalidArgument("Invalid URL '", text, "': unescaped space or control character");
    }
  }
  return url;
}

// A redirect's Location, resolved against the URL that answered it.
Result<Url> ResolveRedirect(const Url& base, std::string_view location) {
  std::string next;
  if (location.find("://") != std::string_view::npos) {
    next = std::string(location);
  } else if (location.starts_with("//")) {
    next = base.scheme + ":" + std::string(location);
  } else if (location.starts_with("/")) {
    next = base.scheme + "://" + base.HostHeader() + std::string(location);
  } else {
    std::string dir = base.target.substr(0, base.target.find('?'));
    dir = dir.substr(0, dir.rfind('/') + 1);
    next = base.scheme + "://" + base.HostHeader() + dir + std::string(location);
  }
  ARROW_ASSIGN_OR_RAISE(Url url, ParseUrl(next));
  if (base.scheme == "https" && url.scheme != "https") {
    return PermissionDenied("Refusing the redirect of '", base.text, "' to '", url.text, "': it leaves https");
  }
  return url;
}

// --- TLS credentials: one per extra CA file, made once -----------------------------------

Result<gnutls_certificate_credentials_t> Credentials(const std::string& ca_file) {
  static std::mutex mutex;
  static auto* made = new std::map<std::string, gnutls_certificate_credentials_t>;
  std::lock_guard<std::mutex> guard(mutex);
  if (auto it = made->find(ca_file); it != made->end()) return it->second;
  gnutls_certificate_credentials_t creds = nullptr;
  if (int rc = gnutls_certificate_allocate_credentials(&creds); rc < 0) {
    return Internal("Cannot set up TLS: ", gnutls_strerror(rc));
  }
  // A machine without a system store still works with an explicit bundle.
  (void)gnutls_certificate_set_x509_system_trust(creds);
  if (!ca_file.empty()) {
    int rc = gnutls_certificate_set_x509_trust_file(creds, ca_file.c_str(), GNUTLS_X509_FMT_PEM);
    if (rc <= 0) {
      gnutls_certificate_free_credentials(creds);
      return InvalidArgument("Cannot load the CA bundle '", ca_file, "' (TERRAFUSE_CA_BUNDLE or SSL_CERT_FILE): ",
                             rc < 0 ? gnutls_strerror(rc) : "no certificates in it");
    }
  }
  (*made)[ca_file] = creds;
  return creds;
}

ssize_t PushNoSignal(gnutls_transport_ptr_t ptr, const void* data, size_t size) {
  return ::send(static_cast<int>(reinterpret_cast<intptr_t>(ptr)), data, size, MSG_NOSIGNAL);
}

// --- one connection: a blocking socket (timeouts from SO_RCVTIMEO/SO_SNDTIMEO), TLS or not,
// shaped as a Beast SyncReadStream/SyncWriteStream ---------------------------------------

// The error of a failed plain-socket read or write: a timeout when the socket stayed silent
// (it has SO_RCVTIMEO/SO_SNDTIMEO set), else errno.
boost::system::error_code SocketError() {
  if (errno == EAGAIN || errno == EWOULDBLOCK) return make_error_code(boost::asio::error::timed_out);
  return {errno, boost::system::system_category()};
}

class Connection {
 public:
  static Result<std::unique_ptr<Connection>> Open(const Url& url, const HttpOptions& options) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
      return IOError("Cannot resolve the host of '", url.text, "': ", gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, freeaddrinfo);
    std::string failure = "no address";
    int fd = -1;
    for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
      fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
      if (fd < 0) continue;
      int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
      if (rc < 0 && errno == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        rc = ::poll(&p, 1, static_cast<int>(options.connect_timeout_seconds * 1000));
        if (rc == 0) {
          failure = "timed out after " + std::to_string(options.connect_timeout_seconds) + " s";
          errno = ETIMEDOUT;
          rc = -1;
        } else if (rc > 0) {
          int err = 0;
          socklen_t len = sizeof(err);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          errno = err;
          rc = err == 0 ? 0 : -1;
        }
      }
      if (rc < 0) {
        if (errno != ETIMEDOUT) failure = std::strerror(errno);
        ::close(fd);
        fd = -1;
      }
    }
    if (fd < 0) return IOError("Cannot connect to ", url.HostHeader(), " for '", url.text, "': ", failure);
    std::unique_ptr<Connection> conn(
        new Connection(fd, url.Origin(), static_cast<int>(options.io_timeout_seconds * 1000)));
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(options.io_timeout_seconds);
    tv.tv_usec = static_cast<suseconds_t>((options.io_timeout_seconds - static_cast<double>(tv.tv_sec)) * 1e6);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (url.scheme == "https") ARROW_RETURN_NOT_OK(conn->StartTls(url, options));
    return conn;
  }

  ~Connection() {
    if (session_ != nullptr) gnutls_deinit(session_);
    ::close(fd_);
  }

  const std::string& origin() const { return origin_; }
  beast::flat_buffer& buffer() { return buffer_; }
  const std::string& tls_error() const { return tls_error_; }

  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      while (true) {
        ssize_t n = session_ != nullptr ? gnutls_record_recv(session_, b.data(), b.size())
                                        : ::recv(fd_, b.data(), b.size(), 0);
        if (n > 0) return static_cast<size_t>(n);
        if (n == 0 || (session_ != nullptr && n == GNUTLS_E_PREMATURE_TERMINATION)) {
          ec = boost::asio::error::eof;
        } else if (session_ != nullptr) {
          if (n == GNUTLS_E_INTERRUPTED) continue;
          // Also returned after a post-handshake message (a TLS 1.3 session ticket): a real
          // timeout only when the socket stays silent.
          if (n == GNUTLS_E_AGAIN && Ready(POLLIN)) continue;
          ec = n == GNUTLS_E_AGAIN ? make_error_code(boost::asio::error::timed_out)
                                   : make_error_code(boost::asio::error::connection_reset);
          if (n != GNUTLS_E_AGAIN) tls_error_ = gnutls_strerror(static_cast<int>(n));
        } else {
          if (errno == EINTR) continue;
          ec = SocketError();
        }
        return 0;
      }
    }
    return 0;
  }
  template <class MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers) {
    boost::system::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    ec = {};
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::const_buffer b = *it;
      if (b.size() == 0) continue;
      while (true) {
        ssize_t n = session_ != nullptr ? gnutls_record_send(session_, b.data(), b.size())
                                        : ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
        if (n > 0) return static_cast<size_t>(n);
        if (session_ != nullptr) {
          if (n == GNUTLS_E_INTERRUPTED || (n == GNUTLS_E_AGAIN && Ready(POLLOUT))) continue;
          ec = n == GNUTLS_E_AGAIN ? make_error_code(boost::asio::error::timed_out)
                                   : make_error_code(boost::asio::error::connection_reset);
        } else {
          if (errno == EINTR) continue;
          ec = SocketError();
        }
        return 0;
      }
    }
    return 0;
  }
  template <class ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  Connection(int fd, std::string origin, int timeout_ms) : fd_(fd), origin_(std::move(origin)), timeout_ms_(timeout_ms) {}

  // Waits up to the I/O timeout for the socket (or TLS data already buffered) to be ready.
  bool Ready(short events) {
    if (events == POLLIN && session_ != nullptr && gnutls_record_check_pending(session_) > 0) return true;
    pollfd p{fd_, events, 0};
    return ::poll(&p, 1, timeout_ms_) > 0;
  }

  Status StartTls(const Url& url, const HttpOptions& options) {
    ARROW_ASSIGN_OR_RAISE(gnutls_certificate_credentials_t creds, Credentials(options.ca_file));
    auto fail = [&](int rc) {
      return IOError("TLS handshake with ", url.HostHeader(), " for '", url.text, "' failed: ", gnutls_strerror(rc));
    };
    if (int rc = gnutls_init(&session_, GNUTLS_CLIENT); rc < 0) {
      session_ = nullptr;
      return fail(rc);
    }
    if (int rc = gnutls_set_default_priority(session_); rc < 0) return fail(rc);
    if (int rc = gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, creds); rc < 0) return fail(rc);
    // SNI only for names, not IP literals (RFC 6066).
    in6_addr ignored;
    if (::inet_pton(AF_INET, url.host.c_str(), &ignored) != 1 && ::inet_pton(AF_INET6, url.host.c_str(), &ignored) != 1) {
      gnutls_server_name_set(session_, GNUTLS_NAME_DNS, url.host.data(), url.host.size());
    }
    // Checks the chain against the trust store and the name (or IP) against the certificate.
    gnutls_session_set_verify_cert(session_, url.host.c_str(), 0);
    gnutls_transport_set_int(session_, fd_);
    gnutls_transport_set_push_function(session_, PushNoSignal);
    gnutls_handshake_set_timeout(session_, static_cast<unsigned>(options.io_timeout_seconds * 1000));
    int rc;
    do {
      rc = gnutls_handshake(session_);
    } while (rc < 0 && rc != GNUTLS_E_AGAIN && !gnutls_error_is_fatal(rc));
    if (rc == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
      unsigned status = gnutls_session_get_verify_cert_status(session_);
      gnutls_datum_t text{};
      std::string reason = "it is not trusted";
      if (gnutls_certificate_verification_status_print(status, gnutls_certificate_type_get(session_), &text, 0) == 0) {
        reason = std::string(reinterpret_cast<const char*>(text.data), text.size);
        gnutls_free(text.data);
      }
      return IOError("TLS certificate of ", url.HostHeader(), " for '", url.text, "' was rejected: ", reason,
                     " (to trust a private CA, set TERRAFUSE_CA_BUNDLE to its PEM file)");
    }
    if (rc == GNUTLS_E_AGAIN) return Timeout("TLS handshake with ", url.HostHeader(), " for '", url.text, "' timed out");
    if (rc < 0) return fail(rc);
    return Status::OK();
  }

  int fd_;
  std::string origin_;
  int timeout_ms_;
  gnutls_session_t session_ = nullptr;
  beast::flat_buffer buffer_;  // bytes read past a response's header, kept for its body
  std::string tls_error_;
};

// --- the client: GET with Range, redirects, keep-alive connections ----------------------

// Parses "bytes a-b/total" (or "bytes */total"); -1 where absent.
void ParseContentRange(std::string_view value, int64_t* first, int64_t* total) {
  *first = -1;
  *total = -1;
  if (!value.starts_with("bytes ")) return;
  value.remove_prefix(6);
  size_t slash = value.find('/');
  if (slash == std::string_view::npos) return;
  std::string_view range = value.substr(0, slash);
  std::string_view size = value.substr(slash + 1);
  int64_t n = 0;
  if (std::from_chars(size.data(), size.data() + size.size(), n).ec == std::errc()) *total = n;
  if (range != "*" && std::from_chars(range.data(), range.data() + range.size(), n).ec == std::errc()) *first = n;
}

struct ReadResult {
  int64_t bytes = 0;       // copied into `out`
  int64_t total_size = -1; // the whole file's size when the server said
  bool not_found = false;
};

class HttpClient {
 public:
  HttpClient(Url url, HttpOptions options) : url_(std::move(url)), original_(url_.text), options_(std::move(options)) {}

  /// GETs bytes [offset, offset + length) into `out`. A 404/410 is reported in `not_found`
  /// when `not_found_ok`, else as NotFound naming the URL.
  Result<ReadResult> Read(int64_t offset, int64_t length, uint8_t* out, bool not_found_ok) {
    Url url = CurrentUrl();
    for (int redirects = 0;; ++redirects) {
      std::unique_ptr<Connection> conn;
      bool reused = false;
      ReadResult result;
      std::optional<Url> next;
      Status st = Attempt(url, offset, length, out, &conn, &reused, &result, &next);
      if (!st.ok() && reused) {
        // A kept-alive connection the server had closed: one fresh try.
        conn.reset();
        reused = false;
        st = Attempt(url, offset, length, out, &conn, &reused, &result, &next);
      }
      ARROW_RETURN_NOT_OK(st);
      if (conn) Release(std::move(conn));
      if (!next) {
        if (result.not_found && !not_found_ok) {
          return NotFound("No such file: '", original_, "' (HTTP 404 from ", url.HostHeader(), ")");
        }
        return result;
      }
      if (redirects >= options_.max_redirects) {
        return IOError("Too many redirects (more than ", options_.max_redirects, ") for '", original_, "'");
      }
      url = *next;
      std::lock_guard<std::mutex> guard(mutex_);
      url_ = url;  // later reads of this file go straight to where it lives
    }
  }

  const std::string& original() const { return original_; }

 private:
  Url CurrentUrl() {
    std::lock_guard<std::mutex> guard(mutex_);
    return url_;
  }

  std::unique_ptr<Connection> Take(const Url& url, bool* reused) {
    std::lock_guard<std::mutex> guard(mutex_);
    const std::string origin = url.Origin();
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if ((*it)->origin() == origin) {
        auto conn = std::move(*it);
        idle_.erase(it);
        *reused = true;
        return conn;
      }
    }
    return nullptr;
  }

  void Release(std::unique_ptr<Connection> conn) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (idle_.size() < 4) idle_.push_back(std::move(conn));
  }

  Status Attempt(const Url& url, int64_t offset, int64_t length, uint8_t* out, std::unique_ptr<Connection>* conn_out,
                 bool* reused, ReadResult* result, std::optional<Url>* next) {
    std::unique_ptr<Connection> conn = Take(url, reused);
    if (!conn) {
      *reused = false;
      ARROW_ASSIGN_OR_RAISE(conn, Connection::Open(url, options_));
    }
    auto io_error = [&](std::string_view what, const boost::system::error_code& ec) {
      if (ec == boost::asio::error::timed_out) {
        return Timeout("Reading '", original_, "' timed out (no data for ", static_cast<int64_t>(options_.io_timeout_seconds),
                       " s)");
      }
      std::string detail = conn->tls_error().empty() ? ec.message() : conn->tls_error();
      return IOError("Reading '", original_, "' failed while ", what, ": ", detail);
    };
    bhttp::request<bhttp::empty_body> request{bhttp::verb::get, url.target, 11};
    request.set(bhttp::field::host, url.HostHeader());
    request.set(bhttp::field::user_agent, "terrafuse");
    request.set(bhttp::field::accept_encoding, "identity");
    request.set(bhttp::field::range, "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
    boost::system::error_code ec;
    bhttp::write(*conn, request, ec);
    if (ec) return io_error("sending the request", ec);

    bhttp::response_parser<bhttp::buffer_body> parser;
    // No limit (what is read is bounded by `length`); not boost::none, which 1.74 mishandles.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    bhttp::read_header(*conn, conn->buffer(), parser, ec);
    if (ec) return io_error("reading the response header", ec);
    const auto& response = parser.get();
    const int status = response.result_int();

    if (status >= 300 && status < 400 && status != 304) {
      auto location = response.find(bhttp::field::location);
      if (location == response.end()) {
        return IOError("GET '", original_, "' answered HTTP ", status, " without a Location to follow");
      }
      ARROW_ASSIGN_OR_RAISE(*next, ResolveRedirect(url, std::string_view(location->value().data(), location->value().size())));
      return Status::OK();
    }
    if (status == 404 || status == 410) {
      result->not_found = true;
      return Status::OK();
    }
    int64_t first = -1;
    if (auto range = response.find(bhttp::field::content_range); range != response.end()) {
      ParseContentRange(std::string_view(range->value().data(), range->value().size()), &first, &result->total_size);
    }
    if (status == 416) {  // the range starts at or past the end: nothing to read
      if (result->total_size < 0) return IOError("GET '", original_, "' answered HTTP 416 without the file's size");
      return Status::OK();
    }
    if (status != 200 && status != 206) {
      std::string reason(response.reason().data(), response.reason().size());
      return IOError("GET '", original_, "' failed: HTTP ", status, reason.empty() ? "" : " " + reason);
    }
    int64_t skip = 0;
    if (status == 200) {
      // The server ignored the range: the body is the whole file.
      if (auto n = parser.content_length()) result->total_size = static_cast<int64_t>(*n);
      skip = offset;
    } else if (first != offset) {
      return IOError("GET '", original_, "' answered a range other than the one asked for");
    }
    // Reads straight into `out` (Beast's buffer_body): no copy of the body.
    std::vector<uint8_t> scratch;
    int64_t done = 0;
    while (!parser.is_done() && (skip > 0 || done < length)) {
      auto& body = parser.get().body();
      if (skip > 0) {
        scratch.resize(std::min<int64_t>(skip, 1 << 20));
        body.data = scratch.data();
        body.size = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(scratch.size())));
      } else {
        body.data = out + done;
        body.size = static_cast<size_t>(length - done);
      }
      const size_t asked = body.size;
      bhttp::read(*conn, conn->buffer(), parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (ec) return io_error("reading the body", ec);
      const int64_t got = static_cast<int64_t>(asked - body.size);
      if (skip > 0) {
        skip -= got;
      } else {
        done += got;
      }
    }
    result->bytes = done;
    // Only a connection whose response was read to its end can carry the next request.
    if (parser.is_done() && parser.keep_alive()) *conn_out = std::move(conn);
    return Status::OK();
  }

  std::mutex mutex_;
  Url url_;
  const std::string original_;
  const HttpOptions options_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

Status ReadOnly(std::string_view action, std::string_view path) {
  return PermissionDenied("Cannot ", action, " '", path, "': http(s) URLs are read-only");
}

// A remote file: random access with Range requests, sized once when opened.
class HttpFile final : public arrow::io::RandomAccessFile {
 public:
  HttpFile(std::shared_ptr<HttpClient> client, int64_t size) : client_(std::move(client)), size_(size) {}

  Status Close() override {
    closed_ = true;
    return Status::OK();
  }
  bool closed() const override { return closed_; }
  Result<int64_t> Tell() const override {
    ARROW_RETURN_NOT_OK(CheckOpen());
    return position_;
  }
  Status Seek(int64_t position) override {
    ARROW_RETURN_NOT_OK(CheckOpen());
    if (position < 0) return InvalidArgument("Cannot seek to a negative position in '", client_->original(), "'");
    position_ = position;
    return Status::OK();
  }
  Result<int64_t> GetSize() override {
    ARROW_RETURN_NOT_OK(CheckOpen());
    return size_;
  }
  Result<int64_t> Read(int64_t nbytes, void* out) override {
    ARROW_ASSIGN_OR_RAISE(int64_t n, ReadAt(position_, nbytes, out));
    position_ += n;
    return n;
  }
  Result<std::shared_ptr<arrow::Buffer>> Read(int64_t nbytes) override {
    ARROW_ASSIGN_OR_RAISE(auto buffer, ReadAt(position_, nbytes));
    position_ += buffer->size();
    return buffer;
  }
  // Thread-safe: no shared position, and the client pools its connections.
  Result<int64_t> ReadAt(int64_t position, int64_t nbytes, void* out) override {
    ARROW_RETURN_NOT_OK(CheckOpen());
    if (position < 0 || nbytes < 0) return InvalidArgument("Invalid read range in '", client_->original(), "'");
    nbytes = std::min(nbytes, std::max<int64_t>(0, size_ - position));
    if (nbytes == 0) return 0;
    ARROW_ASSIGN_OR_RAISE(ReadResult got, client_->Read(position, nbytes, static_cast<uint8_t*>(out), false));
    return got.bytes;
  }
  Result<std::shared_ptr<arrow::Buffer>> ReadAt(int64_t position, int64_t nbytes) override {
    nbytes = std::max<int64_t>(0, std::min(nbytes, size_ - position));
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::ResizableBuffer> buffer, arrow::AllocateResizableBuffer(nbytes));
    ARROW_ASSIGN_OR_RAISE(int64_t n, ReadAt(position, nbytes, buffer->mutable_data()));
    if (n < nbytes) ARROW_RETURN_NOT_OK(buffer->Resize(n));
    return std::shared_ptr<arrow::Buffer>(std::move(buffer));
  }

 private:
  Status CheckOpen() const {
    return closed_ ? arrow::Status::Invalid("Operation on a closed file: '", client_->original(), "'") : Status::OK();
  }

  std::shared_ptr<HttpClient> client_;
  const int64_t size_;
  int64_t position_ = 0;
  bool closed_ = false;
};

// Asks for the first byte: the answer's Content-Range (or Content-Length) gives the size,
// and a GET works where HEAD is not allowed (presigned URLs are signed for one verb).
Result<ReadResult> Probe(HttpClient& client) {
  uint8_t first = 0;
  return client.Read(0, 1, &first, true);
}

class HttpFileSystem final : public afs::FileSystem {
 public:
  explicit HttpFileSystem(std::optional<HttpOptions> options) : options_(std::move(options)) {}

  std::string type_name() const override { return "http"; }
  bool Equals(const afs::FileSystem& other) const override { return this == &other; }

  Result<afs::FileInfo> GetFileInfo(const std::string& path) override {
    ARROW_ASSIGN_OR_RAISE(auto client, Client(path));
    ARROW_ASSIGN_OR_RAISE(ReadResult probe, Probe(*client));
    if (probe.not_found) return afs::FileInfo(path, afs::FileType::NotFound);
    afs::FileInfo info(path, afs::FileType::File);
    info.set_size(probe.total_size);
    return info;
  }
  Result<afs::FileInfoVector> GetFileInfo(const afs::FileSelector& select) override {
    return InvalidArgument("Cannot list '", select.base_dir, "': http(s) URLs name single files, not directories");
  }
  Status CreateDir(const std::string& path, bool) override { return ReadOnly("create", path); }
  Status DeleteDir(const std::string& path) override { return ReadOnly("delete", path); }
  Status DeleteDirContents(const std::string& path, bool) override { return ReadOnly("delete", path); }
  Status DeleteRootDirContents() override { return ReadOnly("delete", "http(s)://"); }
  Status DeleteFile(const std::string& path) override { return ReadOnly("delete", path); }
  Status Move(const std::string& src, const std::string&) override { return ReadOnly("move", src); }
  Status CopyFile(const std::string&, const std::string& dest) override { return ReadOnly("write", dest); }

  using afs::FileSystem::OpenInputFile;
  using afs::FileSystem::OpenInputStream;
  Result<std::shared_ptr<arrow::io::InputStream>> OpenInputStream(const std::string& path) override {
    return OpenInputFile(path);
  }
  Result<std::shared_ptr<arrow::io::RandomAccessFile>> OpenInputFile(const std::string& path) override {
    ARROW_ASSIGN_OR_RAISE(auto client, Client(path));
    ARROW_ASSIGN_OR_RAISE(ReadResult probe, Probe(*client));
    if (probe.not_found) return NotFound("No such file: '", path, "' (HTTP 404)");
    if (probe.total_size < 0) {
      return IOError("Cannot read '", path, "': the server reports neither Content-Range nor Content-Length");
    }
    return std::make_shared<HttpFile>(std::move(client), probe.total_size);
  }
  Result<std::shared_ptr<arrow::io::OutputStream>> OpenOutputStream(
      const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>&) override {
    return ReadOnly("write", path);
  }
  Result<std::shared_ptr<arrow::io::OutputStream>> OpenAppendStream(
      const std::string& path, const std::shared_ptr<const arrow::KeyValueMetadata>&) override {
    return ReadOnly("write", path);
  }

 private:
  Result<std::shared_ptr<HttpClient>> Client(const std::string& path) const {
    ARROW_ASSIGN_OR_RAISE(Url url, ParseUrl(path));
    // The environment is read per file, so a CA bundle set after the first use still counts.
    return std::make_shared<HttpClient>(std::move(url), options_ ? *options_ : HttpOptions::FromEnvironment());
  }

  std::optional<HttpOptions> options_;  // nullopt: from the environment
};

}  // namespace

HttpOptions HttpOptions::FromEnvironment() {
  HttpOptions options;
  options.ca_file = Env("TERRAFUSE_CA_BUNDLE");
  if (options.ca_file.empty()) options.ca_file = Env("SSL_CERT_FILE");
  if (std::string timeout = Env("TERRAFUSE_HTTP_TIMEOUT"); !timeout.empty()) {
    char* end = nullptr;
    double seconds = std::strtod(timeout.c_str(), &end);
    if (end != timeout.c_str() && *end == '\0' && seconds > 0) {
      options.connect_timeout_seconds = seconds;
      options.io_timeout_seconds = seconds;
    }
  }
  return options;
}

std::shared_ptr<afs::FileSystem> MakeHttpFileSystem(std::optional<HttpOptions> options) {
  return std::make_shared<HttpFileSystem>(std::move(options));
}

Result<std::string> HttpReadRange(std::string_view url, int64_t offset, int64_t length, const HttpOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto file, MakeHttpFileSystem(options)->OpenInputFile(std::string(url)));
  ARROW_ASSIGN_OR_RAISE(auto buffer, file->ReadAt(offset, length));
  return buffer->ToString();
}

}  // namespace terrafuse::storage
