#include "terrafuse/workers/worker_pool.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace terrafuse::workers {

namespace {

// A worker asked to exit (recycled, shut down) gets this long before SIGKILL.
constexpr auto kExitGrace = std::chrono::seconds(2);
constexpr auto kCancelPoll = std::chrono::milliseconds(50);
constexpr double kMaxStartBackoffSeconds = 30;
// Temporary workers for nested calls, at most this many at once (beyond the pool's size).
constexpr int kMaxExtraWorkers = 16;

Clock::duration Seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string FormatSeconds(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

// Quotes a value for a key=value log line when it has spaces or quotes.
std::string LogValue(std::string_view value) {
  if (!value.empty() && value.find_first_of(" \"=\n") == std::string_view::npos) {
    return std::string(value);
  }
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c == '\n' ? ' ' : c);
  }
  return quoted + "\"";
}

Status CancelledStatus(std::string message) {
  // Cancelled is the arrow code; the kind (what HTTP and Python see) is Timeout.
  return Status(arrow::StatusCode::Cancelled, std::move(message),
                std::make_shared<ErrorDetail>(ErrorKind::kTimeout));
}

Status CheckOptions(const WorkerPoolOptions& o) {
  if (o.num_workers < 1) {
    return InvalidArgument("Invalid number of workers ", o.num_workers, ": use at least 1");
  }
  for (auto [name, value] : {std::pair{"call timeout", o.call_timeout_seconds},
                             std::pair{"startup timeout", o.startup_timeout_seconds},
                             std::pair{"queue timeout", o.queue_timeout_seconds}}) {
    if (!(value > 0) || !std::isfinite(value)) {
      return InvalidArgument("Invalid worker ", name, " ", value, " s: use a positive number");
    }
  }
  if (o.memory_limit_bytes < 0 || o.max_calls_per_worker < 0 || o.max_waiting < 0 ||
      o.max_payload_bytes <= 0) {
    return InvalidArgument(
        "Invalid worker pool limits: memory_limit_bytes, max_calls_per_worker and max_waiting "
        "must be >= 0 and max_payload_bytes > 0");
  }
  return Status::OK();
}

}  // namespace

WorkerPool::WorkerPool(WorkerPoolOptions options)
    : options_(std::move(options)), num_workers_(options_.num_workers) {
  process_options_.python = options_.python;
  process_options_.args = options_.args;
  process_options_.env = options_.env;
  process_options_.memory_limit_bytes = options_.memory_limit_bytes;
  process_options_.startup_timeout_seconds = options_.startup_timeout_seconds;
  process_options_.max_payload_bytes = options_.max_payload_bytes;
  process_options_.log = options_.log ? options_.log : LogSink(LogToStderr);
}

Result<std::unique_ptr<WorkerPool>> WorkerPool::Start(WorkerPoolOptions options) {
  ARROW_RETURN_NOT_OK(CheckOptions(options));
  std::unique_ptr<WorkerPool> pool(new WorkerPool(std::move(options)));
  auto start = Clock::now();
  std::vector<std::unique_ptr<WorkerProcess>> launched;
  for (int i = 0; i < pool->options_.num_workers; ++i) {
    ARROW_ASSIGN_OR_RAISE(auto worker, WorkerProcess::Launch(pool->process_options_));
    launched.push_back(std::move(worker));
  }
  auto deadline = start + Seconds(pool->options_.startup_timeout_seconds);
  std::string pids;
  for (auto& worker : launched) {
    ARROW_RETURN_NOT_OK(worker->WaitReady(deadline));
    if (!pids.empty()) pids += ',';
    pids += std::to_string(worker->pid());
  }
  {
    std::lock_guard<std::mutex> lock(pool->mutex_);
    for (auto& worker : launched) {
      std::shared_ptr<WorkerProcess> shared = std::move(worker);
      pool->live_[shared->pid()] = shared;
      pool->idle_.push_back(std::move(shared));
    }
    pool->stats_.workers_started = pool->options_.num_workers;
  }
  pool->supervisor_ = std::thread(&WorkerPool::Supervise, pool.get());
  pool->Log(LogLevel::kInfo,
            "event=pool_started workers=" + std::to_string(pool->options_.num_workers) + " pids=" +
                pids + " ms=" + std::to_string(static_cast<int>(SecondsSince(start) * 1000)));
  return pool;
}

