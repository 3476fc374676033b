// Runs the tasks of the job store on the worker pool: `slots` threads each take the oldest
// queued task, run it as a call of the job-task UDF (kJobTaskCode, which hands the kind, the
// job's config and the task's parameters to fused._jobs.run_job_task in the worker), and
// record the outcome and the task's stdout/stderr in the store. Failed attempts (the UDF
// raised, the worker died or timed out) run again up to the job's max_retry.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/jobs/job_store.h"
#include "terrafuse/workers/worker_pool.h"

namespace terrafuse::jobs {

/// The UDF every job task runs in a worker; kinds are dispatched in Python (fused._jobs).
extern const char* const kJobTaskCode;

class JobRunner {
 public:
  /// Starts `slots` threads over `store` and `pool` (both must outlive the runner). Tasks
  /// stream their output through files in `live_dir` (created), read while they run.
  static Result<std::unique_ptr<JobRunner>> Start(JobStore* store, workers::WorkerPool* pool,
                                                  int slots, std::string live_dir);
  /// Stop() then join.
  ~JobRunner();

  /// Wakes the threads: a job was created.
  void Wake();
  /// Stops the running tasks `indexes` of `job_id` (their workers are killed at once).
  void Cancel(const std::string& job_id, const std::vector<int64_t>& indexes);
  /// Stops taking tasks and waits for the threads; running tasks are stopped and stay
  /// "running" in the store, so the next start runs them again.
  void Stop();

 private:
  JobRunner(JobStore* store, workers::WorkerPool* pool, std::string live_dir)
      : store_(store), pool_(pool), live_dir_(std::move(live_dir)) {}
  void Loop();
  void RunTask(const ClaimedTask& task);

  JobStore* store_;
  workers::WorkerPool* pool_;
  const std::string live_dir_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<workers::CancelFlag>> running_;
  std::vector<std::thread> threads_;
};

}  // namespace terrafuse::jobs
