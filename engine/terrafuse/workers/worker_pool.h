// The pool of warm Python workers that run UDFs for the server (issue 3, item 4).
//
// N workers are started up front and kept at N: a worker that times out, crashes, is
// cancelled or reaches its call budget is replaced in the background by a supervisor
// thread, while the caller gets its answer at once. Run() blocks the calling thread (the
// HTTP layer calls it from its handler pool); a call first waits (bounded, first come first
// served) for a free worker. RunAsync() queues a call without blocking: the pool's own
// driver threads (one per worker) run it and hand the reply to a callback.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/workers/protocol.h"
#include "terrafuse/workers/worker_process.h"

namespace terrafuse::workers {

struct WorkerPoolOptions {
  /// The interpreter (a path, or a name looked up on PATH) and its arguments.
  std::string python = "python3";
  std::vector<std::string> args = {"-m", "fused._worker"};
  int num_workers = 2;
  /// Limit of one call, from sending it to its reply; WorkerRequest::timeout_seconds
  /// overrides it per call.
  double call_timeout_seconds = 120;
  double startup_timeout_seconds = 60;
  /// How long a call waits for a free worker before it is refused (Unavailable).
  double queue_timeout_seconds = 60;
  /// Calls waiting for a worker beyond this are refused at once (Unavailable).
  int max_waiting = 1024;
  /// RLIMIT_AS of each worker (address space, bytes); 0 = no limit.
  int64_t memory_limit_bytes = 0;
  /// A worker is replaced after this many calls; 0 = never.
  int64_t max_calls_per_worker = 0;
  /// Calls of a version whose recent worker time averages under this may ride in a batch
  /// (see Run). Tests on loaded machines raise it: there a trivial call can take 1 ms.
  double batchable_seconds = 0.001;
  int64_t max_payload_bytes = kDefaultMaxPayloadBytes;
  /// Variables added to (or replacing in) the workers' environment.
  std::vector<std::pair<std::string, std::string>> env;
  /// Receives the pool's events ("event=worker_crashed worker=<pid> ...") and the workers'
  /// stdout/stderr lines ("worker=<pid> ..."). Default: LogToStderr.
  LogSink log;
};

struct WorkerPoolStats {
  int64_t workers_started = 0;  // replacements included, the first N too
  int64_t calls = 0;            // replies received (UDF failures included)
  int64_t timeouts = 0;
  int64_t crashes = 0;
  int64_t cancellations = 0;
  int64_t recycled = 0;
  int64_t calls_by_hash = 0;   // sent without their code (the worker had the version)
  int64_t code_resent = 0;     // of those, answered "code_needed" and sent again whole
  int64_t calls_batched = 0;   // sent behind another call in one write (see Run)
  int64_t calls_async = 0;     // queued by RunAsync
  int idle = 0;
  int busy = 0;
  int starting = 0;
  int waiting = 0;
};

/// Attached to WorkerCrashed errors: which worker died, how, and the end of its stderr.
class WorkerCrashDetail : public ErrorDetail {
 public:
  WorkerCrashDetail(int pid, std::string exit_status, std::string stderr_tail)
      : ErrorDetail(ErrorKind::kWorkerCrashed),
        pid_(pid),
        exit_status_(std::move(exit_status)),
        stderr_tail_(std::move(stderr_tail)) {}
  int pid() const { return pid_; }
  /// "exited with status 3", "killed by signal 9 (Killed)".
  const std::string& exit_status() const { return exit_status_; }
  const std::string& stderr_tail() const { return stderr_tail_; }

 private:
  int pid_;
  std::string exit_status_;
  std::string stderr_tail_;
};

class WorkerPool {
 public:
  /// Starts options.num_workers workers (in parallel) and waits until all are ready. Fails
  /// when one cannot start, with its exit status and stderr (e.g. `fused` not importable).
  static Result<std::unique_ptr<WorkerPool>> Start(WorkerPoolOptions options);