WorkerPool::~WorkerPool() { Shutdown(); }

void WorkerPool::Grow(int num_workers) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (num_workers <= num_workers_ || shutting_down_) return;
  num_workers_ = num_workers;
  next_start_ = {};  // a new size is worth trying at once, even after failed starts
  supervisor_wake_.notify_one();
}

int WorkerPool::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return num_workers_;
}

// -- calls -------------------------------------------------------------------------------

Result<WorkerReply> WorkerPool::Run(const WorkerRequest& request, const CancelFlag* cancel) {
  return RunCall(request, cancel, /*alone=*/false, Clock::now());
}

void WorkerPool::RunAsync(std::shared_ptr<const WorkerRequest> request, std::shared_ptr<const CancelFlag> cancel,
                          Done done) {
  auto call = std::make_unique<Waiter>();
  call->queued = Clock::now();
  if (!request->udf_hash.empty() && request->payload.empty() && !request->nested) {
    Result<std::string> header = EncodeRunHeader(*request, /*with_code=*/false);
    if (!header.ok()) return done(header.status());
    call->owned_lean_header = std::move(*header);
    call->lean_header = call->owned_lean_header;
    call->request = request.get();  // it may ride in another call's batch
  }
  call->owned_request = std::move(request);
  call->cancel = std::move(cancel);
  call->on_done = std::move(done);
  std::unique_lock<std::mutex> lock(mutex_);
  Status refused;
  if (shutting_down_) {
    refused = Unavailable("The worker pool is shutting down: no new UDF calls");
  } else if (static_cast<int>(waiters_.size() + async_calls_.size()) >= options_.max_waiting) {
    refused = Unavailable("All " + std::to_string(num_workers_) + " workers are busy and " +
                          std::to_string(waiters_.size() + async_calls_.size()) +
                          " calls are already waiting: try again later");
  }
  if (!refused.ok()) {
    lock.unlock();
    return CompleteAsync(call.release(), refused);
  }
  // One driver per worker: each runs one call (and its batch) at a time, like a handler thread.
  while (static_cast<int>(drivers_.size()) < num_workers_) drivers_.emplace_back(&WorkerPool::Drive, this);
  async_calls_.push_back(call.release());
  ++stats_.calls_async;
  drivers_wake_.notify_one();
}

void WorkerPool::FailAsyncIfShuttingDown() {
  std::deque<Waiter*> queued;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!shutting_down_) return;
    queued.swap(async_calls_);
  }
  for (Waiter* call : queued) CompleteAsync(call, Unavailable("The worker pool is shutting down: no new UDF calls"));
}

void WorkerPool::CompleteAsync(Waiter* call, Result<WorkerReply> reply) {
  Done done = std::move(call->on_done);
  delete call;
  done(std::move(reply));
}

void WorkerPool::Drive() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    drivers_wake_.wait(lock, [&] { return shutting_down_ || !async_calls_.empty(); });
    if (shutting_down_) return;  // Shutdown answers the calls still queued
    Waiter* call = async_calls_.front();
    async_calls_.pop_front();
    lock.unlock();
    Result<WorkerReply> reply =
        SecondsSince(call->queued) > options_.queue_timeout_seconds
            ? Result<WorkerReply>(Unavailable("No worker became free within " +
                                              FormatSeconds(options_.queue_timeout_seconds) + " s: all " +
                                              std::to_string(size()) + " workers are busy"))
            : RunCall(*call->owned_request, call->cancel.get(), /*alone=*/call->request == nullptr,
                      call->queued, call->owned_lean_header);
    CompleteAsync(call, std::move(reply));
    lock.lock();
  }
}

