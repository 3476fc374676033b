#include "terrafuse/http/response_filters.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "terrafuse/common/hash.h"
#include "terrafuse/http/error_response.h"

namespace terrafuse::http {

namespace {

// Headers a browser script may read beyond the CORS-safelisted ones: the workbench reads
// UDF errors and logs from X-Fused-Metadata.
constexpr const char* kExposedHeaders = "ETag, Content-Range, Accept-Ranges, X-Fused-Metadata, X-Request-Id";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Parses a whole string of decimal digits; false for empty, signs or overflow.
bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

std::string_view StripWeak(std::string_view tag) {
  return tag.starts_with("W/") ? tag.substr(2) : tag;
}

void Slice(Response& response, const ByteRange& range) {
  const uint64_t length = range.last - range.first + 1;
  if (response.file) {
    response.file_offset += static_cast<int64_t>(range.first);
    response.file_length = static_cast<int64_t>(length);
  } else if (response.shared_body) {
    response.shared_body = arrow::SliceBuffer(response.shared_body, static_cast<int64_t>(range.first),
                                              static_cast<int64_t>(length));
  } else {
    response.body = response.body.substr(range.first, length);
  }
}

}  // namespace

RangeOutcome ParseByteRange(std::string_view header, uint64_t size, ByteRange* range) {
  header = Trim(header);
  if (!header.starts_with("bytes=")) return RangeOutcome::kIgnore;
  std::string_view spec = Trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return RangeOutcome::kIgnore;  // multipart: not served
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return RangeOutcome::kIgnore;
  std::string_view first_text = Trim(spec.substr(0, dash));
  std::string_view last_text = Trim(spec.substr(dash + 1));
  uint64_t first = 0, last = 0;
  if (first_text.empty()) {
    // "-n": the last n bytes; n = 0 asks for nothing, which no body satisfies.
    uint64_t suffix = 0;
    if (!ParseUint(last_text, &suffix)) return RangeOutcome::kIgnore;
    if (suffix == 0) return RangeOutcome::kUnsatisfiable;
    if (size == 0) return RangeOutcome::kIgnore;  // RFC 9110: no 206 for an empty body
    *range = {size - std::min(suffix, size), size - 1};
    return RangeOutcome::kSatisfiable;
  }
  if (!ParseUint(first_text, &first)) return RangeOutcome::kIgnore;
  if (last_text.empty()) {
    last = UINT64_MAX;
  } else if (!ParseUint(last_text, &last) || last < first) {
    return RangeOutcome::kIgnore;
  }
  if (first >= size) return RangeOutcome::kUnsatisfiable;
  *range = {first, std::min(last, size - 1)};
  return RangeOutcome::kSatisfiable;
}

bool IfNoneMatchMatches(std::string_view header, std::string_view etag) {
  header = Trim(header);
  if (header == "*") return true;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = Trim(header.substr(0, comma));
    if (!tag.empty() && StripWeak(tag) == StripWeak(etag)) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

std::string BodyETag(std::string_view body) {
  std::string etag = HashHex(body);
  etag.insert(etag.begin(), '"');
  etag.push_back('"');
  return etag;
}

void FinalizeResponse(const Request& request, Response& response) {
  const bool get_or_head = request.method == "GET" || request.method == "HEAD";
  if (response.status == 200 && get_or_head) {
    auto etag = response.headers.Find("ETag");
    if (!etag && response.cacheable && !response.file) {
      response.headers.Add("ETag", BodyETag(response.Body()));
      etag = response.headers.fields().back().second;
    }
    auto if_none_match = request.headers.Find("If-None-Match");
    if (etag && if_none_match && IfNoneMatchMatches(*if_none_match, *etag)) {
      response.status = 304;
      response.body.clear();
      response.shared_body.reset();
      response.file.reset();
    } else {
      response.headers.Set("Accept-Ranges", "bytes");
      auto range_header = request.headers.Find("Range");
      // If-Range: serve the range only if the client's copy is still current.
      auto if_range = request.headers.Find("If-Range");
      bool range_applies = range_header && (!if_range || (etag && Trim(*if_range) == *etag));
      ByteRange range;
      const uint64_t size = response.BodySize();
      switch (range_applies ? ParseByteRange(*range_header, size, &range) : RangeOutcome::kIgnore) {
        case RangeOutcome::kIgnore:
          break;
        case RangeOutcome::kSatisfiable:
          Slice(response, range);
          response.status = 206;
          response.headers.Set("Content-Range", "bytes " + std::to_string(range.first) + "-" +
                                                    std::to_string(range.last) + "/" + std::to_string(size));
          break;
        case RangeOutcome::kUnsatisfiable:
          response = ErrorResponse(416, "range_not_satisfiable",
                                   "Range '" + std::string(*range_header) + "' is outside the " +
                                       std::to_string(size) + "-byte body",
                                   request.request_id);
          response.headers.Set("Content-Range", "bytes */" + std::to_string(size));
          break;
      }
    }
  }
  response.headers.Set("Access-Control-Allow-Origin", "*");
  response.headers.Set("Access-Control-Expose-Headers", kExposedHeaders);
  response.headers.Set("X-Request-Id", request.request_id);
}

}  // namespace terrafuse::http