  /// Shutdown() with a 10 s grace. No Run() may be in progress or start.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  /// Runs one UDF call on a free worker and returns its reply; a UDF that raised is a reply
  /// with ok == false. Errors:
  /// - InvalidArgument: the request cannot be encoded (not UTF-8, over the frame limit);
  /// - Unavailable: no worker became free in time, too many waiting, or shutting down;
  /// - Timeout: the call passed its limit: the worker was killed and is being replaced;
  /// - WorkerCrashed (with a WorkerCrashDetail): the worker died during the call or sent a
  ///   malformed reply; it is being replaced;
  /// - Cancelled (arrow code, Timeout kind): `*cancel` became true; a running call's worker
  ///   was killed and is being replaced, unless the call answered within 200 ms of the
  ///   cancel: its reply is then returned and the worker kept.
  ///
  /// Batching: when calls wait for a worker, the call that gets one takes up to
  /// kMaxBatchCalls - 1 waiting calls along, sent in one write and answered in one write.
  /// Only short calls ride (versions the worker has, whose recent worker time averages
  /// under options.batchable_seconds, 1 ms), so a call waits behind others for at most a few ms; a call
  /// that rides is not cancelled by its caller (it is that short). When a batch breaks
  /// (a crash, no reply within kBatchWaitSeconds), its calls without a reply are run again,
  /// each alone: errors are charged only to the call that causes them alone.
  Result<WorkerReply> Run(const WorkerRequest& request, const CancelFlag* cancel = nullptr);

  using Done = std::function<void(Result<WorkerReply>)>;
  /// Runs a call like Run() without holding the calling thread: the call waits in the
  /// pool's queue (it may ride in a batch there), and `done` gets what Run() would return,
  /// exactly once, on one of the pool's driver threads (or on the calling thread, before
  /// RunAsync returns, when the call is refused at once). `done` must not block: it runs
  /// between two batches of a worker. Nested calls must use Run(): a driver is not theirs
  /// to wait for. `cancel` may be null.
  void RunAsync(std::shared_ptr<const WorkerRequest> request, std::shared_ptr<const CancelFlag> cancel,
                Done done);

  static constexpr int kMaxBatchCalls = 8;
  static constexpr double kBatchWaitSeconds = 5;

  /// Refuses new calls, lets calls in progress finish for up to `grace_seconds` (then kills
  /// their workers), asks idle workers to exit and reaps every worker (SIGKILL for those
  /// still running at the deadline). Idempotent.
  void Shutdown(double grace_seconds = 10);

  /// Raises the number of workers to `num_workers` (never lowers it): the supervisor starts
  /// the missing ones in the background while the others keep serving.
  void Grow(int num_workers);
  /// The number of workers the pool keeps (options.num_workers, or more after Grow).
  int size() const;

  WorkerPoolStats stats() const;
  /// The pids of the workers counted in the pool (idle and busy).
  std::vector<pid_t> WorkerPids() const;

 private:
  // A call waiting for a worker: handed one (`worker`), or taken into another call's batch.
  struct Waiter {
    std::condition_variable cv;
    std::shared_ptr<WorkerProcess> worker;
    // Set when the call may ride in a batch: the call, and its header without the code.
    const WorkerRequest* request = nullptr;
    std::string_view lean_header;
    Clock::time_point queued;
    bool riding = false;  // taken into a batch: waits for `done`, whatever else happens
    bool done = false;
    bool retry = false;   // the batch broke before this call's reply: wait for a worker again
    Result<WorkerReply> reply;
    // RunAsync's calls own what they point to, and nobody waits on `cv`: `on_done` gets the
    // reply instead (called with no lock held).
    std::shared_ptr<const WorkerRequest> owned_request;
    std::shared_ptr<const CancelFlag> cancel;
    std::string owned_lean_header;
    Done on_done;
  };

