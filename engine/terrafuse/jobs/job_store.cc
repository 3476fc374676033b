#include "terrafuse/jobs/job_store.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <random>

// The registry's SQLite wrapper (one connection, cached statements), shared by the job store.
#include "terrafuse/udf/database_internal.h"

namespace terrafuse::jobs {

namespace {

using udf::internal::Database;
using udf::internal::Statement;
using udf::internal::Transaction;

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kMaxLogLineBytes = 16 << 10;

constexpr const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  owner TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  config TEXT NOT NULL,
  status TEXT NOT NULL,
  max_retry INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL DEFAULT 0,
  ended_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, created_ms);
CREATE TABLE IF NOT EXISTS tasks (
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx INTEGER NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  started_ms INTEGER NOT NULL DEFAULT 0,
  ended_ms INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  queued_seq INTEGER NOT NULL,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (status, queued_seq);
CREATE TABLE IF NOT EXISTS job_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  task INTEGER NOT NULL,
  ts_ms INTEGER NOT NULL,
  stream TEXT NOT NULL,
  text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_logs_job ON job_logs (job_id, id);
)";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Human-readable ids: two words and 4 hex digits (65536 per pair; a clash is retried).
std::string NewJobId() {
  static constexpr std::array<const char*, 16> kAdjectives = {
      "amber", "brisk", "calm", "daring", "eager", "fleet", "gentle", "hardy",
      "keen", "lucid", "mellow", "nimble", "proud", "quiet", "rapid", "sunny"};
  static constexpr std::array<const char*, 16> kNouns = {
      "badger", "crane", "dingo", "egret", "falcon", "gecko", "heron", "ibis",
      "jackal", "koala", "lemur", "marten", "newt", "otter", "puffin", "quokka"};
  thread_local std::mt19937_64 random{std::random_device{}()};
  uint64_t r = random();
  char hex[8];
  std::snprintf(hex, sizeof(hex), "%04x", static_cast<unsigned>((r >> 8) & 0xffff));
  return std::string(kAdjectives[r & 15]) + "-" + kNouns[(r >> 4) & 15] + "-" + hex;
}

}  // namespace

JobStore::JobStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
JobStore::~JobStore() = default;

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  ARROW_ASSIGN_OR_RAISE(auto db, Database::Open(path, kBusyTimeoutMs));
  ARROW_RETURN_NOT_OK(db->Exec(kSchema, "create the job tables"));
  std::unique_ptr<JobStore> store(new JobStore(std::move(db)));
  // Tasks a stopped server was running go back to the queue; jobs being cancelled end.
  const int64_t now = NowMs();
  std::vector<std::pair<std::string, int64_t>> interrupted;
  {
    ARROW_ASSIGN_OR_RAISE(auto select, store->db_->Prepare(
        "SELECT job_id, idx FROM tasks WHERE status = 'running'", "find interrupted tasks"));
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
      if (!row) break;
      interrupted.emplace_back(select.Text(0), select.Int(1));
    }
  }
  for (const auto& [job_id, index] : interrupted) {
    ARROW_ASSIGN_OR_RAISE(auto update, store->db_->Prepare(
        "UPDATE tasks SET status = CASE WHEN (SELECT cancel_requested FROM jobs WHERE id = ?1) "
        "THEN 'cancelled' ELSE 'queued' END, ended_ms = CASE WHEN (SELECT cancel_requested FROM "
        "jobs WHERE id = ?1) THEN ?3 ELSE 0 END WHERE job_id = ?1 AND idx = ?2",
        "queue an interrupted task again"));
    ARROW_RETURN_NOT_OK(update.Bind(1, job_id).Bind(2, index).Bind(3, now).Run());
    ARROW_RETURN_NOT_OK(store->AppendLogLocked(
        job_id, index, "job",
        "task " + std::to_string(index) + " was running when the server stopped: it runs again",
        now));
    ARROW_RETURN_NOT_OK(store->UpdateJobStatusLocked(job_id, now));
  }
  store->recovered_ = static_cast<int64_t>(interrupted.size());
  return store;
}