Result<WorkerReply> WorkerPool::RunCall(const WorkerRequest& request, const CancelFlag* cancel, bool alone,
                                        Clock::time_point queued, std::string_view known_lean_header) {
  // A worker that already ran this UDF version gets it by hash alone. The frame with the
  // code is built only for a worker that needs it: code and header modules can be
  // kilobytes, costly to escape here and to parse again in the worker on every call.
  std::string lean_header(known_lean_header), lean_frame;
  if (!request.udf_hash.empty()) {
    if (lean_header.empty()) {
      ARROW_ASSIGN_OR_RAISE(lean_header, EncodeRunHeader(request, /*with_code=*/false));
    }
    AppendFrame(lean_header, request.payload, &lean_frame);
  }
  std::string frame;
  auto build_frame = [&]() -> Status {
    if (!frame.empty()) return Status::OK();
    ARROW_ASSIGN_OR_RAISE(std::string header, EncodeRunHeader(request));
    AppendFrame(header, request.payload, &frame);
    return Status::OK();
  };
  if (lean_frame.empty()) ARROW_RETURN_NOT_OK(build_frame());
  if (cancel && cancel->load()) {
    return CancelledStatus("The call of UDF '" + request.udf_name +
                           "' was cancelled before it started");
  }
  Waiter waiter;
  waiter.queued = queued;
  if (!alone && !lean_header.empty() && request.payload.empty() && !request.nested) {
    waiter.request = &request;  // it may ride in another call's batch
    waiter.lean_header = lean_header;
  }
  std::shared_ptr<WorkerProcess> worker;
  Clock::time_point sent;
  double limit = LimitOf(request);
  bool lean = false;
  bool recycle_asked = false;
  Result<Frame> answer;
  Result<WorkerReply> reply;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(worker, Acquire(cancel, request.nested, &waiter));
    if (!worker) {
      if (!waiter.retry) return std::move(waiter.reply);  // a batch answered it
      // The batch broke before this call's reply: run it alone, so that an error is only
      // ever charged to the call that caused it.
      waiter.riding = waiter.done = waiter.retry = false;
      waiter.request = nullptr;
      continue;
    }
    sent = Clock::now();
    lean = !lean_frame.empty() && worker->HasCode(request.udf_hash);
    if (Status built = lean ? Status::OK() : build_frame(); !built.ok()) {
      ReturnUnused(std::move(worker));
      return built;
    }
    std::vector<Waiter*> riders;
    if (lean && waiter.request) riders = TakeRiders(*worker, request.udf_hash);
    if (riders.empty()) {
      answer = worker->Call(lean ? lean_frame : frame, sent + Seconds(limit), cancel);
      reply = answer.ok() ? DecodeReply(std::move(*answer), request.id) : Result<WorkerReply>(answer.status());
      break;
    }
    // One write: this call, then the riders; "more" lets the worker hold its replies until
    // the last one and send them in one write too. Calls of a batch are short: a batch
    // silent for kBatchWaitSeconds has a call that is not, and its calls are run again alone.
    auto with_more = [](std::string_view header) {
      return std::string(header.substr(0, header.size() - 1)) + ",\"more\":true}";
    };
    std::string batch;
    AppendFrame(with_more(lean_header), {}, &batch);
    for (size_t i = 0; i < riders.size(); ++i) {
      AppendFrame(i + 1 < riders.size() ? with_more(riders[i]->lean_header)
                                        : std::string(riders[i]->lean_header),
                  {}, &batch);
    }
    auto batch_deadline = sent + Seconds(std::min(limit, kBatchWaitSeconds));
    Status written = worker->Send(batch, batch_deadline, cancel);
    answer = written.ok() ? worker->Receive(batch_deadline, cancel) : Result<Frame>(written);
    reply = answer.ok() ? DecodeReply(std::move(*answer), request.id) : Result<WorkerReply>(answer.status());
    if (!reply.ok()) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        RetryLocked(riders, 0);
      }
      FailAsyncIfShuttingDown();
      if (answer.ok()) worker->Kill();  // a malformed reply: its stream cannot be trusted
      Status failure = CallFailed(std::move(worker), request, reply.status(), limit);
      if (answer.status().IsCancelled()) return failure;  // its caller went away
      waiter.request = nullptr;  // run again alone: the batch broke, not necessarily on it
      continue;
    }
    if (!FinishRiders(worker, riders, sent, &recycle_asked)) {
      // The worker broke on a rider's call, after answering this one; it is retired.
      reply->worker_pid = worker->pid();
      reply->queue_seconds = std::chrono::duration<double>(sent - waiter.queued).count();
      reply->call_seconds = SecondsSince(sent);
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.calls;
      return reply;
    }
    break;
  }
  if (lean && reply.ok() && !reply->ok && reply->error_kind() == kCodeNeeded) {
    worker->ForgetCode(request.udf_hash);  // it dropped that version from its cache
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++stats_.code_resent;
    }
    if (Status built = build_frame(); !built.ok()) {
      ReturnUnused(std::move(worker));
      return built;
    }
    answer = worker->Call(frame, sent + Seconds(limit), cancel);
    reply = answer.ok() ? DecodeReply(std::move(*answer), request.id) : Result<WorkerReply>(answer.status());
  }
  if (!answer.ok()) return CallFailed(std::move(worker), request, answer.status(), limit);
  if (!reply.ok()) {
    Status malformed = MakeError(ErrorKind::kWorkerCrashed,
                                 "Worker " + std::to_string(worker->pid()) +
                                     " sent a malformed reply: " + reply.status().message());
    worker->Kill();  // its stream cannot be trusted any more
    return CallFailed(std::move(worker), request, malformed, limit);
  }
  if (!request.udf_hash.empty() && reply->ok) worker->NoteCodeSent(request.udf_hash);
  reply->worker_pid = worker->pid();
  reply->queue_seconds = std::chrono::duration<double>(sent - waiter.queued).count();
  reply->call_seconds = SecondsSince(sent);
  worker->CountCall();
  const char* recycle = nullptr;
  bool extra;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    extra = extra_.count(worker->pid()) > 0;
  }
  if (extra) {
    recycle = "extra_for_nested_call";  // temporary: the pool goes back to its size
  } else if (options_.max_calls_per_worker > 0 && worker->calls() >= options_.max_calls_per_worker) {
    recycle = "max_calls";
  } else if (reply->recycle || recycle_asked) {
    recycle = "worker_asked";  // e.g. after a MemoryError: its heap is not to be trusted
  }
  if (recycle) {
    worker->RequestExit();
    Log(LogLevel::kInfo, "event=worker_recycled worker=" + std::to_string(worker->pid()) +
                             " reason=" + recycle + " calls=" + std::to_string(worker->calls()));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (!request.udf_hash.empty() && reply->ok) NoteSecondsLocked(request.udf_hash, reply->seconds);
  --busy_;
  ++stats_.calls;
  if (lean) ++stats_.calls_by_hash;
  if (recycle) {
    ++stats_.recycled;
    RetireLocked(std::move(worker));
  } else {
    HandOutLocked(std::move(worker));
    if (shutting_down_) calls_done_.notify_all();
  }
  return reply;
}