  explicit WorkerPool(WorkerPoolOptions options);
  // Run() of one call queued at `queued`; `alone`: neither rides nor takes riders (a batch
  // broke on it); `known_lean_header`: its header without the code, when already built.
  Result<WorkerReply> RunCall(const WorkerRequest& request, const CancelFlag* cancel, bool alone,
                              Clock::time_point queued, std::string_view known_lean_header = {});
  // A driver thread: runs RunAsync's calls one after the other.
  void Drive();
  // Answers the queued RunAsync calls once the pool shuts down (the drivers have stopped
  // taking them); call with no lock held after anything that may queue one.
  void FailAsyncIfShuttingDown();
  // Deletes a RunAsync call and hands `reply` to its on_done; no lock held.
  static void CompleteAsync(Waiter* call, Result<WorkerReply> reply);
  // A worker for the call of `waiter`, or null when a batch answered the call meanwhile
  // (`waiter->done`).
  Result<std::shared_ptr<WorkerProcess>> Acquire(const CancelFlag* cancel, bool nested,
                                                 Waiter* waiter);
  // Takes waiting calls that may ride behind a call of `hash` on `worker`.
  std::vector<Waiter*> TakeRiders(const WorkerProcess& worker, const std::string& hash);
  // Receives the riders' replies and hands each to its caller. Returns false when the worker
  // broke (that call gets the error, the ones behind it retry; the worker is retired).
  bool FinishRiders(const std::shared_ptr<WorkerProcess>& worker, const std::vector<Waiter*>& riders,
                    Clock::time_point sent, bool* recycle);
  // Sends the riders from `from` on back to wait for a worker, each to run alone; needs
  // mutex_.
  void RetryLocked(const std::vector<Waiter*>& riders, size_t from);
  // Notes a version's worker time (the moving average that decides batching); needs mutex_.
  void NoteSecondsLocked(const std::string& hash, double seconds);
  double LimitOf(const WorkerRequest& request) const;
  // Starts a temporary worker for a nested call when none is free; null when the pool is at
  // its limit of extra workers or the start failed (the call then waits as usual).
  std::shared_ptr<WorkerProcess> StartExtraLocked(std::unique_lock<std::mutex>& lock);
  // Gives a ready worker to the first waiting call, else makes it idle. Needs mutex_.
  void HandOutLocked(std::shared_ptr<WorkerProcess> worker);
  // Gives back a worker taken for a call that was never sent (its frame could not be built).
  void ReturnUnused(std::shared_ptr<WorkerProcess> worker);
  // Removes a worker from the pool and queues it for reaping and replacement. Needs mutex_.
  void RetireLocked(std::shared_ptr<WorkerProcess> worker);
  Status CallFailed(std::shared_ptr<WorkerProcess> worker, const WorkerRequest& request,
                    const Status& status, double limit_seconds);
  void Supervise();
  void Log(LogLevel level, const std::string& line) const;

  const WorkerPoolOptions options_;
  WorkerProcessOptions process_options_;

  mutable std::mutex mutex_;
  int num_workers_;  // the size the supervisor keeps
  std::unordered_map<pid_t, bool> extra_;  // temporary workers of nested calls (also in live_)
  std::condition_variable supervisor_wake_;
  std::condition_variable calls_done_;  // signalled when busy_ drops during shutdown
  std::deque<Waiter*> waiters_;
  // RunAsync's calls not yet taken by a driver (or into a batch); owned here, deleted once
  // their on_done has run.
  std::deque<Waiter*> async_calls_;
  std::condition_variable drivers_wake_;
  std::vector<std::thread> drivers_;
  std::vector<std::shared_ptr<WorkerProcess>> idle_;
  std::unordered_map<pid_t, std::shared_ptr<WorkerProcess>> live_;  // idle and busy
  std::vector<std::shared_ptr<WorkerProcess>> retiring_;            // to reap, then replace
  std::unordered_map<std::string, double> recent_seconds_;  // per UDF version, moving average
  int busy_ = 0;
  int starting_ = 0;
  bool shutting_down_ = false;
  bool shut_down_ = false;
  std::atomic<bool> stopping_{false};  // cancels worker start-ups in progress
  std::string last_start_error_;
  Clock::time_point next_start_{};
  double start_backoff_seconds_ = 0;
  WorkerPoolStats stats_;
  std::thread supervisor_;
};

}  // namespace terrafuse::workers
