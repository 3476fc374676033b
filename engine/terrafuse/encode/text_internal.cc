#include "terrafuse/encode/text_internal.h"

#include <array>

namespace terrafuse::encode::internal {

namespace {

// For each byte: 0 = copy as is, 'u' = \u00XX, else the letter after the backslash.
constexpr std::array<char, 256> MakeEscapeTable() {
  std::array<char, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = 'u';
  table['\b'] = 'b';
  table['\f'] = 'f';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  table['"'] = '"';
  table['\\'] = '\\';
  return table;
}
constexpr std::array<char, 256> kEscape = MakeEscapeTable();

void AppendTwoDigits(std::string* out, int64_t v) {
  char buf[2] = {static_cast<char>('0' + v / 10), static_cast<char>('0' + v % 10)};
  out->append(buf, 2);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  const char* run = s.data();
  const char* end = s.data() + s.size();
  for (const char* p = run; p < end; ++p) {
    char esc = kEscape[static_cast<unsigned char>(*p)];
    if (esc == 0) continue;
    out->append(run, p);
    if (esc == 'u') {
      static constexpr char kHex[] = "0123456789abcdef";
      char buf[6] = {'\\', 'u', '0', '0', kHex[(*p >> 4) & 0xF], kHex[*p & 0xF]};
      out->append(buf, 6);
    } else {
      char buf[2] = {'\\', esc};
      out->append(buf, 2);
    }
    run = p + 1;
  }
  out->append(run, end);
  out->push_back('"');
}

void AppendBase64(std::string* out, std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    char buf[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                   kAlphabet[v & 63]};
    out->append(buf, 4);
  }
  if (i + 1 == n) {
    uint32_t v = uint32_t{p[i]} << 16;
    char buf[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
    out->append(buf, 4);
  } else if (i + 2 == n) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    char buf[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
    out->append(buf, 4);
  }
}

void AppendIsoDate(std::string* out, int64_t days) {
  // Howard Hinnant's civil_from_days.
  int64_t z = days + 719468;
  int64_t era = FloorDiv(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t d = doy - (153 * mp + 2) / 5 + 1;
  int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  if (y >= 0 && y <= 9999) {
    char buf[4] = {static_cast<char>('0' + y / 1000), static_cast<char>('0' + y / 100 % 10),
                   static_cast<char>('0' + y / 10 % 10), static_cast<char>('0' + y % 10)};
    out->append(buf, 4);
  } else {
    AppendInt(out, y);  // outside ISO 8601's four digits: still unambiguous
  }
  out->push_back('-');
  AppendTwoDigits(out, m);
  out->push_back('-');
  AppendTwoDigits(out, d);
}

void AppendIsoTime(std::string* out, int64_t seconds_of_day, int64_t fraction, int digits) {
  AppendTwoDigits(out, seconds_of_day / 3600);
  out->push_back(':');
  AppendTwoDigits(out, seconds_of_day / 60 % 60);
  out->push_back(':');
  AppendTwoDigits(out, seconds_of_day % 60);
  if (digits > 0) {
    char buf[9];
    for (int i = digits - 1; i >= 0; --i) {
      buf[i] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    out->push_back('.');
    out->append(buf, digits);
  }
}

void AppendIsoTimestamp(std::string* out, int64_t value, int64_t ticks_per_second, int digits) {
  int64_t seconds = FloorDiv(value, ticks_per_second);
  int64_t fraction = value - seconds * ticks_per_second;
  int64_t days = FloorDiv(seconds, 86400);
  AppendIsoDate(out, days);
  out->push_back('T');
  AppendIsoTime(out, seconds - days * 86400, fraction, digits);
}

}  // namespace terrafuse::encode::internal
