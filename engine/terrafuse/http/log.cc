#include "terrafuse/http/log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <ctime>
#include <mutex>

namespace terrafuse::http {

namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

void AppendValue(std::string* out, std::string_view value) {
  bool plain = !value.empty();
  for (char c : value) {
    plain = plain && c > ' ' && c != '"' && c != '=' && c != '\\' && c != 0x7f;
  }
  if (plain) {
    out->append(value);
    return;
  }
  out->push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (static_cast<unsigned char>(c) < ' ') {
      out->push_back('?');  // other control characters would break the one-line format
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string Timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm;
  ::gmtime_r(&seconds, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buffer;
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  std::string lower;
  for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "debug") return LogLevel::kDebug;
  if (lower == "info") return LogLevel::kInfo;
  if (lower == "warn" || lower == "warning") return LogLevel::kWarn;
  if (lower == "error") return LogLevel::kError;
  return InvalidArgument("Invalid log level '", name, "': use debug, info, warn or error");
}

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }

bool ShouldLog(LogLevel level) { return level >= g_level.load(std::memory_order_relaxed); }

void LogEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  std::string line = "ts=" + Timestamp() + " level=" + LevelName(level) + " event=";
  AppendValue(&line, event);
  for (const auto& [key, value] : fields) {
    line.push_back(' ');
    line.append(key);
    line.push_back('=');
    AppendValue(&line, value);
  }
  line.push_back('\n');
  // One write(2) per line under a lock: lines from concurrent threads never interleave.
  static std::mutex mutex;
  std::lock_guard<std::mutex> guard(mutex);
  const char* data = line.data();
  size_t size = line.size();
  while (size > 0) {
    ssize_t n = ::write(STDERR_FILENO, data, size);
    if (n <= 0) break;  // nowhere left to report a failing stderr
    data += n;
    size -= static_cast<size_t>(n);
  }
}

std::string RedactTokens(std::string_view path) {
  std::string out;
  out.reserve(path.size());
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    constexpr size_t kKept = 8;  // "fsh_" + 4 characters
    if ((segment.starts_with("fsh_") || segment.starts_with("tfk_")) && segment.size() > kKept) {
      out.append(segment.substr(0, kKept)).append("...");
    } else {
      out.append(segment);
    }
    if (end == path.size()) break;
    out.push_back('/');
    start = end + 1;
  }
  return out;
}

}  // namespace terrafuse::http