double WorkerPool::LimitOf(const WorkerRequest& request) const {
  return request.timeout_seconds > 0 ? request.timeout_seconds : options_.call_timeout_seconds;
}

void WorkerPool::NoteSecondsLocked(const std::string& hash, double seconds) {
  if (recent_seconds_.size() >= 4096) recent_seconds_.clear();  // bounded: forgetting is cheap
  auto [it, added] = recent_seconds_.try_emplace(hash, seconds);
  if (!added) it->second = 0.8 * it->second + 0.2 * seconds;
}

std::vector<WorkerPool::Waiter*> WorkerPool::TakeRiders(const WorkerProcess& worker,
                                                        const std::string& hash) {
  std::vector<Waiter*> riders;
  std::lock_guard<std::mutex> lock(mutex_);
  auto short_calls = [&](const std::string& version) {
    auto it = recent_seconds_.find(version);
    return it != recent_seconds_.end() && it->second < options_.batchable_seconds;
  };
  if ((waiters_.empty() && async_calls_.empty()) || extra_.count(worker.pid()) || !short_calls(hash)) {
    return riders;
  }
  int64_t room = kMaxBatchCalls - 1;
  if (options_.max_calls_per_worker > 0) {
    room = std::min(room, options_.max_calls_per_worker - worker.calls() - 1);
  }
  for (std::deque<Waiter*>* queue : {&waiters_, &async_calls_}) {
    for (auto it = queue->begin(); it != queue->end() && static_cast<int64_t>(riders.size()) < room;) {
      Waiter* w = *it;
      if (w->request && worker.HasCode(w->request->udf_hash) && short_calls(w->request->udf_hash)) {
        w->riding = true;
        riders.push_back(w);
        it = queue->erase(it);
      } else {
        ++it;
      }
    }
  }
  stats_.calls_batched += static_cast<int64_t>(riders.size());
  return riders;
}

