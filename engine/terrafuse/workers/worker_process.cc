#include "terrafuse/workers/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

extern char** environ;

namespace terrafuse::workers {

namespace {

// Descriptors are moved at or above this number before fork, so the child's dup2 onto
// 0..4 never overwrites a descriptor it still has to duplicate.
constexpr int kHighFd = 10;
constexpr int kExecErrorFd = 4;
// Poll slice while a cancel flag is watched: the cancellation latency.
constexpr int kCancelPollMs = 50;
// A cancelled call that answers within this long keeps its worker: a restart costs a second
// or more of CPU, far more than letting a short call finish (map clients cancel constantly).
constexpr auto kCancelGrace = std::chrono::milliseconds(200);
// How long a worker that closed its connection gets to finish exiting before it is killed.
constexpr auto kExitGrace = std::chrono::seconds(2);

Status ErrnoStatus(std::string_view what) { return IOError(what, ": ", std::strerror(errno)); }

int RemainingMs(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::microseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return static_cast<int>(std::min<int64_t>((left + 999) / 1000, 1 << 30));
}

Result<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return InvalidArgument("The worker's Python interpreter is not set");
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0) {
      return ErrnoError(errno, "Cannot run the worker interpreter", name);
    }
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return NotFound("The worker interpreter '", name,
                  "' was not found on PATH: install Python 3 or set the interpreter's full path "
                  "(TERRAFUSE_PYTHON)");
}

// Moves `fd` to a close-on-exec descriptor >= kHighFd, closing the original.
Result<int> MoveHigh(int fd) {
  int high = fcntl(fd, F_DUPFD_CLOEXEC, kHighFd);
  int saved = errno;
  close(fd);
  if (high < 0) {
    errno = saved;
    return ErrnoStatus("Cannot start a worker: fcntl(F_DUPFD_CLOEXEC)");
  }
  return high;
}

Status SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return ErrnoStatus("Cannot start a worker: fcntl(O_NONBLOCK)");
  }
  return Status::OK();
}

struct ChildSetup {
  const char* executable;
  char* const* argv;
  char* const* envp;
  int devnull_fd;
  int output_fd;  // write end of the stdout/stderr pipe
  int socket_fd;
  int exec_error_fd;
  int64_t memory_limit_bytes;
  int max_fd;
};

// Runs in the forked child: only async-signal-safe calls until execve.
[[noreturn]] void ExecChild(const ChildSetup& s) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD}) {
    sigaction(sig, &default_action, nullptr);
  }
  setpgid(0, 0);
  bool ok = dup2(s.devnull_fd, 0) == 0 && dup2(s.output_fd, 1) == 1 && dup2(s.output_fd, 2) == 2 &&
            dup2(s.socket_fd, kWorkerSocketFd) == kWorkerSocketFd &&
            dup2(s.exec_error_fd, kExecErrorFd) == kExecErrorFd &&
            fcntl(kExecErrorFd, F_SETFD, FD_CLOEXEC) == 0;
  if (ok && s.memory_limit_bytes > 0) {
    struct rlimit limit {};
    limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(s.memory_limit_bytes);
    ok = setrlimit(RLIMIT_AS, &limit) == 0;
  }
  if (ok) {
    if (syscall(SYS_close_range, kExecErrorFd + 1, ~0U, 0) != 0) {
      for (int fd = kExecErrorFd + 1; fd < s.max_fd; ++fd) close(fd);
    }
    execve(s.executable, s.argv, s.envp);
  }
  int error = errno;
  ssize_t ignored = write(ok ? kExecErrorFd : s.exec_error_fd, &error, sizeof(error));
  (void)ignored;
  _exit(127);
}

std::vector<std::string> ChildEnvironment(const WorkerProcessOptions& options) {
  std::vector<std::pair<std::string, std::string>> overrides = {
      {"TERRAFUSE_WORKER_FD", std::to_string(kWorkerSocketFd)},
      {"TERRAFUSE_WORKER_MAX_PAYLOAD", std::to_string(options.max_payload_bytes)},
  };
  overrides.insert(overrides.end(), options.env.begin(), options.env.end());
  std::vector<std::string> env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    std::string_view key = text.substr(0, text.find('='));
    bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                [&](const auto& kv) { return kv.first == key; });
    if (!replaced) env.emplace_back(text);
  }
  for (const auto& [key, value] : overrides) env.push_back(key + "=" + value);
  return env;
}