Result<std::string> JobStore::Create(const std::string& owner, const std::string& kind,
                                     const std::string& name, const std::string& config,
                                     const std::vector<std::string>& task_params,
                                     int64_t max_retry) {
  if (kind.empty()) return InvalidArgument("A job needs a 'kind' (e.g. \"udf\")");
  if (task_params.empty()) return InvalidArgument("A job needs at least one task");
  if (max_retry < 0 || max_retry > 100) {
    return InvalidArgument("Invalid max_retry ", max_retry, ": use 0 to 100");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t now = NowMs();
  for (int attempt = 0;; ++attempt) {
    std::string id = NewJobId();
    ARROW_ASSIGN_OR_RAISE(auto tx, Transaction::Begin(db_.get()));
    ARROW_ASSIGN_OR_RAISE(auto insert, db_->Prepare(
        "INSERT INTO jobs (id, owner, kind, name, config, status, max_retry, created_ms) "
        "VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7)", "create a job"));
    Status inserted = insert.Bind(1, id).Bind(2, owner).Bind(3, kind).Bind(4, name).Bind(5, config)
                          .Bind(6, max_retry).Bind(7, now).Run();
    if (!inserted.ok()) {
      if (KindOf(inserted) == ErrorKind::kAlreadyExists && attempt < 8) continue;  // id clash
      return inserted;
    }
    for (size_t i = 0; i < task_params.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto task, db_->Prepare(
          "INSERT INTO tasks (job_id, idx, params, status, queued_seq) VALUES (?1, ?2, ?3, "
          "'queued', (SELECT COALESCE(MAX(queued_seq), 0) + 1 FROM tasks))", "create a job task"));
      ARROW_RETURN_NOT_OK(task.Bind(1, id).Bind(2, static_cast<int64_t>(i)).Bind(3, task_params[i]).Run());
    }
    ARROW_RETURN_NOT_OK(AppendLogLocked(id, -1, "job",
                                        "job " + id + " (" + kind + ") created with " +
                                            std::to_string(task_params.size()) + " tasks",
                                        now));
    ARROW_RETURN_NOT_OK(tx->Commit());
    return id;
  }
}

Result<JobInfo> JobStore::ReadJobLocked(const std::string& id) {
  ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
      "SELECT id, owner, kind, name, config, status, created_ms, started_ms, ended_ms, max_retry "
      "FROM jobs WHERE id = ?1", "read a job"));
  select.Bind(1, id);
  ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
  if (!row) return NotFound("Job '", id, "' not found");
  JobInfo job;
  job.id = select.Text(0);
  job.owner = select.Text(1);
  job.kind = select.Text(2);
  job.name = select.Text(3);
  job.config = select.Text(4);
  job.status = select.Text(5);
  job.created_ms = select.Int(6);
  job.started_ms = select.Int(7);
  job.ended_ms = select.Int(8);
  job.max_retry = select.Int(9);
  ARROW_ASSIGN_OR_RAISE(auto counts, db_->Prepare(
      "SELECT status, COUNT(*) FROM tasks WHERE job_id = ?1 GROUP BY status", "count job tasks"));
  counts.Bind(1, id);
  for (const char* status : {kQueued, kRunning, kSucceeded, kFailed, kCancelled}) job.counts[status] = 0;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool more, counts.Step());
    if (!more) break;
    job.counts[counts.Text(0)] = counts.Int(1);
  }
  return job;
}

Result<JobInfo> JobStore::Get(const std::string& id, const std::string& owner, bool with_tasks) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(JobInfo job, ReadJobLocked(id));
  if (job.owner != owner) return NotFound("Job '", id, "' not found");
  if (with_tasks) {
    ARROW_ASSIGN_OR_RAISE(auto tasks, db_->Prepare(
        "SELECT idx, params, status, attempts, started_ms, ended_ms, error FROM tasks "
        "WHERE job_id = ?1 ORDER BY idx", "read job tasks"));
    tasks.Bind(1, id);
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool row, tasks.Step());
      if (!row) break;
      job.tasks.push_back({tasks.Int(0), tasks.Text(1), tasks.Text(2), tasks.Int(3), tasks.Int(4),
                           tasks.Int(5), tasks.Text(6)});
    }
  }
  return job;
}