void WorkerPool::RetryLocked(const std::vector<Waiter*>& riders, size_t from) {
  for (size_t i = riders.size(); i-- > from;) {  // backwards: async calls keep their order
    Waiter* w = riders[i];
    if (w->on_done) {
      w->riding = false;
      w->request = nullptr;  // alone
      async_calls_.push_front(w);
      drivers_wake_.notify_one();
      continue;
    }
    w->retry = w->done = true;
    w->cv.notify_one();  // under mutex_: the waiter cannot leave before this returns
  }
}

bool WorkerPool::FinishRiders(const std::shared_ptr<WorkerProcess>& worker,
                              const std::vector<Waiter*>& riders, Clock::time_point sent,
                              bool* recycle) {
  // RunAsync riders get their replies together once the batch is read: their callbacks post
  // to the I/O threads back to back, which then wake once for the batch, not once per reply.
  std::vector<std::pair<Waiter*, Result<WorkerReply>>> completed;
  auto complete = [&completed] {
    for (auto& [call, reply] : completed) CompleteAsync(call, std::move(reply));
  };
  for (size_t i = 0; i < riders.size(); ++i) {
    Waiter* rider = riders[i];
    const WorkerRequest& request = *rider->request;
    double limit = LimitOf(request);
    Result<Frame> frame = worker->Receive(sent + Seconds(std::min(limit, kBatchWaitSeconds)), nullptr);
    Result<WorkerReply> reply =
        frame.ok() ? DecodeReply(std::move(*frame), request.id) : Result<WorkerReply>(frame.status());
    if (!reply.ok()) {
      if (frame.ok()) worker->Kill();  // a malformed reply: its stream cannot be trusted
      (void)CallFailed(worker, request, reply.status(), limit);  // retires the worker
      {
        std::lock_guard<std::mutex> lock(mutex_);
        RetryLocked(riders, i);  // run again alone, each: the batch broke, not necessarily on it
      }
      complete();
      FailAsyncIfShuttingDown();
      return false;
    }
    bool resend = !reply->ok && reply->error_kind() == kCodeNeeded;
    if (resend) {
      worker->ForgetCode(request.udf_hash);  // the next worker it gets sends the code
    } else {
      reply->worker_pid = worker->pid();
      reply->queue_seconds = std::chrono::duration<double>(sent - rider->queued).count();
      reply->call_seconds = SecondsSince(sent);
      worker->CountCall();
      *recycle = *recycle || reply->recycle;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (resend) {
      ++stats_.code_resent;
      if (rider->on_done) {
        RetryLocked({rider}, 0);
        lock.unlock();
        FailAsyncIfShuttingDown();
        continue;
      }
      rider->retry = true;
    } else {
      if (reply->ok) NoteSecondsLocked(request.udf_hash, reply->seconds);
      ++stats_.calls;
      ++stats_.calls_by_hash;
      if (rider->on_done) {
        completed.emplace_back(rider, std::move(reply));
        continue;
      }
      rider->reply = std::move(reply);
    }
    rider->done = true;
    rider->cv.notify_one();
  }
  complete();
  return true;
}

void WorkerPool::ReturnUnused(std::shared_ptr<WorkerProcess> worker) {
  bool extra;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    extra = extra_.count(worker->pid()) > 0;
  }
  if (extra) worker->RequestExit();  // a temporary worker exits, as after a call
  std::lock_guard<std::mutex> lock(mutex_);
  --busy_;
  if (extra) {
    RetireLocked(std::move(worker));
  } else {
    HandOutLocked(std::move(worker));
    if (shutting_down_) calls_done_.notify_all();
  }
}

