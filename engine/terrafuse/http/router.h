// The route table: method + path pattern → handler, validated as routes are added.
//
// Patterns are "/"-separated segments, each either literal ("run") or a parameter
// ("{token}"). The last segment may end in "[.ext]" to accept an optional file extension,
// which handlers read from Request::extension: "/run/tiles/{z}/{x}/{y}[.ext]" matches
// ".../12/778/1548.mvt" with y="1548", extension="mvt". When several patterns match, the
// one with a literal where the other has a parameter wins, comparing left to right.
// A pattern ending in "/*" ("/workbench/*") matches its prefix and every path below it,
// trailing slash included; handlers read the rest from Request::segments.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/http/request.h"
#include "terrafuse/http/response.h"

namespace terrafuse {
struct Services;  // what handlers use (cache, registry, workers): routes/services.h
}  // namespace terrafuse

namespace terrafuse::http {

/// A handler never sees sockets; it runs on the handler thread pool, so it must be
/// thread-safe, and a long one should poll request.cancelled().
using Handler = std::function<Result<Response>(const Request&, Services&)>;
/// An optional second handler for a route that can sometimes answer at once (a result
/// already in memory): it runs on the I/O thread, so it must never block, and returns
/// nullopt to hand the request to the Handler on the pool. Its errors are not reported:
/// the Handler reports them.
using FastHandler = std::function<std::optional<Response>(const Request&, Services&)>;

/// Completes a deferred answer (see AsyncHandler): called exactly once, from any thread,
/// with a function that builds the response; a `heavy` one (a large result to encode) is
/// built on the handler pool, the others on the I/O thread.
using Respond = std::function<void(std::function<Response()> build, bool heavy)>;
/// An optional third handler for a GET route whose answer comes from work done elsewhere
/// without holding a thread (a UDF call waiting in the worker pool's queue). It runs on the
/// I/O thread after the FastHandler declined, so it must never block. It returns false to
/// hand the request to the Handler on the pool (which also reports the errors), or true
/// when it took the request: `respond` is then called exactly once.
using AsyncHandler = std::function<bool(const Request&, Services&, Respond)>;

/// Where an upload route's body goes, piece by piece as it arrives (never buffered whole).
/// Destroying a sink without Finish (the client went away, a read failed) must leave no
/// trace of the partial body.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual Status Write(const char* data, size_t size) = 0;
  /// True when the sink is a local file the server may splice the body into (zero copy):
  /// it then calls WriteFromPipe instead of Write for those bytes.
  virtual bool CanSplice() const { return false; }
  /// Moves `size` bytes out of the pipe `pipe_fd` into the sink (blocking).
  virtual Status WriteFromPipe(int pipe_fd, size_t size) {
    (void)pipe_fd;
    (void)size;
    return Status::NotImplemented("This upload target cannot take spliced bytes");
  }
  /// Called before the body when its length is declared (Content-Length, within the
  /// upload limit): a file sink reserves the space, so a full disk is refused before the
  /// body is sent and the writes that follow allocate nothing.
  virtual Status Expect(uint64_t length) {
    (void)length;
    return Status::OK();
  }
  /// Called once the whole body was received; returns the answer.
  virtual Result<Response> Finish() = 0;
};

/// An upload handler sees the request's headers (its body is empty) and opens the sink, or
/// fails (auth, bad path) before a byte of the body is read.
using UploadHandler = std::function<Result<std::unique_ptr<BodySink>>(const Request&, Services&)>;

class Router {
  struct Route;

 public:
  struct Match {
    const Handler* handler = nullptr;
    const UploadHandler* upload = nullptr;
    const FastHandler* fast = nullptr;  // null when the route has none
    const AsyncHandler* async = nullptr;  // null when the route has none
    Params params;
    std::string extension;
  };

  /// Adds a route for GET, POST, PUT, PATCH or DELETE (HEAD and OPTIONS are answered for
  /// every GET route and every path). Fails with InvalidArgument naming the pattern when
  /// it is malformed or when an earlier route has the same method and the same shape.
  Status Add(std::string_view method, std::string_view pattern, Handler handler, FastHandler fast = {},
             AsyncHandler async = {});
  /// Adds a route whose request body streams into a BodySink (POST or PUT).
  Status AddUpload(std::string_view method, std::string_view pattern, UploadHandler handler);

  /// Returns the upload handler of the route `request` matches, filling its path
  /// parameters; null when the request does not go to an upload route.
  const UploadHandler* FindUpload(Request& request) const;

  /// Finds the route for a request; HEAD looks up GET. Fails with NotFound when no pattern
  /// matches the path, and with MethodNotAllowed (listing the allowed methods) when some
  /// pattern matches it under other methods.
  Result<Match> Find(std::string_view method, const std::vector<std::string>& segments,
                     const Route** found = nullptr) const;

  /// Returns the methods accepted on a path, in a fixed order (GET, HEAD, POST, PUT,
  /// PATCH, DELETE, OPTIONS); empty when no pattern matches the path.
  std::vector<std::string> AllowedMethods(const std::vector<std::string>& segments) const;

  /// Routes `request` (filling its path parameters and extension), runs the handler and
  /// turns every failure into a response: error statuses through ErrorResponse, 405 with
  /// an Allow header, and exceptions into a logged 500 that does not leak what(). Answers
  /// OPTIONS itself (CORS preflight). Never throws.
  Response Dispatch(Request& request, Services& services) const;
  /// Runs the FastHandler of the GET (or HEAD) route of `request`, when it has one, filling
  /// the request's path parameters and extension. nullopt means "dispatch normally";
  /// exceptions are logged and also give nullopt. Never blocks, never throws.
  std::optional<Response> TryFast(Request& request, Services& services) const;

  /// Returns the AsyncHandler of the GET (or HEAD) route of `request`, filling the request's
  /// path parameters and extension; null when the route has none.
  const AsyncHandler* FindAsync(Request& request) const;

  size_t size() const { return routes_.size(); }

 private:
  struct Segment {
    std::string text;  // literal text, or the parameter name
    bool is_param = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    bool allows_extension = false;
    bool prefix = false;  // "/*": also matches longer paths
    Handler handler;
    FastHandler fast;
    AsyncHandler async;
    UploadHandler upload;
  };

  /// Finds the route of `request` and fills its path parameters and extension; nullopt when
  /// no route matches.
  std::optional<Match> Resolve(Request& request) const;
  /// Matches one route against a path; fills `match` and returns true on success.
  static bool MatchRoute(const Route& route, const std::vector<std::string>& segments, Match* match);

  std::vector<Route> routes_;
  // Indexes into routes_: by segment count (routes without "/*"), and the "/*" routes.
  std::vector<std::vector<size_t>> by_length_;
  std::vector<size_t> prefix_routes_;
};

}  // namespace terrafuse::http