Result<std::vector<JobInfo>> JobStore::List(const std::string& owner, int64_t n, int64_t skip) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> ids;
  {
    ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
        "SELECT id FROM jobs WHERE owner = ?1 ORDER BY created_ms DESC, rowid DESC LIMIT ?2 OFFSET ?3",
        "list jobs"));
    select.Bind(1, owner).Bind(2, n).Bind(3, skip);
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
      if (!row) break;
      ids.push_back(select.Text(0));
    }
  }
  std::vector<JobInfo> jobs;
  for (const auto& id : ids) {
    ARROW_ASSIGN_OR_RAISE(JobInfo job, ReadJobLocked(id));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

Result<std::vector<LogLine>> JobStore::Logs(const std::string& id, const std::string& owner,
                                            int64_t after_id, int64_t since_ms, int64_t limit) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(JobInfo job, ReadJobLocked(id));
  if (job.owner != owner) return NotFound("Job '", id, "' not found");
  ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
      "SELECT id, ts_ms, task, stream, text FROM job_logs WHERE job_id = ?1 AND id > ?2 AND "
      "ts_ms >= ?3 ORDER BY id LIMIT ?4", "read job logs"));
  select.Bind(1, id).Bind(2, after_id).Bind(3, since_ms).Bind(4, limit);
  std::vector<LogLine> lines;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
    if (!row) break;
    lines.push_back({select.Int(0), select.Int(1), select.Int(2), select.Text(3), select.Text(4)});
  }
  return lines;
}

Result<std::vector<int64_t>> JobStore::Cancel(const std::string& id, const std::string& owner) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(JobInfo job, ReadJobLocked(id));
  if (job.owner != owner) return NotFound("Job '", id, "' not found");
  const int64_t now = NowMs();
  ARROW_ASSIGN_OR_RAISE(auto tx, Transaction::Begin(db_.get()));
  ARROW_ASSIGN_OR_RAISE(auto mark, db_->Prepare(
      "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1", "cancel a job"));
  ARROW_RETURN_NOT_OK(mark.Bind(1, id).Run());
  ARROW_ASSIGN_OR_RAISE(auto queued, db_->Prepare(
      "UPDATE tasks SET status = 'cancelled', ended_ms = ?2 WHERE job_id = ?1 AND status = 'queued'",
      "cancel queued tasks"));
  ARROW_RETURN_NOT_OK(queued.Bind(1, id).Bind(2, now).Run());
  std::vector<int64_t> running;
  {
    ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
        "SELECT idx FROM tasks WHERE job_id = ?1 AND status = 'running'", "find running tasks"));
    select.Bind(1, id);
    while (true) {
      ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
      if (!row) break;
      running.push_back(select.Int(0));
    }
  }
  if (job.ended_ms == 0) {
    ARROW_RETURN_NOT_OK(AppendLogLocked(id, -1, "job", "job cancelled", now));
  }
  ARROW_RETURN_NOT_OK(UpdateJobStatusLocked(id, now));
  ARROW_RETURN_NOT_OK(tx->Commit());
  return running;
}

Result<std::optional<ClaimedTask>> JobStore::ClaimNext() {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto tx, Transaction::Begin(db_.get()));
  ClaimedTask claimed;
  {
    ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
        "SELECT t.job_id, t.idx, t.params, t.attempts, j.kind, j.config, j.max_retry FROM tasks t "
        "JOIN jobs j ON j.id = t.job_id WHERE t.status = 'queued' AND j.cancel_requested = 0 "
        "ORDER BY t.queued_seq LIMIT 1", "find the next queued task"));
    ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
    if (!row) return std::optional<ClaimedTask>();
    claimed.job_id = select.Text(0);
    claimed.index = select.Int(1);
    claimed.params = select.Text(2);
    claimed.attempt = select.Int(3) + 1;
    claimed.kind = select.Text(4);
    claimed.config = select.Text(5);
    claimed.max_retry = select.Int(6);
  }
  const int64_t now = NowMs();
  ARROW_ASSIGN_OR_RAISE(auto task, db_->Prepare(
      "UPDATE tasks SET status = 'running', attempts = attempts + 1, started_ms = ?3, ended_ms = 0 "
      "WHERE job_id = ?1 AND idx = ?2", "start a task"));
  ARROW_RETURN_NOT_OK(task.Bind(1, claimed.job_id).Bind(2, claimed.index).Bind(3, now).Run());
  ARROW_ASSIGN_OR_RAISE(auto job, db_->Prepare(
      "UPDATE jobs SET status = 'running', started_ms = CASE WHEN started_ms = 0 THEN ?2 ELSE "
      "started_ms END WHERE id = ?1", "start a job"));
  ARROW_RETURN_NOT_OK(job.Bind(1, claimed.job_id).Bind(2, now).Run());
  ARROW_RETURN_NOT_OK(AppendLogLocked(claimed.job_id, claimed.index, "job",
                                      "task " + std::to_string(claimed.index) + " started (attempt " +
                                          std::to_string(claimed.attempt) + ")",
                                      now));
  ARROW_RETURN_NOT_OK(tx->Commit());
  return std::optional<ClaimedTask>(std::move(claimed));
}

