// The server's log: one logfmt event per line on stderr (STYLE.md convention 7), e.g.
//   ts=2025-01-02T03:04:05.678Z level=info event=request request_id=... status=200 ms=0.21
// Levels are checked before anything is formatted (TF_LOG). This is the seed of the
// engine-wide facade common/logging.h; it lives here until another subsystem needs it.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "terrafuse/common/status.h"

namespace terrafuse::http {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

/// Parses "debug", "info", "warn" (or "warning") and "error", in any case.
Result<LogLevel> ParseLogLevel(std::string_view name);

/// Sets the process-wide threshold; events below it are dropped unformatted.
void SetLogLevel(LogLevel level);
bool ShouldLog(LogLevel level);

using LogField = std::pair<std::string_view, std::string>;

/// Writes one line: ts, level, event, then `fields` in order. Values with spaces, quotes
/// or '=' are quoted, so each line stays machine-readable.
void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields);

/// Returns `path` with the secret part of tokens cut: a segment starting with "fsh_" (shared
/// token) or "tfk_" (API token) keeps its prefix and 4 characters. Logs never hold a
/// usable token.
std::string RedactTokens(std::string_view path);

}  // namespace terrafuse::http

/// Logs only when `level` passes the threshold, so field values are not built otherwise.
#define TF_LOG(level, event, ...)                                               \
  do {                                                                          \
    if (::terrafuse::http::ShouldLog(level)) {                                  \
      ::terrafuse::http::LogEvent(level, event, {__VA_ARGS__});                 \
    }                                                                           \
  } while (false)
