#include "terrafuse/workers/protocol.h"

#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <span>
#include <string>

namespace terrafuse::workers {
namespace {

std::string EncodedFrame(std::string_view header, std::string_view payload) {
  std::string out;
  AppendFrame(header, payload, &out);
  return out;
}

// Feeds `bytes` to the decoder in pieces of at most `piece` bytes.
Status FeedAll(FrameDecoder* decoder, std::string_view bytes, size_t piece) {
  while (!bytes.empty()) {
    std::span<uint8_t> target = decoder->ReadTarget();
    EXPECT_FALSE(target.empty());
    size_t n = std::min({piece, target.size(), bytes.size()});
    std::memcpy(target.data(), bytes.data(), n);
    bytes.remove_prefix(n);
    ARROW_RETURN_NOT_OK(decoder->Consume(n));
  }
  return Status::OK();
}

void ExpectError(const Status& status, std::string_view substring) {
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(substring), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << substring;
}

TEST(FrameTest, LayoutIsMagicLengthsLittleEndian) {
  std::string frame = EncodedFrame("{}", "xyz");
  ASSERT_EQ(frame.size(), 4u + 4 + 2 + 8 + 3);
  EXPECT_EQ(frame.substr(0, 4), "TFW1");
  EXPECT_EQ(frame.substr(4, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(frame.substr(8, 2), "{}");
  EXPECT_EQ(frame.substr(10, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(frame.substr(18), "xyz");
}

TEST(FrameTest, DecodesWholeAndBytewiseAndLargePayloadsDirectly) {
  std::string big(300 << 10, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  for (std::string payload : {std::string(), std::string("abc"), big}) {
    for (size_t piece : {size_t{1}, size_t{5}, size_t{1} << 20}) {
      if (piece == 1 && payload.size() > 1000) continue;
      FrameDecoder decoder;
      std::string bytes = EncodedFrame(R"({"op":"ready"})", payload);
      ASSERT_TRUE(FeedAll(&decoder, bytes, piece).ok());
      ASSERT_TRUE(decoder.HasFrame());
      Frame frame = *decoder.Take();
      EXPECT_EQ(frame.header, R"({"op":"ready"})");
      ASSERT_NE(frame.payload, nullptr);
      EXPECT_EQ(frame.payload->ToString(), payload);
      EXPECT_FALSE(decoder.HasFrame());
      EXPECT_EQ(decoder.partial_bytes(), 0);
    }
  }
}

TEST(FrameTest, DecoderIsReusableAfterTake) {
  FrameDecoder decoder;
  for (int i = 0; i < 3; ++i) {
    std::string header = R"({"i":)" + std::to_string(i) + "}";
    ASSERT_TRUE(FeedAll(&decoder, EncodedFrame(header, "p"), 4).ok());
    ASSERT_TRUE(decoder.HasFrame());
    EXPECT_EQ(decoder.Take()->header, header);
  }
}

TEST(FrameTest, BackToBackFramesDecodeInOrder) {
  // The replies of a batch arrive in one read: each Take() starts on the bytes after it.
  std::string big(40 << 10, 'x');
  std::string bytes = EncodedFrame(R"({"i":0})", "") + EncodedFrame(R"({"i":1})", big) +
                      EncodedFrame(R"({"i":2})", "p");
  for (size_t piece : {size_t{3}, size_t{1} << 20}) {
    FrameDecoder decoder;
    ASSERT_TRUE(FeedAll(&decoder, bytes.substr(0, bytes.size() - 2), piece).ok());
    std::vector<std::string> headers;
    while (decoder.HasFrame()) headers.push_back(decoder.Take()->header);
    ASSERT_TRUE(FeedAll(&decoder, bytes.substr(bytes.size() - 2), piece).ok());
    while (decoder.HasFrame()) headers.push_back(decoder.Take()->header);
    EXPECT_EQ(headers, (std::vector<std::string>{R"({"i":0})", R"({"i":1})", R"({"i":2})"}));
    EXPECT_EQ(decoder.partial_bytes(), 0);
  }
}

TEST(FrameTest, MalformedFramesNameTheProblem) {
  {
    FrameDecoder decoder;
    ExpectError(FeedAll(&decoder, "HTTP/1.1 200 OK\r\n", 64), "bad magic 'HTTP', expected 'TFW1'");
  }
  {
    FrameDecoder decoder;
    std::string bytes = "TFW1" + std::string("\xff\xff\xff\x7f", 4);
    ExpectError(FeedAll(&decoder, bytes, 64),
                "header of 2147483647 bytes is over the limit of 16777216");
  }
  {
    FrameDecoder decoder(/*max_payload_bytes=*/10);
    std::string bytes = EncodedFrame("{}", std::string(11, 'x'));
    ExpectError(FeedAll(&decoder, bytes, 64), "payload of 11 bytes is over the limit of 10");
  }
  {
    FrameDecoder decoder;
    std::string bytes = EncodedFrame("{}", "") + "junk1234";
    ASSERT_TRUE(FeedAll(&decoder, bytes, 64).ok());
    ExpectError(decoder.Take().status(), "bad magic 'junk'");
  }
}

WorkerRequest SampleRequest() {
  WorkerRequest request;
  request.id = "req-1";
  request.udf_name = "My UDF";
  request.code = "import fused\n@fused.udf\ndef udf(n: int = 1):\n    return \"<b>\" * n\n";
  request.udf_hash = "abc123";
  request.headers = {{"utils", "X = 1\n"}};
  request.params = {{"n", "3"}, {"name", "a \"quoted\" value"}};
  request.tile = std::array<int64_t, 3>{1, 2, 3};
  request.bounds = std::array<double, 4>{-122.5, 37.25, -122, 38};
  return request;
}

TEST(RunHeaderTest, WithoutCodeNamesTheVersionByHashOnly) {
  nlohmann::json json = nlohmann::json::parse(*EncodeRunHeader(SampleRequest(), /*with_code=*/false));
  EXPECT_EQ(json["udf"]["hash"], "abc123");
  EXPECT_EQ(json["udf"]["name"], "My UDF");
  EXPECT_FALSE(json["udf"].contains("code"));
  EXPECT_FALSE(json["udf"].contains("headers"));
  EXPECT_EQ(json["params"]["n"], "3");
  WorkerRequest unhashed = SampleRequest();
  unhashed.udf_hash.clear();  // nothing to name it by: the code is always sent
  json = nlohmann::json::parse(*EncodeRunHeader(unhashed, /*with_code=*/false));
  EXPECT_EQ(json["udf"]["code"], SampleRequest().code);
}

TEST(RunHeaderTest, EncodesEveryField) {
  auto header = EncodeRunHeader(SampleRequest());
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  nlohmann::json json = nlohmann::json::parse(*header);
  EXPECT_EQ(json["op"], "run");
  EXPECT_EQ(json["id"], "req-1");
  EXPECT_EQ(json["udf"]["name"], "My UDF");
  EXPECT_EQ(json["udf"]["code"], SampleRequest().code);
  EXPECT_EQ(json["udf"]["entrypoint"], "udf");
  EXPECT_EQ(json["udf"]["hash"], "abc123");
  EXPECT_EQ(json["udf"]["headers"][0]["module_name"], "utils");
  EXPECT_EQ(json["udf"]["headers"][0]["source_code"], "X = 1\n");
  EXPECT_EQ(json["params"]["n"], "3");
  EXPECT_EQ(json["params"]["name"], "a \"quoted\" value");
  EXPECT_EQ(json["tile"], nlohmann::json::array({1, 2, 3}));
  EXPECT_EQ(json["bounds"], nlohmann::json::array({-122.5, 37.25, -122, 38}));

  WorkerRequest plain;
  plain.udf_name = "u";
  plain.code = "x";
  json = nlohmann::json::parse(*EncodeRunHeader(plain));
  EXPECT_TRUE(json["tile"].is_null());
  EXPECT_TRUE(json["bounds"].is_null());
  EXPECT_TRUE(json["params"].is_object() && json["params"].empty());
}

TEST(RunHeaderTest, RejectsWhatTheWorkerCouldNotRead) {
  WorkerRequest request = SampleRequest();
  request.params.push_back({"bad", "\xff\xfe"});
  ExpectError(EncodeRunHeader(request).status(),
              "The value of parameter 'bad' of UDF 'My UDF' is not valid UTF-8");
  EXPECT_EQ(KindOf(EncodeRunHeader(request).status()), ErrorKind::kInvalidArgument);

  request = SampleRequest();
  (*request.bounds)[2] = std::nan("");
  ExpectError(EncodeRunHeader(request).status(), "Invalid bounds for UDF 'My UDF'");

  request = SampleRequest();
  request.code = std::string(kMaxHeaderBytes, 'x');
  ExpectError(EncodeRunHeader(request).status(), "over the limit of 16777216");
  EXPECT_EQ(KindOf(EncodeRunHeader(request).status()), ErrorKind::kTooLarge);
}

Frame MakeFrame(std::string header, std::string payload = "") {
  return Frame{std::move(header), arrow::Buffer::FromString(std::move(payload))};
}

TEST(ReplyTest, DecodesSuccessAndFailure) {
  auto reply = DecodeReply(
      MakeFrame(R"({"id":"r","ok":true,"kind":"json","stdout":"hi\n","stderr":"","seconds":0.1})",
                "42"),
      "r");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->ok);
  EXPECT_EQ(reply->kind, ReplyKind::kJson);
  EXPECT_EQ(reply->payload->ToString(), "42");
  EXPECT_EQ(reply->captured_stdout(), "hi\n");
  EXPECT_TRUE(ReplyStatus(*reply).ok());

  reply = DecodeReply(MakeFrame(R"({"id":"r","ok":false,"error":{"kind":"invalid_argument",
      "type":"InvalidArgumentError","message":"Unknown parameter 'x'","traceback":""},
      "stdout":"","stderr":"warn\n"})"),
                      "r");
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->error_kind(), "invalid_argument");
  EXPECT_EQ(reply->error_type(), "InvalidArgumentError");
  EXPECT_EQ(reply->captured_stderr(), "warn\n");
  Status status = ReplyStatus(*reply);
  EXPECT_EQ(KindOf(status), ErrorKind::kInvalidArgument);
  EXPECT_EQ(status.message(), "Unknown parameter 'x'");
}

// Flat ok replies are read without a JSON tree; whatever that reader leaves to the general
// parser (escapes, nesting, odd numbers, invalid JSON) must come out the same or fail the same.
TEST(ReplyTest, FlatRepliesDecodeAsTheGeneralParserWould) {
  auto decode = [](std::string header) { return DecodeReply(MakeFrame(std::move(header), "7"), "r"); };
  auto flat = decode(R"( { "id" : "r", "ok" : true, "kind" : "none", "stdout" : "é", "stderr" : "",
                          "seconds" : 1.5e-3, "recycle" : true, "media_type" : null } )");
  ASSERT_TRUE(flat.ok()) << flat.status().ToString();
  EXPECT_EQ(flat->kind, ReplyKind::kNone);
  EXPECT_EQ(flat->captured_stdout(), "é");
  EXPECT_DOUBLE_EQ(flat->seconds, 1.5e-3);
  EXPECT_TRUE(flat->recycle);
  EXPECT_EQ(flat->media_type, "");
  EXPECT_EQ(flat->payload->ToString(), "7");
  EXPECT_NE(flat->header_json.find("1.5e-3"), std::string::npos);
  // Repeated keys: the first one counts, as JsonValue::Find.
  auto repeated = decode(R"({"id":"r","ok":true,"kind":"bytes","media_type":"a/b","media_type":"c/d"})");
  ASSERT_TRUE(repeated.ok());
  EXPECT_EQ(repeated->media_type, "a/b");
  // Escapes go to the general parser.
  auto escaped = decode(R"({"id":"r","ok":true,"kind":"json","stdout":"a\n\u00e9","seconds":2})");
  ASSERT_TRUE(escaped.ok()) << escaped.status().ToString();
  EXPECT_EQ(escaped->captured_stdout(), "a\n\xc3\xa9");
  EXPECT_EQ(escaped->seconds, 2);
  // Not JSON: refused whichever reader saw it first.
  for (const char* bad : {R"({"id":"r","ok":true,"kind":"none",})", R"({"id":"r","ok":true,"kind":"none"} x)",
                          R"({"id":"r","ok":true,"kind":"none","seconds":01})",
                          R"({"id":"r","ok":true,"kind":"none","seconds":1e999})",
                          R"({"id":"r","ok":tru,"kind":"none"})", "{\"id\":\"r\",\"ok\":true,\"kind\":\"none\",\"stdout\":\"\x01\"}"}) {
    EXPECT_FALSE(decode(bad).ok()) << bad;
  }
}

TEST(ReplyTest, RasterShapeMustMatchThePayload) {
  const std::string header =
      R"({"id":"r","ok":true,"kind":"raster","shape":[2,3],"dtype":"uint16","bounds":null})";
  EXPECT_TRUE(DecodeReply(MakeFrame(header, std::string(12, 'x')), "r").ok());
  ExpectError(DecodeReply(MakeFrame(header, std::string(6, 'x')), "r").status(),
              "shape [2,3] and dtype 'uint16' (12 bytes) but a payload of 6 bytes");
  ExpectError(
      DecodeReply(MakeFrame(R"({"id":"r","ok":true,"kind":"raster","shape":[1],"dtype":"object"})"),
                  "r")
          .status(),
      "has dtype 'object'");
}

TEST(ReplyTest, MalformedRepliesNameTheProblem) {
  ExpectError(DecodeReply(MakeFrame("not json"), "r").status(), "the header is not a JSON object");
  ExpectError(DecodeReply(MakeFrame(R"({"id":"other","ok":true,"kind":"none"})"), "r").status(),
              "id \"other\" does not match the request id \"r\"");
  ExpectError(DecodeReply(MakeFrame(R"({"id":"r","kind":"none"})"), "r").status(),
              "'ok' must be true or false");
  ExpectError(DecodeReply(MakeFrame(R"({"id":"r","ok":true,"kind":"parcel"})"), "r").status(),
              "unknown kind 'parcel'");
  ExpectError(DecodeReply(MakeFrame(R"({"id":"r","ok":false})"), "r").status(),
              "a failed reply needs 'error' with 'kind' and 'message'");
}

TEST(ReadyTest, ReadyFrameIsRecognised) {
  auto pid = DecodeReady(MakeFrame(R"({"op":"ready","pid":1234,"version":"0.1.0"})"));
  ASSERT_TRUE(pid.ok());
  EXPECT_EQ(*pid, 1234);
  ExpectError(DecodeReady(MakeFrame(R"({"op":"run"})")).status(), "expected the 'ready' frame");
}

}  // namespace
}  // namespace terrafuse::workers