std::shared_ptr<WorkerProcess> WorkerPool::StartExtraLocked(std::unique_lock<std::mutex>& lock) {
  if (static_cast<int>(extra_.size()) >= kMaxExtraWorkers) return nullptr;
  extra_[0] = true;  // reserves a place while starting (pid 0 is never a worker)
  lock.unlock();
  auto started = WorkerProcess::Start(process_options_);
  lock.lock();
  extra_.erase(0);
  if (!started.ok() || shutting_down_) {
    if (!started.ok()) {
      Log(LogLevel::kWarn, "event=extra_worker_start_failed error=" + LogValue(started.status().message()));
    }
    return nullptr;
  }
  std::shared_ptr<WorkerProcess> worker = std::move(*started);
  extra_[worker->pid()] = true;
  live_[worker->pid()] = worker;
  ++stats_.workers_started;
  Log(LogLevel::kInfo, "event=extra_worker_started worker=" + std::to_string(worker->pid()) +
                           " reason=nested_call");
  return worker;
}

Result<std::shared_ptr<WorkerProcess>> WorkerPool::Acquire(const CancelFlag* cancel, bool nested,
                                                           Waiter* waiter) {
  auto deadline = Clock::now() + Seconds(options_.queue_timeout_seconds);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    if (shutting_down_) return Unavailable("The worker pool is shutting down: no new UDF calls");
    std::shared_ptr<WorkerProcess> worker;
    if (!idle_.empty() && waiters_.empty()) {
      worker = std::move(idle_.back());  // the most recently used: its caches are warmest
      idle_.pop_back();
    } else if (nested && (worker = StartExtraLocked(lock))) {
      // a temporary worker of its own
    } else {
      if (static_cast<int>(waiters_.size()) >= options_.max_waiting) {
        return Unavailable("All " + std::to_string(num_workers_) +
                           " workers are busy and " + std::to_string(waiters_.size()) +
                           " calls are already waiting: try again later");
      }
      waiters_.push_back(waiter);
      while (!waiter->worker && !waiter->done) {
        if (waiter->riding) {  // in a batch: its end is near, and it must be waited for
          waiter->cv.wait(lock);
          continue;
        }
        if (shutting_down_ || (cancel && cancel->load())) break;
        auto now = Clock::now();
        if (now >= deadline) break;
        waiter->cv.wait_until(lock, cancel ? std::min(deadline, now + kCancelPoll) : deadline);
      }
      if (waiter->done) return std::shared_ptr<WorkerProcess>();
      if (!waiter->worker) {
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
        if (shutting_down_)
          return Unavailable("The worker pool is shutting down: no new UDF calls");
        if (cancel && cancel->load()) {
          ++stats_.cancellations;
          return CancelledStatus("The UDF call was cancelled while waiting for a free worker");
        }
        std::string message = "No worker became free within " +
                              FormatSeconds(options_.queue_timeout_seconds) + " s: all " +
                              std::to_string(num_workers_) + " workers are busy";
        if (!last_start_error_.empty())
          message += "; the last worker start failed: " + last_start_error_;
        return Unavailable(std::move(message));
      }
      worker = std::move(waiter->worker);
    }
    ++busy_;
    lock.unlock();
    if (worker->CheckIdle()) return worker;
    // It died (or spoke out of turn) while idle: replace it and look again.
    std::string how = worker->Reap(Clock::now() + kExitGrace);
    Log(LogLevel::kWarn, "event=worker_died_idle worker=" + std::to_string(worker->pid()) +
                             " status=" + LogValue(how));
    lock.lock();
    --busy_;
    ++stats_.crashes;
    RetireLocked(std::move(worker));
  }
}