void CloseIfOpen(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

void LogToStderr(LogLevel level, std::string_view line) {
  std::string text = level == LogLevel::kWarn ? "level=warn " : "level=info ";
  text.append(line);
  text.push_back('\n');
  const char* data = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = write(STDERR_FILENO, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    left -= static_cast<size_t>(n);
  }
}

// -- starting ----------------------------------------------------------------------------

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::Launch(const WorkerProcessOptions& options) {
  ARROW_ASSIGN_OR_RAISE(std::string executable, FindExecutable(options.python));
  std::vector<std::string> arg_strings = {options.python};
  arg_strings.insert(arg_strings.end(), options.args.begin(), options.args.end());
  std::vector<std::string> env_strings = ChildEnvironment(options);
  std::vector<char*> argv;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  int fds[6] = {-1, -1, -1, -1, -1, -1};  // socket parent/child, output r/w, exec error r/w
  int devnull = -1;
  auto close_all = [&] {
    for (int& fd : fds) CloseIfOpen(&fd);
    CloseIfOpen(&devnull);
  };
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0 ||
      pipe2(fds + 2, O_CLOEXEC) != 0 || pipe2(fds + 4, O_CLOEXEC) != 0 ||
      (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    Status status = ErrnoStatus("Cannot start a worker: creating its socket and pipes");
    close_all();
    return status;
  }
  for (int* fd : {&fds[1], &fds[3], &fds[5], &devnull}) {
    auto high = MoveHigh(*fd);
    if (!high.ok()) {
      *fd = -1;
      close_all();
      return high.status();
    }
    *fd = *high;
  }
  ChildSetup setup{executable.c_str(),
                   argv.data(),
                   envp.data(),
                   devnull,
                   fds[3],
                   fds[1],
                   fds[5],
                   options.memory_limit_bytes,
                   static_cast<int>(sysconf(_SC_OPEN_MAX))};
  pid_t pid = fork();
  if (pid < 0) {
    Status status = ErrnoStatus("Cannot start a worker: fork");
    close_all();
    return status;
  }
  if (pid == 0) ExecChild(setup);
  setpgid(pid, pid);  // also done by the child; whichever runs first wins the race
  CloseIfOpen(&fds[1]);
  CloseIfOpen(&fds[3]);
  CloseIfOpen(&fds[5]);
  CloseIfOpen(&devnull);
  int exec_error = 0;
  ssize_t n;
  do {
    n = read(fds[4], &exec_error, sizeof(exec_error));
  } while (n < 0 && errno == EINTR);
  CloseIfOpen(&fds[4]);
  if (n == static_cast<ssize_t>(sizeof(exec_error))) {
    int status = 0;
    waitpid(pid, &status, 0);
    close_all();
    return IOError("Cannot start a worker: executing '", executable,
                   "' failed: ", std::strerror(exec_error));
  }
  int pid_fd = static_cast<int>(syscall(
      SYS_pidfd_open, pid, 0));  // -1 on kernels without pidfd: exits are then found by polling
  if (pid_fd >= 0) fcntl(pid_fd, F_SETFD, FD_CLOEXEC);
  std::unique_ptr<WorkerProcess> worker(new WorkerProcess(pid, fds[0], fds[2], pid_fd, options));
  ARROW_RETURN_NOT_OK(SetNonBlocking(worker->socket_fd_));
  ARROW_RETURN_NOT_OK(SetNonBlocking(worker->stderr_fd_));
  return worker;
}

Result<std::unique_ptr<WorkerProcess>> WorkerProcess::Start(const WorkerProcessOptions& options) {
  ARROW_ASSIGN_OR_RAISE(auto worker, Launch(options));
  auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.startup_timeout_seconds));
  ARROW_RETURN_NOT_OK(worker->WaitReady(deadline));
  return worker;
}

WorkerProcess::WorkerProcess(pid_t pid, int socket_fd, int stderr_fd, int pid_fd,
                             const WorkerProcessOptions& options)
    : pid_(pid),
      socket_fd_(socket_fd),
      stderr_fd_(stderr_fd),
      pid_fd_(pid_fd),
      log_(options.log ? options.log : LogSink(LogToStderr)),
      log_prefix_("worker=" + std::to_string(pid) + " "),
      decoder_(options.max_payload_bytes) {}

WorkerProcess::~WorkerProcess() {
  Kill();
  Reap(Clock::now());
  CloseIfOpen(&socket_fd_);
  CloseIfOpen(&stderr_fd_);
  CloseIfOpen(&pid_fd_);
}

