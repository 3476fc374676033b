#include "terrafuse/jobs/job_runner.h"

#include <chrono>

namespace terrafuse::jobs {

const char* const kJobTaskCode = R"(import fused


@fused.udf
def udf(kind: str = "", config: str = "{}", task: str = "{}", job_id: str = "", index: int = 0):
    from fused._jobs import run_job_task

    return run_job_task(kind, config, task, job_id=job_id, index=index)
)";

namespace {

// Threads also look for work this often, so nothing waits on a lost wake-up.
constexpr auto kPollInterval = std::chrono::seconds(1);
// A task's call may take this long (a batch job is no realtime request).
constexpr double kTaskTimeoutSeconds = 24.0 * 3600;

void LogOrWarn(const Status& status) {
  if (!status.ok()) std::fprintf(stderr, "level=warn event=job_store_error error=\"%s\"\n", status.message().c_str());
}

}  // namespace

Result<std::unique_ptr<JobRunner>> JobRunner::Start(JobStore* store, workers::WorkerPool* pool,
                                                    int slots) {
  if (slots < 1) return InvalidArgument("Invalid number of job slots ", slots, ": use at least 1");
  std::unique_ptr<JobRunner> runner(new JobRunner(store, pool));
  for (int i = 0; i < slots; ++i) runner->threads_.emplace_back(&JobRunner::Loop, runner.get());
  return runner;
}

JobRunner::~JobRunner() { Stop(); }

void JobRunner::Wake() { wake_.notify_all(); }

void JobRunner::Cancel(const std::string& job_id, const std::vector<int64_t>& indexes) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (int64_t index : indexes) {
    auto it = running_.find({job_id, index});
    if (it != running_.end()) it->second->store(true);
  }
}

void JobRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [key, flag] : running_) flag->store(true);
  }
  wake_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void JobRunner::Loop() {
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    Result<std::optional<ClaimedTask>> next = store_->ClaimNext();
    if (!next.ok()) LogOrWarn(next.status());
    if (next.ok() && next->has_value()) {
      RunTask(**next);
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) return;
    wake_.wait_for(lock, kPollInterval);
  }
}

void JobRunner::RunTask(const ClaimedTask& task) {
  auto flag = std::make_shared<workers::CancelFlag>(false);
  const auto key = std::make_pair(task.job_id, task.index);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;  // stays running in the store: the next start runs it again
    running_[key] = flag;
  }
  workers::WorkerRequest request;
  request.id = task.job_id + "/" + std::to_string(task.index) + "/" + std::to_string(task.attempt);
  request.udf_name = "job:" + task.kind;
  request.code = kJobTaskCode;
  request.params = {{"kind", task.kind},
                    {"config", task.config},
                    {"task", task.params},
                    {"job_id", task.job_id},
                    {"index", std::to_string(task.index)}};
  request.timeout_seconds = kTaskTimeoutSeconds;
  Result<workers::WorkerReply> reply = pool_->Run(request, flag.get());
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(key);
    stopping = stopping_;
  }
  if (stopping && !reply.ok()) return;  // server shutting down: runs again after the restart
  std::string error;
  if (reply.ok()) {
    if (!reply->captured_stdout().empty()) {
      LogOrWarn(store_->AppendLog(task.job_id, task.index, "stdout", std::string(reply->captured_stdout())));
    }
    if (!reply->captured_stderr().empty()) {
      LogOrWarn(store_->AppendLog(task.job_id, task.index, "stderr", std::string(reply->captured_stderr())));
    }
    if (reply->ok) {
      LogOrWarn(store_->FinishTask(task.job_id, task.index, kSucceeded, ""));
      return;
    }
    if (!reply->traceback().empty()) {
      LogOrWarn(store_->AppendLog(task.job_id, task.index, "stderr", std::string(reply->traceback())));
    }
    error = std::string(reply->error_message());
    if (reply->error_kind() != "udf_failed") {  // bad parameters or output: no retry helps
      LogOrWarn(store_->FinishTask(task.job_id, task.index, kFailed, error));
      return;
    }
  } else if (flag->load()) {
    LogOrWarn(store_->FinishTask(task.job_id, task.index, kCancelled, ""));
    return;
  } else {
    error = reply.status().message();
    LogOrWarn(store_->AppendLog(task.job_id, task.index, "stderr", error));
  }
  if (task.attempt <= task.max_retry) {
    LogOrWarn(store_->AppendLog(task.job_id, task.index, "job",
                                "task " + std::to_string(task.index) + " attempt " +
                                    std::to_string(task.attempt) + " failed: it runs again"));
    LogOrWarn(store_->Requeue(task.job_id, task.index));
    return;
  }
  LogOrWarn(store_->FinishTask(task.job_id, task.index, kFailed, error));
}

}  // namespace terrafuse::jobs
