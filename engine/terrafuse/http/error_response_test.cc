#include "terrafuse/http/error_response.h"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

namespace terrafuse::http {
namespace {

TEST(ErrorResponseTest, MapsEveryKindToItsStatus) {
  const std::vector<std::pair<ErrorKind, int>> expected = {
      {ErrorKind::kInvalidArgument, 400},  {ErrorKind::kUnauthenticated, 401},
      {ErrorKind::kPermissionDenied, 403}, {ErrorKind::kNotFound, 404},
      {ErrorKind::kMethodNotAllowed, 405}, {ErrorKind::kAlreadyExists, 409},
      {ErrorKind::kTooLarge, 413},         {ErrorKind::kUnprocessableEntity, 422},
      {ErrorKind::kNotImplemented, 501},   {ErrorKind::kUnavailable, 503},
      {ErrorKind::kTimeout, 504},          {ErrorKind::kUdfFailed, 500},
      {ErrorKind::kWorkerCrashed, 500},    {ErrorKind::kIOError, 500},
      {ErrorKind::kInternal, 500},
  };
  for (const auto& [kind, status] : expected) {
    EXPECT_EQ(HttpStatusOf(kind), status) << ErrorKindName(kind);
    EXPECT_EQ(ErrorResponse(MakeError(kind, "m"), "r").status, status) << ErrorKindName(kind);
  }
}

TEST(ErrorResponseTest, BodyAndMetadataHeaderCarryKindMessageAndRequestId) {
  Response response = ErrorResponse(NotFound("UDF 'x' not found"), "req-1");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.headers.Find("Content-Type"), "application/json");
  EXPECT_FALSE(response.cacheable);
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(body["error"]["kind"], "not_found");
  EXPECT_EQ(body["error"]["message"], "UDF 'x' not found");
  EXPECT_EQ(body["error"]["request_id"], "req-1");
  EXPECT_EQ(response.headers.Find("X-Fused-Metadata"), response.body);
}

TEST(ErrorResponseTest, ArrowStatusesMapThroughTheirClosestKind) {
  EXPECT_EQ(ErrorResponse(Status::Invalid("bad"), "r").status, 400);
  EXPECT_EQ(ErrorResponse(Status::KeyError("gone"), "r").status, 404);
  EXPECT_EQ(ErrorResponse(Status::UnknownError("?"), "r").status, 500);
}

TEST(ErrorResponseTest, HeaderStaysOneAsciiLineWhateverTheMessage) {
  Response response = ErrorResponse(InvalidArgument("line1\nline2 \xc3\xa9 \xff"), "r");
  std::string header(*response.headers.Find("X-Fused-Metadata"));
  EXPECT_EQ(header.find('\n'), std::string::npos);
  for (char c : header) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  auto body = nlohmann::json::parse(header);
  EXPECT_EQ(body["error"]["message"].get<std::string>().substr(0, 11), "line1\nline2");
}

TEST(ErrorResponseTest, ExplicitStatusForProtocolErrors) {
  Response response = ErrorResponse(416, "range_not_satisfiable", "Range 'bytes=9-' is outside", "r");
  EXPECT_EQ(response.status, 416);
  EXPECT_EQ(nlohmann::json::parse(response.body)["error"]["kind"], "range_not_satisfiable");
}

}  // namespace
}  // namespace terrafuse::http