Status JobStore::FinishTask(const std::string& job_id, int64_t index, const std::string& status,
                            const std::string& error) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t now = NowMs();
  ARROW_ASSIGN_OR_RAISE(auto tx, Transaction::Begin(db_.get()));
  ARROW_ASSIGN_OR_RAISE(auto update, db_->Prepare(
      "UPDATE tasks SET status = ?3, error = ?4, ended_ms = ?5 WHERE job_id = ?1 AND idx = ?2",
      "finish a task"));
  ARROW_RETURN_NOT_OK(update.Bind(1, job_id).Bind(2, index).Bind(3, status).Bind(4, error).Bind(5, now).Run());
  std::string line = "task " + std::to_string(index) + " " + status;
  if (!error.empty()) line += ": " + error.substr(0, error.find('\n'));
  ARROW_RETURN_NOT_OK(AppendLogLocked(job_id, index, "job", line, now));
  ARROW_RETURN_NOT_OK(UpdateJobStatusLocked(job_id, now));
  return tx->Commit();
}

Result<bool> JobStore::CancelRequested(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto select, db_->Prepare(
      "SELECT cancel_requested FROM jobs WHERE id = ?1", "check a job's cancel"));
  select.Bind(1, job_id);
  ARROW_ASSIGN_OR_RAISE(bool row, select.Step());
  return row && select.Int(0) != 0;
}

Status JobStore::Requeue(const std::string& job_id, int64_t index) {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto update, db_->Prepare(
      "UPDATE tasks SET status = 'queued', queued_seq = (SELECT MAX(queued_seq) + 1 FROM tasks) "
      "WHERE job_id = ?1 AND idx = ?2 AND status = 'running'", "queue a task again"));
  return update.Bind(1, job_id).Bind(2, index).Run();
}

Status JobStore::AppendLog(const std::string& job_id, int64_t task, const std::string& stream,
                           const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  return AppendLogLocked(job_id, task, stream, text, NowMs());
}

Status JobStore::AppendLogLocked(const std::string& job_id, int64_t task,
                                 const std::string& stream, const std::string& text,
                                 int64_t now_ms) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, std::min(end - start, kMaxLogLineBytes));
    start = end + 1;
    ARROW_ASSIGN_OR_RAISE(auto insert, db_->Prepare(
        "INSERT INTO job_logs (job_id, task, ts_ms, stream, text) VALUES (?1, ?2, ?3, ?4, ?5)",
        "append a job log line"));
    ARROW_RETURN_NOT_OK(insert.Bind(1, job_id).Bind(2, task).Bind(3, now_ms).Bind(4, stream).Bind(5, line).Run());
  }
  return Status::OK();
}

Status JobStore::UpdateJobStatusLocked(const std::string& job_id, int64_t now_ms) {
  ARROW_ASSIGN_OR_RAISE(JobInfo job, ReadJobLocked(job_id));
  if (job.ended_ms != 0) return Status::OK();
  if (job.counts[kQueued] > 0 || job.counts[kRunning] > 0) return Status::OK();
  const char* status = job.counts[kCancelled] > 0 ? kCancelled
                       : job.counts[kFailed] > 0  ? kFailed
                                                  : kSucceeded;
  ARROW_ASSIGN_OR_RAISE(auto update, db_->Prepare(
      "UPDATE jobs SET status = ?2, ended_ms = ?3 WHERE id = ?1", "end a job"));
  ARROW_RETURN_NOT_OK(update.Bind(1, job_id).Bind(2, std::string(status)).Bind(3, now_ms).Run());
  const int64_t begun = job.started_ms ? job.started_ms : job.created_ms;
  char seconds[32];
  std::snprintf(seconds, sizeof(seconds), "%.1f", static_cast<double>(now_ms - begun) / 1000.0);
  return AppendLogLocked(job_id, -1, "job",
                         "job " + std::string(status) + " in " + seconds + " s (" +
                             std::to_string(job.counts[kSucceeded]) + " succeeded, " +
                             std::to_string(job.counts[kFailed]) + " failed, " +
                             std::to_string(job.counts[kCancelled]) + " cancelled)",
                         now_ms);
}

}  // namespace terrafuse::jobs
