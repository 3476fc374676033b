#include "terrafuse/jobs/job_runner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace terrafuse::jobs {

const char* const kJobTaskCode = R"(import fused


@fused.udf
def udf(kind: str = "", config: str = "{}", task: str = "{}", job_id: str = "", index: int = 0,
        live_log: str = ""):
    from fused._jobs import run_job_task

    return run_job_task(kind, config, task, job_id=job_id, index=index, live_log=live_log)
)";

namespace {

// Threads also look for work this often, so nothing waits on a lost wake-up.
constexpr auto kPollInterval = std::chrono::seconds(1);
// How often the output of running tasks is copied into the store.
constexpr auto kLivePollInterval = std::chrono::milliseconds(250);
// A task's call may take this long (a batch job is no realtime request).
constexpr double kTaskTimeoutSeconds = 24.0 * 3600;

// Reads the complete lines a task appended to its live log since `*offset` ("o <text>" for
// stdout, "e <text>" for stderr) into the store.
void DrainLiveLog(JobStore* store, const ClaimedTask& task, const std::string& path,
                  std::streamoff* offset);

void LogOrWarn(const Status& status) {
  if (!status.ok()) std::fprintf(stderr, "level=warn event=job_store_error error=\"%s\"\n", status.message().c_str());
}

void DrainLiveLog(JobStore* store, const ClaimedTask& task, const std::string& path,
                  std::streamoff* offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return;
  in.seekg(*offset);
  std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t end = chunk.rfind('\n');
  if (end == std::string::npos) return;  // no complete line yet
  std::string out, err;
  size_t start = 0;
  while (start <= end) {
    size_t newline = chunk.find('\n', start);
    std::string_view line(chunk.data() + start, newline - start);
    if (line.size() >= 2) (line[0] == 'e' ? err : out).append(line.substr(2)).push_back('\n');
    start = newline + 1;
  }
  *offset += static_cast<std::streamoff>(end + 1);
  if (!out.empty()) LogOrWarn(store->AppendLog(task.job_id, task.index, "stdout", out));
  if (!err.empty()) LogOrWarn(store->AppendLog(task.job_id, task.index, "stderr", err));
}

}  // namespace

Result<std::unique_ptr<JobRunner>> JobRunner::Start(JobStore* store, workers::WorkerPool* pool,
                                                    int slots, std::string live_dir) {
  if (slots < 1) return InvalidArgument("Invalid number of job slots ", slots, ": use at least 1");
  std::error_code ec;
  std::filesystem::create_directories(live_dir, ec);
  if (ec) return IOError("Cannot create the job log directory '", live_dir, "': ", ec.message());
  std::unique_ptr<JobRunner> runner(new JobRunner(store, pool, std::move(live_dir)));
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
  Result<bool> cancelled = store_->CancelRequested(task.job_id);
  if (cancelled.ok() && *cancelled) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_.erase(key);
    }
    LogOrWarn(store_->FinishTask(task.job_id, task.index, kCancelled, ""));
    return;
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
  // The task appends its output here as it prints; a thread copies it into the store.
  const std::string live = live_dir_ + "/" + task.job_id + "-" + std::to_string(task.index) +
                           "-" + std::to_string(task.attempt) + ".log";
  request.params.emplace_back("live_log", live);
  request.timeout_seconds = kTaskTimeoutSeconds;
  std::streamoff offset = 0;
  std::atomic<bool> done{false};
  std::thread streamer([&] {
    while (!done.load()) {
      std::this_thread::sleep_for(kLivePollInterval);
      DrainLiveLog(store_, task, live, &offset);
    }
  });
  Result<workers::WorkerReply> reply = pool_->Run(request, flag.get());
  done = true;
  streamer.join();
  DrainLiveLog(store_, task, live, &offset);
  std::error_code removed;
  const bool streamed = std::filesystem::remove(live, removed);
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_.erase(key);
    stopping = stopping_;
  }
  if (stopping && !reply.ok()) return;  // server shutting down: runs again after the restart
  std::string error;
  if (reply.ok()) {
    if (streamed) {
      // already in the store, line by line
    } else if (!reply->captured_stdout().empty()) {
      LogOrWarn(store_->AppendLog(task.job_id, task.index, "stdout", std::string(reply->captured_stdout())));
    }
    if (!streamed && !reply->captured_stderr().empty()) {
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