Status WorkerProcess::WaitReady(Clock::time_point deadline, const CancelFlag* cancel) {
  auto start = Clock::now();
  auto frame = Receive(deadline, cancel);
  Status status = frame.ok() ? DecodeReady(*frame).status() : frame.status();
  if (status.ok()) return status;
  Kill();
  std::string how = Reap(Clock::now() + kExitGrace);
  if (status.IsCancelled()) return status;
  std::string reason = status.message();
  const std::string self = "Worker " + std::to_string(pid_) + " ";
  if (reason.rfind(self, 0) == 0) reason.erase(0, self.size());
  if (KindOf(status) == ErrorKind::kTimeout) {
    double waited = std::chrono::duration<double>(Clock::now() - start).count();
    reason = "no 'ready' frame within " + std::to_string(static_cast<int>(waited + 0.5)) + " s";
  }
  std::string tail = StderrTail();
  return MakeError(
      KindOf(status) == ErrorKind::kTimeout ? ErrorKind::kTimeout : ErrorKind::kWorkerCrashed,
      "Worker " + std::to_string(pid_) + " did not start: " + reason + " (" + how + ")" +
          (tail.empty() ? std::string(": it wrote nothing to stderr")
                        : "; its stderr ends with:\n" + tail));
}

// -- calls -------------------------------------------------------------------------------

Result<Frame> WorkerProcess::Call(std::string_view frame, Clock::time_point deadline,
                                  const CancelFlag* cancel) {
  ARROW_RETURN_NOT_OK(Send(frame, deadline, cancel));
  return Receive(deadline, cancel);
}

Status WorkerProcess::Send(std::string_view bytes, Clock::time_point deadline,
                           const CancelFlag* cancel) {
  while (!bytes.empty()) {
    ssize_t n = send(socket_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return Crashed(std::string("closed its connection (") + std::strerror(errno) + ")");
    }
    if (cancel && cancel->load()) return Status::Cancelled("The call was cancelled");
    int timeout = RemainingMs(deadline);
    if (timeout == 0) return Timeout("Worker ", pid_, " did not read its request in time");
    if (cancel) timeout = std::min(timeout, kCancelPollMs);
    pollfd fd{socket_fd_, POLLOUT, 0};
    poll(&fd, 1, timeout);
  }
  return Status::OK();
}

Result<Frame> WorkerProcess::Receive(Clock::time_point deadline, const CancelFlag* cancel) {
  bool exited = false;
  std::optional<Clock::time_point> cancelled_at;
  while (true) {
    if (decoder_.HasFrame()) {  // a batch's replies may arrive in one read
      // What the worker wrote to stderr before replying is in the pipe now: forward it
      // while it is fresh (one read when there is nothing), once per read of the socket,
      // not per frame: a batch's replies come in one read.
      if (!stderr_checked_ && !stderr_eof_.load()) DrainStderr(false);
      stderr_checked_ = true;
      Result<Frame> frame = decoder_.Take();
      if (!frame.ok()) {
        Kill();  // its stream cannot be trusted any more
        return Crashed("sent a malformed frame: " + frame.status().message());
      }
      return frame;
    }
    std::span<uint8_t> target = decoder_.ReadTarget();
    ssize_t n = recv(socket_fd_, target.data(), target.size(), 0);
    if (n > 0) {
      stderr_checked_ = false;
      Status status = decoder_.Consume(static_cast<size_t>(n));
      if (!status.ok()) {
        Kill();  // its stream cannot be trusted any more
        return Crashed("sent a malformed frame: " + status.message());
      }
      continue;
    }
    if (n == 0) {
      return Crashed(decoder_.partial_bytes() > 0 ? "closed its connection in the middle of a frame"
                                                  : "closed its connection");
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Crashed(std::string("broke its connection (") + std::strerror(errno) + ")");
    }
    if (exited) return Crashed("exited");  // its socket is held open by a process it started
    if (cancel && cancel->load()) {
      if (!cancelled_at) cancelled_at = Clock::now();
      if (Clock::now() - *cancelled_at >= kCancelGrace) return Status::Cancelled("The call was cancelled");
    }
    int timeout = RemainingMs(deadline);
    if (timeout == 0) return Timeout("Worker ", pid_, " did not answer in time");
    if (cancel) timeout = std::min(timeout, kCancelPollMs);
    pollfd fds[3] = {{socket_fd_, POLLIN, 0},
                     {stderr_eof_.load() ? -1 : stderr_fd_, POLLIN, 0},
                     {pid_fd_, POLLIN, 0}};
    int ready = poll(fds, 3, timeout);
    if (ready <= 0) continue;
    if (fds[1].revents) DrainStderr(false);
    if (fds[2].revents) exited = true;
  }
}

void WorkerProcess::NoteCodeSent(const std::string& hash) {
  // The worker keeps the code of its 64 latest UDF versions; past that it may have dropped
  // some, and it says so ("code_needed"): forgetting all here just resends them sooner.
  if (code_sent_.size() >= 64) code_sent_.clear();
  code_sent_.insert(hash);
}