Status WorkerPool::CallFailed(std::shared_ptr<WorkerProcess> worker, const WorkerRequest& request,
                              const Status& status, double limit_seconds) {
  const std::string pid = std::to_string(worker->pid());
  const std::string udf = "UDF '" + request.udf_name + "'";
  Status result;
  bool shutting_down;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    shutting_down = shutting_down_;
  }
  if (status.IsCancelled()) {
    worker->Kill();
    result =
        CancelledStatus("The call of " + udf + " was cancelled (the caller went away): worker " +
                        pid + " was stopped and is being replaced");
    Log(LogLevel::kInfo, "event=call_cancelled worker=" + pid + " udf=" +
                             LogValue(request.udf_name) + " request_id=" + LogValue(request.id));
  } else if (KindOf(status) == ErrorKind::kTimeout) {
    worker->Kill();
    result = Timeout(udf, " did not finish within its time limit of ", FormatSeconds(limit_seconds),
                     " s: worker ", pid, " was stopped and is being replaced");
    Log(LogLevel::kWarn, "event=call_timeout worker=" + pid + " udf=" + LogValue(request.udf_name) +
                             " limit_s=" + FormatSeconds(limit_seconds) +
                             " request_id=" + LogValue(request.id));
  } else {
    std::string how = worker->Reap(Clock::now() + kExitGrace);
    std::string tail = worker->StderrTail();
    std::string what = status.message();
    if (what.rfind("Worker " + pid + " ", 0) == 0) what = what.substr(8 + pid.size());
    std::string message = "Worker " + pid + " " + what + " while running " + udf + " (" + how +
                          "); it is being replaced. ";
    message += tail.empty() ? std::string("It wrote nothing to stderr.")
                            : "Its stderr ends with:\n" + tail;
    if (shutting_down) {
      result = Unavailable("The worker pool shut down while " + udf + " was running");
    } else {
      result = Status(arrow::StatusCode::UnknownError, std::move(message),
                      std::make_shared<WorkerCrashDetail>(worker->pid(), how, tail));
    }
    Log(LogLevel::kWarn, "event=worker_crashed worker=" + pid +
                             " udf=" + LogValue(request.udf_name) + " status=" + LogValue(how) +
                             " error=" + LogValue(what) + " request_id=" + LogValue(request.id));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  --busy_;
  if (status.IsCancelled()) {
    ++stats_.cancellations;
  } else if (KindOf(status) == ErrorKind::kTimeout) {
    ++stats_.timeouts;
  } else {
    ++stats_.crashes;
  }
  RetireLocked(std::move(worker));
  return result;
}

void WorkerPool::HandOutLocked(std::shared_ptr<WorkerProcess> worker) {
  if (!waiters_.empty()) {
    Waiter* waiter = waiters_.front();
    waiters_.pop_front();
    waiter->worker = std::move(worker);
    waiter->cv.notify_one();
  } else {
    idle_.push_back(std::move(worker));
  }
}

void WorkerPool::RetireLocked(std::shared_ptr<WorkerProcess> worker) {
  live_.erase(worker->pid());
  extra_.erase(worker->pid());
  retiring_.push_back(std::move(worker));
  supervisor_wake_.notify_one();
  if (shutting_down_) calls_done_.notify_all();
}

// -- supervision -------------------------------------------------------------------------

