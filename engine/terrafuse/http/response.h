// What a handler returns: status, headers and body. The server adds CORS, the request id,
// ETag/304 and Range/206 afterwards (response_filters.h); handlers only say what the
// resource is.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>

#include "terrafuse/http/headers.h"

namespace terrafuse::http {

struct Response {
  int status = 200;
  Headers headers;
  /// The body, unless `shared_body` is set (cache hits are served from shared buffers
  /// without a copy).
  std::string body;
  std::shared_ptr<arrow::Buffer> shared_body;
  /// A body streamed from a file in pieces instead (downloads): `file_length` bytes from
  /// `file_offset`. Range requests narrow the window; the handler sets the ETag.
  std::shared_ptr<arrow::io::RandomAccessFile> file;
  int64_t file_offset = 0;
  int64_t file_length = 0;
  /// When true, a 200 answer gets a strong ETag from the hash of its body, and honours
  /// If-None-Match. Live values (metrics) turn it off.
  bool cacheable = true;

  /// The in-memory body (empty for a file body).
  std::string_view Body() const;
  /// The body's length in bytes, in memory or in a file.
  uint64_t BodySize() const;

  /// Returns a response with `Content-Type: application/json`.
  static Response Json(std::string json, int status = 200);
  /// Returns a response with `Content-Type: text/plain; charset=utf-8` unless told otherwise.
  static Response Text(std::string text, int status = 200,
                       std::string content_type = "text/plain; charset=utf-8");
  /// Returns a 200 response of raw bytes with the given media type.
  static Response Bytes(std::string bytes, std::string media_type);
  static Response Bytes(std::shared_ptr<arrow::Buffer> bytes, std::string media_type);
  /// Returns a 200 response streaming `length` bytes of `file`.
  static Response File(std::shared_ptr<arrow::io::RandomAccessFile> file, int64_t length, std::string media_type);
};

}  // namespace terrafuse::http
