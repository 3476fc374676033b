// One `python -m fused._worker` child process: started with a connected socket as
// TERRAFUSE_WORKER_FD, its stdout and stderr in a pipe the parent drains (into a bounded
// tail kept for crash reports, and line by line into the server log), in its own process
// group so a kill also stops what the UDF started.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/workers/protocol.h"

namespace terrafuse::workers {

using Clock = std::chrono::steady_clock;

/// Set (to true) by another thread when the caller gives up, e.g. its client went away.
using CancelFlag = std::atomic<bool>;

/// How much a pool event matters: crashes, timeouts and failed starts are warnings.
enum class LogLevel { kInfo, kWarn };

/// Receives one logfmt line (no trailing newline): pool events ("event=worker_crashed
/// worker=1234 ...") and the workers' output ("worker=1234 <text>"). Must be thread-safe.
using LogSink = std::function<void(LogLevel level, std::string_view line)>;

/// Writes "level=info|warn <line>\n" to stderr in one write (lines do not interleave).
void LogToStderr(LogLevel level, std::string_view line);

struct WorkerProcessOptions {
  /// The interpreter: a path, or a name looked up on PATH.
  std::string python = "python3";
  std::vector<std::string> args = {"-m", "fused._worker"};
  /// Variables added to (or replacing in) the server's environment.
  std::vector<std::pair<std::string, std::string>> env;
  /// RLIMIT_AS of the child, set before exec; 0 = no limit.
  int64_t memory_limit_bytes = 0;
  double startup_timeout_seconds = 60;
  int64_t max_payload_bytes = kDefaultMaxPayloadBytes;
  /// Receives each line the worker writes to stdout/stderr, prefixed "worker=<pid> ".
  /// Default: LogToStderr.
  LogSink log;
};

/// The file descriptor number the socket has in the child.
inline constexpr int kWorkerSocketFd = 3;
/// Bytes of the worker's stderr kept for crash reports.
inline constexpr size_t kStderrTailBytes = 8 << 10;

class WorkerProcess {
 public:
  /// Starts the child and returns without waiting for it; call WaitReady next. Fails when
  /// the interpreter cannot be found or executed.
  static Result<std::unique_ptr<WorkerProcess>> Launch(const WorkerProcessOptions& options);

  /// Launch + WaitReady within options.startup_timeout_seconds.
  static Result<std::unique_ptr<WorkerProcess>> Start(const WorkerProcessOptions& options);

  /// Kills (SIGKILL) and reaps the child when it is still running.
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  /// Waits for the `ready` frame. On failure (timeout, exit, bad frame) the error carries the
  /// exit status and the stderr tail; the child is then killed.
  Status WaitReady(Clock::time_point deadline, const CancelFlag* cancel = nullptr);

  /// Sends an encoded frame and waits for the one reply frame. Errors: Timeout kind past
  /// `deadline`; arrow Cancelled when `*cancel` becomes true; WorkerCrashed kind when the
  /// connection ends or the reply is malformed. After an error the worker is not usable.
  Result<Frame> Call(std::string_view frame, Clock::time_point deadline,
                     const CancelFlag* cancel = nullptr);

  /// Call in two steps, for a batch: Send writes any number of encoded frames, then Receive
  /// returns one reply frame per call, in the order sent. Errors as for Call.
  Status Send(std::string_view bytes, Clock::time_point deadline, const CancelFlag* cancel);
  Result<Frame> Receive(Clock::time_point deadline, const CancelFlag* cancel);

  /// True when an idle worker is still alive and has nothing unexpected to say; forwards
  /// whatever it wrote to stderr meanwhile.
  bool CheckIdle();

  /// Asks the worker to exit (best effort, does not wait).
  void RequestExit();

  /// Sends SIGKILL to the worker's process group (the worker and what it started).
  void Kill();

  /// Waits until the worker exits, at most until `deadline`, then kills it; reaps it and
  /// returns how it ended ("exited with status 3", "killed by signal 9 (Killed)"). Idempotent.
  std::string Reap(Clock::time_point deadline);

  /// Reaps the worker when it has exited, without waiting. Returns true once reaped.
  bool TryReap();

  /// The last kStderrTailBytes of what the worker wrote to stdout/stderr.
  std::string StderrTail();

  pid_t pid() const { return pid_; }
  int64_t calls() const { return calls_; }
  void CountCall() { ++calls_; }

  /// Whether this worker was sent the code of UDF version `hash` (then calls may omit it).
  /// Only the thread holding the worker for a call uses these.
  bool HasCode(const std::string& hash) const { return code_sent_.count(hash) > 0; }
  void NoteCodeSent(const std::string& hash);
  void ForgetCode(const std::string& hash) { code_sent_.erase(hash); }

 private:
  WorkerProcess(pid_t pid, int socket_fd, int stderr_fd, int pid_fd,
                const WorkerProcessOptions& options);
  // Reads what is available on the stderr pipe; `final` also flushes a partial last line.
  void DrainStderr(bool final);
  void ForwardLine(std::string_view line);
  std::string DescribeStatus(int status) const;
  // The error for a connection that ended or broke, naming the exit status and stderr tail.
  Status Crashed(std::string_view what);

  const pid_t pid_;
  int socket_fd_;
  int stderr_fd_;
  int pid_fd_;  // becomes readable when the child exits; -1 when the kernel lacks pidfd
  std::atomic<bool> stderr_eof_{false};
  LogSink log_;
  std::string log_prefix_;
  FrameDecoder decoder_;
  bool stderr_checked_ = false;  // stderr was drained since the socket's last read
  int64_t calls_ = 0;
  std::unordered_set<std::string> code_sent_;

  std::mutex mutex_;  // guards the fields below (Kill/Reap may come from another thread)
  bool reaped_ = false;
  std::string exit_description_;
  std::string tail_;
  std::string partial_line_;
};

}  // namespace terrafuse::workers