void WorkerPool::Supervise() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!shutting_down_) {
    int regular = static_cast<int>(live_.size()) - static_cast<int>(extra_.count(0) ? extra_.size() - 1 : extra_.size());
    int missing = num_workers_ - regular - starting_;
    bool start_now = missing > 0 && Clock::now() >= next_start_;
    if (retiring_.empty() && !start_now) {
      if (missing > 0) {
        supervisor_wake_.wait_until(lock, next_start_);
      } else {
        supervisor_wake_.wait(lock);
      }
      continue;
    }
    std::vector<std::shared_ptr<WorkerProcess>> retiring = std::move(retiring_);
    retiring_.clear();
    int to_start = start_now ? missing : 0;
    starting_ += to_start;
    lock.unlock();

    auto start = Clock::now();
    Status failure;
    std::vector<std::unique_ptr<WorkerProcess>> launched;
    for (int i = 0; i < to_start; ++i) {
      auto worker = WorkerProcess::Launch(process_options_);
      if (worker.ok()) {
        launched.push_back(std::move(*worker));
      } else {
        failure = worker.status();
      }
    }
    for (auto& worker : retiring) worker->Reap(Clock::now() + kExitGrace);
    retiring.clear();
    std::vector<std::shared_ptr<WorkerProcess>> ready;
    auto deadline = start + Seconds(options_.startup_timeout_seconds);
    for (auto& worker : launched) {
      Status status = worker->WaitReady(deadline, &stopping_);
      if (status.ok()) {
        Log(LogLevel::kInfo,
            "event=worker_started worker=" + std::to_string(worker->pid()) +
                " ms=" + std::to_string(static_cast<int>(SecondsSince(start) * 1000)));
        ready.push_back(std::move(worker));
      } else if (!status.IsCancelled()) {
        failure = status;
      }
    }
    launched.clear();

    lock.lock();
    starting_ -= to_start;
    for (auto& worker : ready) {
      ++stats_.workers_started;
      live_[worker->pid()] = worker;
      HandOutLocked(std::move(worker));
    }
    if (!failure.ok() && !shutting_down_) {
      last_start_error_ = failure.message();
      start_backoff_seconds_ =
          std::min(std::max(1.0, start_backoff_seconds_ * 2), kMaxStartBackoffSeconds);
      next_start_ = Clock::now() + Seconds(start_backoff_seconds_);
      Log(LogLevel::kWarn,
          "event=worker_start_failed retry_in_s=" + FormatSeconds(start_backoff_seconds_) +
              " error=" + LogValue(last_start_error_));
    } else if (to_start > 0 && failure.ok()) {
      start_backoff_seconds_ = 0;
      last_start_error_.clear();
    }
  }
}

void WorkerPool::Shutdown(double grace_seconds) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shutting_down_) return;
    shutting_down_ = true;
    stopping_ = true;
    for (Waiter* waiter : waiters_) waiter->cv.notify_one();
    supervisor_wake_.notify_all();
    drivers_wake_.notify_all();
  }
  FailAsyncIfShuttingDown();
  if (supervisor_.joinable()) supervisor_.join();
  auto deadline = Clock::now() + Seconds(std::max(0.0, grace_seconds));
  std::vector<std::shared_ptr<WorkerProcess>> workers;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    calls_done_.wait_until(lock, deadline, [&] { return busy_ == 0; });
    for (auto& worker : idle_) worker->RequestExit();
    for (auto& [pid, worker] : live_) {
      if (std::find(idle_.begin(), idle_.end(), worker) == idle_.end()) worker->Kill();  // busy
      workers.push_back(worker);
    }
    workers.insert(workers.end(), retiring_.begin(), retiring_.end());
    idle_.clear();
    live_.clear();
    retiring_.clear();
  }
  auto reap_deadline = std::max(deadline, Clock::now() + kExitGrace);
  for (auto& worker : workers) worker->Reap(reap_deadline);
  for (auto& driver : drivers_) driver.join();  // their calls ended with their workers
  FailAsyncIfShuttingDown();  // calls of batches that broke meanwhile
  std::lock_guard<std::mutex> lock(mutex_);
  shut_down_ = true;
  Log(LogLevel::kInfo, "event=pool_stopped reaped=" + std::to_string(workers.size()));
}

// -- observation -------------------------------------------------------------------------

WorkerPoolStats WorkerPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  WorkerPoolStats stats = stats_;
  stats.idle = static_cast<int>(idle_.size());
  stats.busy = busy_;
  stats.starting = starting_;
  stats.waiting = static_cast<int>(waiters_.size() + async_calls_.size());
  return stats;
}

std::vector<pid_t> WorkerPool::WorkerPids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<pid_t> pids;
  for (const auto& [pid, worker] : live_) pids.push_back(pid);
  std::sort(pids.begin(), pids.end());
  return pids;
}

void WorkerPool::Log(LogLevel level, const std::string& line) const {
  process_options_.log(level, line);
}

}  // namespace terrafuse::workers
