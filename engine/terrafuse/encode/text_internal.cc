#include "terrafuse/encode/text_internal.h"

namespace terrafuse::encode::internal {

namespace {

void AppendTwoDigits(std::string* out, int64_t v) {
  char buf[2] = {static_cast<char>('0' + v / 10), static_cast<char>('0' + v % 10)};
  out->append(buf, 2);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

}  // namespace

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
