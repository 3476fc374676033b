#include "terrafuse/encode/table_text_internal.h"

#include <gtest/gtest.h>

namespace terrafuse::encode::internal {
namespace {

std::string Markup(std::string_view s) {
  std::string out;
  AppendXmlText(&out, s);
  return out;
}

TEST(AppendXmlTextTest, EscapesMarkup) {
  EXPECT_EQ(Markup("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
  EXPECT_EQ(Markup("\"quotes\" and 'apostrophes' stay"), "\"quotes\" and 'apostrophes' stay");
  EXPECT_EQ(Markup("]]>"), "]]&gt;");
  EXPECT_EQ(Markup("tab\tnew\nline\r\n"), "tab\tnew\nline&#13;\n");
}

TEST(AppendXmlTextTest, KeepsValidUtf8) {
  const std::string text = "\u00e9\u4e2d\U0001F600 \u00ff";
  EXPECT_EQ(Markup(text), text);
}

TEST(AppendXmlTextTest, ReplacesWhatXmlCannotHold) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(Markup(std::string("a\0b", 3)), "a" + fffd + "b");
  EXPECT_EQ(Markup("\x01\x1f\x7f"), fffd + fffd + "\x7f");
  EXPECT_EQ(Markup("\xff"), fffd);                                    // never UTF-8
  EXPECT_EQ(Markup("\xc3"), fffd);                                    // truncated
  EXPECT_EQ(Markup("\xc0\xaf"), fffd + fffd);                         // overlong '/'
  EXPECT_EQ(Markup("\xed\xa0\x80"), fffd + fffd + fffd);              // a surrogate
  EXPECT_EQ(Markup("\xef\xbf\xbe|\xef\xbf\xbf"), fffd + "|" + fffd);  // U+FFFE, U+FFFF
  EXPECT_EQ(Markup("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);   // above U+10FFFF
}

}  // namespace
}  // namespace terrafuse::encode::internal
