#include "terrafuse/common/json_reader.h"

#include <string>

#include <gtest/gtest.h>

namespace terrafuse {
namespace {

JsonValue Parse(std::string_view text) {
  Result<JsonValue> parsed = ParseJson(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString() << "\n" << text;
  return parsed.ok() ? *std::move(parsed) : JsonValue{};
}

// The error message for `text`, or "" when it parses.
std::string ErrorOf(std::string_view text) {
  Result<JsonValue> parsed = ParseJson(text);
  if (parsed.ok()) return "";
  EXPECT_EQ(KindOf(parsed.status()), ErrorKind::kInvalidArgument);
  return parsed.status().message();
}

TEST(JsonReaderTest, ParsesNestedValues) {
  JsonValue v = Parse(R"( {"a": [1, -2.5e3, true, false, null, {"b": "c"}], "d": {}, "e": []} )");
  ASSERT_TRUE(v.IsObject());
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.members[0].first, "a");
  const JsonValue* a = v.Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->type, JsonValue::Type::kArray);
  ASSERT_EQ(a->items.size(), 6u);
  EXPECT_EQ(a->items[0].type, JsonValue::Type::kNumber);
  EXPECT_EQ(a->items[0].number, 1);
  EXPECT_EQ(a->items[1].number, -2500);
  EXPECT_EQ(a->items[2].type, JsonValue::Type::kBool);
  EXPECT_TRUE(a->items[2].boolean);
  EXPECT_FALSE(a->items[3].boolean);
  EXPECT_EQ(a->items[4].type, JsonValue::Type::kNull);
  ASSERT_NE(a->items[5].Find("b"), nullptr);
  EXPECT_EQ(a->items[5].Find("b")->string, "c");
  EXPECT_TRUE(v.Find("d")->IsObject());
  EXPECT_TRUE(v.Find("d")->members.empty());
  EXPECT_EQ(v.Find("e")->type, JsonValue::Type::kArray);
  EXPECT_EQ(v.Find("missing"), nullptr);
  EXPECT_EQ(a->items[0].Find("x"), nullptr) << "Find on a non-object finds nothing";
}

TEST(JsonReaderTest, RawIsTheValuesOwnText) {
  JsonValue v = Parse(R"({"n": 1.50, "o": { "x" : [ 1 ] }, "s": "\u0041"})");
  EXPECT_EQ(v.Find("n")->raw, "1.50");
  EXPECT_EQ(v.Find("o")->raw, R"({ "x" : [ 1 ] })");
  EXPECT_EQ(v.Find("s")->raw, R"("\u0041")");
  EXPECT_EQ(v.Find("s")->string, "A");
}

TEST(JsonReaderTest, DecodesEscapesAndSurrogatePairs) {
  JsonValue v = Parse(R"("q\"b\\s\/\b\f\n\r\t|\u00e9\u00E9|\u2028|\ud83d\ude00|\u0000.")");
  ASSERT_TRUE(v.IsString());
  EXPECT_EQ(v.string, std::string("q\"b\\s/\b\f\n\r\t|\xc3\xa9\xc3\xa9|\xe2\x80\xa8|"
                                  "\xf0\x9f\x98\x80|") +
                          '\0' + ".");
  // UTF-8 in the document is copied as it is.
  EXPECT_EQ(Parse("\"\xc3\xa9 \xf0\x9f\x98\x80\"").string, "\xc3\xa9 \xf0\x9f\x98\x80");
}

TEST(JsonReaderTest, NumbersFollowJsonsGrammar) {
  for (const char* good : {"0", "-0", "7", "-12", "1.5", "0.25", "1e3", "1E+2", "2.5e-3",
                           "123456789012345678901234567890"}) {
    JsonValue v = Parse(good);
    EXPECT_EQ(v.type, JsonValue::Type::kNumber) << good;
    EXPECT_EQ(v.raw, good);
    EXPECT_EQ(v.number, std::stod(good)) << good;
  }
  EXPECT_EQ(ErrorOf("-"), "invalid JSON at byte 0: bad number");
  EXPECT_EQ(ErrorOf("1."), "invalid JSON at byte 0: bad number");
  EXPECT_EQ(ErrorOf("1e"), "invalid JSON at byte 0: bad number");
  EXPECT_EQ(ErrorOf("[1, -.5]"), "invalid JSON at byte 4: bad number");
  EXPECT_EQ(ErrorOf("1e400"), "invalid JSON at byte 0: number out of range");
  EXPECT_EQ(ErrorOf("01"), "invalid JSON at byte 0: bad number");
  EXPECT_EQ(ErrorOf("[-00]"), "invalid JSON at byte 1: bad number");
  EXPECT_EQ(ErrorOf("+1"), "invalid JSON at byte 0: unexpected character");
  EXPECT_EQ(ErrorOf(".5"), "invalid JSON at byte 0: unexpected character");
  EXPECT_EQ(ErrorOf("0x1"), "invalid JSON at byte 1: unexpected text after the document");
  EXPECT_EQ(ErrorOf("NaN"), "invalid JSON at byte 0: unexpected character");
}

TEST(JsonReaderTest, ErrorsNameTheByteOffset) {
  EXPECT_EQ(ErrorOf(""), "invalid JSON at byte 0: unexpected end");
  EXPECT_EQ(ErrorOf(R"({"a" 1})"), "invalid JSON at byte 5: expected ':'");
  EXPECT_EQ(ErrorOf(R"({"a": 1,})"), "invalid JSON at byte 8: expected a member name");
  EXPECT_EQ(ErrorOf(R"({"a": 1 "b": 2})"), "invalid JSON at byte 8: expected ',' or '}'");
  EXPECT_EQ(ErrorOf("[1,]"), "invalid JSON at byte 3: unexpected character");
  EXPECT_EQ(ErrorOf("[1"), "invalid JSON at byte 2: expected ',' or ']'");
  EXPECT_EQ(ErrorOf("{} x"), "invalid JSON at byte 3: unexpected text after the document");
  EXPECT_EQ(ErrorOf(R"("abc)"), "invalid JSON at byte 4: unterminated string");
  EXPECT_EQ(ErrorOf("\"a\nb\""), "invalid JSON at byte 3: control character in string");
  EXPECT_EQ(ErrorOf(R"("\x")"), "invalid JSON at byte 3: bad escape");
  EXPECT_EQ(ErrorOf(R"("\u12)"), "invalid JSON at byte 3: truncated \\u escape");
  EXPECT_EQ(ErrorOf(R"("\u12g4")"), "invalid JSON at byte 6: bad \\u escape");
  EXPECT_EQ(ErrorOf("tru"), "invalid JSON at byte 0: unexpected character");
  // Surrogates must pair up: alone they have no UTF-8 form.
  EXPECT_EQ(ErrorOf(R"("\ud800")"), "invalid JSON at byte 7: unpaired surrogate");
  EXPECT_EQ(ErrorOf(R"("\udc00")"), "invalid JSON at byte 7: unpaired surrogate");
  EXPECT_EQ(ErrorOf(R"("\ud800\u0041")"), "invalid JSON at byte 13: unpaired surrogate");
  EXPECT_EQ(ErrorOf(std::string(200, '[') + std::string(200, ']')),
            "invalid JSON at byte 129: nested too deeply");
}

TEST(JsonReaderTest, MinifyKeepsNumbersAndReescapesStrings) {
  JsonValue v = Parse(
      "{ \"b\" : [ 1 , 2.50 , -0 , 1E+2 , 123456789012345678901234567890 ] ,\n"
      "  \"s\" : \"\\u2028\\u00e9\\n\\\"\\/\\u001f\\u007f\" , \"a\":{ }, \"a\" : null, "
      "\"e\\u0041\": [ ] , \"t\": [true,false] }");
  const std::string minified = MinifyJson(v);
  EXPECT_EQ(minified,
            "{\"b\":[1,2.50,-0,1E+2,123456789012345678901234567890],"
            "\"s\":\"\xe2\x80\xa8\xc3\xa9\\n\\\"/\\u001f\\u007f\",\"a\":{},\"a\":null,"
            "\"eA\":[],\"t\":[true,false]}");
  // Minified text reads back as the same value and minifies to itself.
  EXPECT_EQ(MinifyJson(Parse(minified)), minified);
  EXPECT_EQ(MinifyJson(Parse(R"( "x" )")), R"("x")");
  EXPECT_EQ(MinifyJson(Parse("null")), "null");

  // A number made in code (no document text) is written in its shortest exact form.
  JsonValue made;
  made.type = JsonValue::Type::kNumber;
  made.number = 0.1;
  EXPECT_EQ(MinifyJson(made), "0.1");
}

TEST(JsonReaderTest, AppendJsonStringEscapesControlsOnly) {
  std::string out = "x=";
  AppendJsonString(&out, std::string("a\"b\\c/\b\f\n\r\t") + '\x01' + '\x7f' + "\xc3\xa9");
  EXPECT_EQ(out, "x=\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u007f\xc3\xa9\"");
  EXPECT_EQ(Parse(out.substr(2)).string,
            std::string("a\"b\\c/\b\f\n\r\t") + '\x01' + '\x7f' + "\xc3\xa9");
}

TEST(JsonReaderTest, IsValidUtf8RefusesWhatIsNotUtf8) {
  EXPECT_TRUE(IsValidUtf8("ascii, \xc3\xa9, \xe2\x9c\x93, \xf0\x9f\x98\x80"));
  // Invalid lead byte, a cut sequence, an overlong form, a surrogate, above U+10FFFF.
  for (std::string bad : {std::string("\xff"), std::string("\xc3"), std::string("\xc0\xaf"),
                          std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80")}) {
    EXPECT_FALSE(IsValidUtf8("ok" + bad)) << "accepted invalid UTF-8";
  }
}

TEST(JsonReaderTest, AppendAsciiJsonStringEscapesAllButPrintableAscii) {
  std::string out;
  AppendAsciiJsonString(&out, "a\"b\\\n\x01\x7f \xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(out, R"("a\"b\\\n\u0001\u007f \u00e9 \ud83d\ude00")");
  out.clear();
  // A cut inside a character, an overlong form and a lone continuation byte: one U+FFFD each byte.
  AppendAsciiJsonString(&out, "\x98\x80x\xc0\xafy\xe2\x82");
  EXPECT_EQ(out, R"("\ufffd\ufffdx\ufffd\ufffdy\ufffd\ufffd")");
  EXPECT_EQ(ParseJson(out)->string, "\xef\xbf\xbd\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace terrafuse
