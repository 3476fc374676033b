// Small, hot text helpers shared by the text encoders: numbers in their shortest exact
// form, ISO 8601 dates and times.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "terrafuse/common/json_reader.h"  // AppendJsonString, used with these helpers

namespace terrafuse::encode::internal {

/// Appends the shortest text that reads back as exactly `value` ("1", "0.1", "1e+20").
inline void AppendDouble(std::string* out, double value) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, res.ptr);
}

/// As AppendDouble, but NaN and infinities become `null` (JSON has no such numbers).
inline void AppendJsonDouble(std::string* out, double value) {
  if (!std::isfinite(value)) {
    out->append("null", 4);
    return;
  }
  AppendDouble(out, value);
}

template <typename Int>
inline void AppendInt(std::string* out, Int value) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, res.ptr);
}

/// Appends the standard base64 (RFC 4648, padded) of `data`.
void AppendBase64(std::string* out, std::string_view data);

/// Appends "YYYY-MM-DD" for a count of days since 1970-01-01 (proleptic Gregorian).
void AppendIsoDate(std::string* out, int64_t days);

/// Appends "HH:MM:SS" and, when `digits` > 0, "." and `digits` digits of `fraction`. The
/// width follows the unit, not the value, so that a column reads with one format.
void AppendIsoTime(std::string* out, int64_t seconds_of_day, int64_t fraction, int digits);

/// Appends "YYYY-MM-DDTHH:MM:SS[.fff]" for `value` ticks since the epoch, where one second
/// has `ticks_per_second` ticks (1, 1e3, 1e6 or 1e9) printed with `digits` (0, 3, 6, 9).
void AppendIsoTimestamp(std::string* out, int64_t value, int64_t ticks_per_second, int digits);

}  // namespace terrafuse::encode::internal
