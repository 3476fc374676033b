// Helpers of workers_test: real `python -m fused._worker` processes and a log sink to inspect.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "terrafuse/workers/worker_pool.h"

namespace terrafuse::workers::testing {

/// The interpreter with `fused` importable: TERRAFUSE_PYTHON, else python3 on PATH.
inline std::string TestPython() {
  const char* python = std::getenv("TERRAFUSE_PYTHON");
  return python && *python ? python : "python3";
}

/// A data home of its own for the workers of this test binary, removed at exit.
inline std::string TestHome() {
  struct Home {
    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("tf_workers_test_" + std::to_string(getpid()));
    Home() { std::filesystem::create_directories(dir); }
    ~Home() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  };
  static const Home home;
  return home.dir.string();
}

/// Collects log lines (thread-safe).
class LogCapture {
 public:
  LogSink Sink() {
    return [this](LogLevel level, std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back((level == LogLevel::kWarn ? "level=warn " : "level=info ") +
                          std::string(line));
    };
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  bool Contains(std::string_view text) {
    for (const auto& line : Lines()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::string Joined() {
    std::string all;
    for (const auto& line : Lines()) all += line + "\n";
    return all;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

inline WorkerPoolOptions TestPoolOptions(int num_workers, LogCapture* log) {
  WorkerPoolOptions options;
  options.python = TestPython();
  options.num_workers = num_workers;
  options.env = {{"TERRAFUSE_HOME", TestHome()}};
  options.log = log->Sink();
  return options;
}

/// A request for `body`, the indented body of `def udf(<signature>):`.
inline WorkerRequest UdfRequest(const std::string& name, const std::string& signature,
                                const std::string& body,
                                std::vector<std::pair<std::string, std::string>> params = {}) {
  WorkerRequest request;
  request.id = "req-" + name;
  request.udf_name = name;
  request.code = "import fused\n\n@fused.udf\ndef udf(" + signature + "):\n" + body;
  request.params = std::move(params);
  return request;
}

inline void ExpectMessage(const Status& status, std::string_view substring) {
  ASSERT_FALSE(status.ok()) << "expected an error containing: " << substring;
  EXPECT_NE(status.message().find(substring), std::string::npos)
      << "message: " << status.message() << "\nexpected to contain: " << substring;
}

/// True when `pid` is neither running nor a zombie of this process.
inline bool Reaped(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace terrafuse::workers::testing
