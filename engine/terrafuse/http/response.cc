#include "terrafuse/http/response.h"

namespace terrafuse::http {

std::string_view Response::Body() const {
  if (shared_body) {
    return {reinterpret_cast<const char*>(shared_body->data()), static_cast<size_t>(shared_body->size())};
  }
  return body;
}

uint64_t Response::BodySize() const {
  return file ? static_cast<uint64_t>(file_length) : Body().size();
}

Response Response::File(std::shared_ptr<arrow::io::RandomAccessFile> file, int64_t length,
                        std::string media_type) {
  Response response;
  response.file = std::move(file);
  response.file_length = length;
  response.headers.Set("Content-Type", std::move(media_type));
  return response;
}

Response Response::Json(std::string json, int status) {
  return Text(std::move(json), status, "application/json");
}

Response Response::Text(std::string text, int status, std::string content_type) {
  Response response;
  response.status = status;
  response.body = std::move(text);
  response.headers.Set("Content-Type", std::move(content_type));
  return response;
}

Response Response::Bytes(std::string bytes, std::string media_type) {
  return Text(std::move(bytes), 200, std::move(media_type));
}

Response Response::Bytes(std::shared_ptr<arrow::Buffer> bytes, std::string media_type) {
  Response response;
  response.shared_body = std::move(bytes);
  response.headers.Set("Content-Type", std::move(media_type));
  return response;
}

}  // namespace terrafuse::http
