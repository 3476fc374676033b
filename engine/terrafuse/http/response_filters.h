// HTTP semantics the server applies to every handler response, so handlers never repeat
// them: CORS, X-Request-Id, ETag / If-None-Match → 304, and Range → 206 / 416.
#pragma once

#include <cstdint>
#include <string_view>

#include "terrafuse/http/request.h"
#include "terrafuse/http/response.h"

namespace terrafuse::http {

/// An inclusive byte range within a body, as in "Content-Range: bytes first-last/size".
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

enum class RangeOutcome {
  kIgnore,         // no usable Range header: send the whole body (200)
  kSatisfiable,    // send `range` (206)
  kUnsatisfiable,  // the range starts past the end (416)
};

/// Parses a Range header for a body of `size` bytes: "bytes=a-b", "bytes=a-" and
/// "bytes=-n" (the last n bytes). Malformed headers and multi-range requests are
/// ignored, which RFC 9110 allows; the whole body is then sent.
RangeOutcome ParseByteRange(std::string_view header, uint64_t size, ByteRange* range);

/// Returns whether an If-None-Match header value matches `etag`: "*", or any listed tag
/// equal to it by weak comparison (a "W/" prefix is ignored).
bool IfNoneMatchMatches(std::string_view header, std::string_view etag);

/// Returns the strong ETag of a body: its XXH3-128 in quotes.
std::string BodyETag(std::string_view body);

/// Applies the server-wide semantics to `response` for `request`:
///  - every response: Access-Control-Allow-Origin: *, exposed headers, X-Request-Id;
///  - a 200 to GET or HEAD: ETag when cacheable (unless the handler set one), 304 when
///    If-None-Match matches, Accept-Ranges, and 206 or 416 for a Range header (honouring
///    If-Range).
void FinalizeResponse(const Request& request, Response& response);

}  // namespace terrafuse::http