bool WorkerProcess::CheckIdle() {
  if (decoder_.HasFrame() || decoder_.partial_bytes() > 0) return false;  // spoke out of turn
  pollfd fds[3] = {{socket_fd_, POLLIN, 0},
                   {stderr_eof_.load() ? -1 : stderr_fd_, POLLIN, 0},
                   {pid_fd_, POLLIN, 0}};
  if (poll(fds, 3, 0) <= 0) return true;
  if (fds[1].revents) DrainStderr(false);
  return fds[0].revents == 0 && fds[2].revents == 0;
}

void WorkerProcess::RequestExit() {
  std::string frame;
  AppendFrame(ExitHeader(), {}, &frame);
  ssize_t ignored = send(socket_fd_, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)ignored;
}

Status WorkerProcess::Crashed(std::string_view what) {
  return MakeError(ErrorKind::kWorkerCrashed,
                   "Worker " + std::to_string(pid_) + " " + std::string(what));
}

// -- ending ------------------------------------------------------------------------------

void WorkerProcess::Kill() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (reaped_) return;
  killpg(pid_, SIGKILL);
  kill(pid_, SIGKILL);
}

bool WorkerProcess::TryReap() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reaped_) return true;
    siginfo_t info{};
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
      if (errno != ECHILD) return false;
      reaped_ = true;  // reaped by someone else (a waitpid(-1) elsewhere in the process)
      exit_description_ = "exit status unknown";
    } else {
      if (info.si_pid == 0) return false;  // still running
      killpg(pid_, SIGKILL);               // what the UDF left running in its process group
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      exit_description_ = DescribeStatus(status);
    }
  }
  DrainStderr(true);
  return true;
}

std::string WorkerProcess::Reap(Clock::time_point deadline) {
  bool killed = false;
  while (!TryReap()) {
    if (!killed && Clock::now() >= deadline) {
      Kill();
      killed = true;
    }
    int timeout = killed ? 100 : std::max(1, RemainingMs(deadline));
    if (pid_fd_ >= 0) {
      pollfd fd{pid_fd_, POLLIN, 0};
      poll(&fd, 1, timeout);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(timeout, 5)));
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return exit_description_;
}

std::string WorkerProcess::DescribeStatus(int status) const {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = strsignal(sig);
    return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")" +
           (WCOREDUMP(status) ? ", core dumped" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

// -- stderr ------------------------------------------------------------------------------

void WorkerProcess::DrainStderr(bool final) {
  std::lock_guard<std::mutex> lock(mutex_);
  char buffer[16 << 10];
  while (!stderr_eof_.load()) {
    ssize_t n = read(stderr_fd_, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;  // EAGAIN: nothing more for now
    if (n == 0) {
      stderr_eof_ = true;  // the fd stays open until destruction: another thread may poll it
      break;
    }
    std::string_view chunk(buffer, static_cast<size_t>(n));
    tail_.append(chunk);
    if (tail_.size() > 2 * kStderrTailBytes) tail_.erase(0, tail_.size() - kStderrTailBytes);
    while (!chunk.empty()) {
      size_t newline = chunk.find('\n');
      if (newline == std::string_view::npos) {
        partial_line_.append(chunk);
        if (partial_line_.size() >= kStderrTailBytes) {
          ForwardLine(partial_line_);
          partial_line_.clear();
        }
        break;
      }
      if (partial_line_.empty()) {
        ForwardLine(chunk.substr(0, newline));
      } else {
        partial_line_.append(chunk.substr(0, newline));
        ForwardLine(partial_line_);
        partial_line_.clear();
      }
      chunk.remove_prefix(newline + 1);
    }
  }
  if (final && !partial_line_.empty()) {
    ForwardLine(partial_line_);
    partial_line_.clear();
  }
}

void WorkerProcess::ForwardLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string text;
  text.reserve(log_prefix_.size() + line.size());
  text.append(log_prefix_).append(line);
  log_(LogLevel::kInfo, text);
}

std::string WorkerProcess::StderrTail() {
  DrainStderr(false);
  std::lock_guard<std::mutex> lock(mutex_);
  if (tail_.size() <= kStderrTailBytes) return tail_;
  std::string_view tail(tail_);
  tail.remove_prefix(tail.size() - kStderrTailBytes);
  size_t newline = tail.find('\n');  // start at a whole line when one begins in the tail
  if (newline != std::string_view::npos && newline + 1 < tail.size())
    tail.remove_prefix(newline + 1);
  return std::string(tail);
}

}  // namespace terrafuse::workers
