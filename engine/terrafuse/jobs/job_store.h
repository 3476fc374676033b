// Batch jobs in SQLite (<home>/jobs.db): one row per job (id, owner, kind, config JSON,
// status, timestamps), one per task (its parameters, status, attempts) and one per log line.
// The store knows nothing of kinds: a job is a config plus a list of task parameter
// documents, executed by the JobRunner on the worker pool (python: fused._jobs).
//
// Jobs survive restarts: Open() puts tasks that were running back in the queue (they run
// again) and logs it, so nothing is lost or left running forever.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::udf::internal {
class Database;
}

namespace terrafuse::jobs {

/// Job and task statuses as stored and shown.
inline constexpr const char* kQueued = "queued";
inline constexpr const char* kRunning = "running";
inline constexpr const char* kSucceeded = "succeeded";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kCancelled = "cancelled";

struct TaskInfo {
  int64_t index = 0;
  std::string params;  // JSON object
  std::string status;
  int64_t attempts = 0;
  int64_t started_ms = 0;  // 0: not yet
  int64_t ended_ms = 0;
  std::string error;
};

struct JobInfo {
  std::string id;
  std::string owner;
  std::string kind;
  std::string name;
  std::string config;  // JSON object
  std::string status;
  int64_t created_ms = 0;
  int64_t started_ms = 0;
  int64_t ended_ms = 0;
  int64_t max_retry = 0;
  /// Tasks per status.
  std::map<std::string, int64_t> counts;
  /// Filled by Get(..., with_tasks = true) only.
  std::vector<TaskInfo> tasks;
};

struct LogLine {
  int64_t id = 0;  // increasing: the cursor of tail requests
  int64_t ts_ms = 0;
  int64_t task = -1;  // -1: the job itself
  std::string stream;  // "stdout", "stderr" or "job"
  std::string text;
};

/// A task handed to the runner: everything needed to run it.
struct ClaimedTask {
  std::string job_id;
  std::string kind;
  std::string config;
  int64_t index = 0;
  std::string params;
  int64_t attempt = 0;  // 1 for the first
  int64_t max_retry = 0;
};

class JobStore {
 public:
  /// Opens (creating) the store at `path`; tasks left running by a previous process are
  /// queued again. Fails with IOError when the file cannot be opened.
  static Result<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();

  /// Creates a queued job with one task per entry of `task_params` (JSON objects); returns
  /// its id, human readable ("brisk-otter-7f3a"). InvalidArgument for an empty kind or no task.
  Result<std::string> Create(const std::string& owner, const std::string& kind,
                             const std::string& name, const std::string& config,
                             const std::vector<std::string>& task_params, int64_t max_retry);
  /// NotFound for jobs of other owners too (no hint that they exist).
  Result<JobInfo> Get(const std::string& id, const std::string& owner, bool with_tasks);
  /// The owner's jobs, newest first.
  Result<std::vector<JobInfo>> List(const std::string& owner, int64_t n, int64_t skip);
  /// Lines with id > after_id and ts >= since_ms, oldest first, at most `limit`.
  Result<std::vector<LogLine>> Logs(const std::string& id, const std::string& owner,
                                    int64_t after_id, int64_t since_ms, int64_t limit);
  /// Cancels the queued tasks at once and marks the job cancelled; returns the indexes of its
  /// running tasks (the runner stops them).
  Result<std::vector<int64_t>> Cancel(const std::string& id, const std::string& owner);

  // -- the runner's side ----------------------------------------------------------------
  /// Takes the oldest queued task (marking it and its job running), or nullopt.
  Result<std::optional<ClaimedTask>> ClaimNext();
  /// Records a task's end (succeeded, failed or cancelled); the job ends with its last task.
  Status FinishTask(const std::string& job_id, int64_t index, const std::string& status,
                    const std::string& error);
  /// True when the job was cancelled (checked by the runner once a task is registered, so a
  /// cancel that came between claiming and registering is not missed).
  Result<bool> CancelRequested(const std::string& job_id);
  /// Puts a running task back in the queue (another attempt).
  Status Requeue(const std::string& job_id, int64_t index);
  /// Appends `text` split into lines.
  Status AppendLog(const std::string& job_id, int64_t task, const std::string& stream,
                   const std::string& text);
  /// Tasks found running when the store was opened (and queued again).
  int64_t recovered() const { return recovered_; }

 private:
  explicit JobStore(std::unique_ptr<udf::internal::Database> db);
  Status AppendLogLocked(const std::string& job_id, int64_t task, const std::string& stream,
                         const std::string& text, int64_t now_ms);
  Result<JobInfo> ReadJobLocked(const std::string& id);
  Status UpdateJobStatusLocked(const std::string& job_id, int64_t now_ms);

  std::mutex mutex_;
  std::unique_ptr<udf::internal::Database> db_;
  int64_t recovered_ = 0;
};

}  // namespace terrafuse::jobs
