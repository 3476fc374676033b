#include "terrafuse/routes/job_routes.h"

#include <charconv>
#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "terrafuse/jobs/job_runner.h"
#include "terrafuse/jobs/job_store.h"
#include "terrafuse/routes/api_prefix.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/udf/registry.h"

namespace terrafuse::routes {

namespace {

using http::Request;
using http::Response;
using json = nlohmann::json;

constexpr int64_t kMaxTasks = 1'000'000;
constexpr int64_t kMaxLogLines = 10'000;
constexpr double kMaxTailSeconds = 30;
constexpr auto kTailPoll = std::chrono::milliseconds(100);

std::string Route(std::string_view suffix) { return std::string(kApiPrefix) + std::string(suffix); }

std::string Dump(const json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

Result<std::string> RequireOwner(const Request& request, Services& services) {
  auto header = request.headers.Find("Authorization");
  if (!header || header->empty()) {
    return Unauthenticated("This route needs an API token: send 'Authorization: Bearer <token>'");
  }
  return services.registry->Authenticate(*header);
}

Result<jobs::JobStore*> Store(Services& services) {
  if (services.jobs == nullptr) return Unavailable("This server runs no jobs");
  return services.jobs;
}

Result<int64_t> IntQuery(const Request& request, std::string_view name, int64_t fallback, int64_t min,
                         int64_t max) {
  auto text = request.Query(name);
  if (!text) return fallback;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (text->empty() || ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return InvalidArgument("Invalid ", name, " '", *text, "': expected an integer from ", min, " to ", max);
  }
  return value;
}

json JobJson(const jobs::JobInfo& job, bool full) {
  int64_t total = 0;
  for (const auto& [status, n] : job.counts) total += n;
  json doc = {{"id", job.id},           {"owner", job.owner},           {"kind", job.kind},
              {"name", job.name},       {"status", job.status},         {"created_ms", job.created_ms},
              {"started_ms", job.started_ms}, {"ended_ms", job.ended_ms}, {"max_retry", job.max_retry},
              {"num_tasks", total},     {"tasks", job.counts}};
  if (full) {
    doc["config"] = json::parse(job.config, nullptr, false);
    json tasks = json::array();
    for (const auto& t : job.tasks) {
      tasks.push_back({{"index", t.index}, {"params", json::parse(t.params, nullptr, false)},
                       {"status", t.status}, {"attempts", t.attempts}, {"started_ms", t.started_ms},
                       {"ended_ms", t.ended_ms}, {"error", t.error}});
    }
    doc["task_list"] = std::move(tasks);
  }
  return doc;
}

json LogsJson(const std::vector<jobs::LogLine>& lines) {
  json out = json::array();
  for (const auto& l : lines) {
    out.push_back({{"id", l.id}, {"ts_ms", l.ts_ms}, {"task", l.task}, {"stream", l.stream}, {"text", l.text}});
  }
  return out;
}

// POST /jobs {"kind", "name", "config": {...}, "tasks": [{...}, ...], "max_retry"}
Result<Response> CreateJob(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return InvalidArgument("The request body must be a JSON object");
  auto kind = body.find("kind");
  if (kind == body.end() || !kind->is_string() || kind->get_ref<const std::string&>().empty()) {
    return InvalidArgument("A job needs 'kind', a non-empty string such as \"udf\"");
  }
  json config = body.value("config", json::object());
  if (!config.is_object()) return InvalidArgument("'config' must be a JSON object");
  auto tasks = body.find("tasks");
  if (tasks == body.end() || !tasks->is_array() || tasks->empty()) {
    return InvalidArgument("A job needs 'tasks', a non-empty list of parameter objects (one per task)");
  }
  if (static_cast<int64_t>(tasks->size()) > kMaxTasks) {
    return InvalidArgument("A job has at most ", kMaxTasks, " tasks, got ", tasks->size());
  }
  std::vector<std::string> params;
  for (size_t i = 0; i < tasks->size(); ++i) {
    if (!(*tasks)[i].is_object()) return InvalidArgument("tasks[", i, "] must be a JSON object of parameters");
    params.push_back(Dump((*tasks)[i]));
  }
  json max_retry = body.value("max_retry", json(0));
  if (!max_retry.is_number_integer()) return InvalidArgument("'max_retry' must be an integer from 0 to 100");
  json name = body.value("name", json(""));
  if (!name.is_string()) return InvalidArgument("'name' must be a string");
  ARROW_ASSIGN_OR_RAISE(std::string id, store->Create(owner, *kind, name.get<std::string>(), Dump(config),
                                                      params, max_retry.get<int64_t>()));
  if (services.job_runner != nullptr) services.job_runner->Wake();
  ARROW_ASSIGN_OR_RAISE(jobs::JobInfo job, store->Get(id, owner, false));
  return Response::Json(Dump(JobJson(job, false)), 201);
}

Result<Response> ListJobs(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  ARROW_ASSIGN_OR_RAISE(int64_t n, IntQuery(request, "n", 25, 1, 1000));
  ARROW_ASSIGN_OR_RAISE(int64_t skip, IntQuery(request, "skip", 0, 0, int64_t{1} << 40));
  ARROW_ASSIGN_OR_RAISE(auto list, store->List(owner, n, skip));
  json out = json::array();
  for (const auto& job : list) out.push_back(JobJson(job, false));
  return Response::Json(Dump(out));
}

Result<Response> GetJob(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobInfo job, store->Get(std::string(*request.PathParam("id")), owner, true));
  return Response::Json(Dump(JobJson(job, true)));
}

Result<Response> JobLogs(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  ARROW_ASSIGN_OR_RAISE(int64_t after, IntQuery(request, "after", 0, 0, INT64_MAX));
  ARROW_ASSIGN_OR_RAISE(int64_t since, IntQuery(request, "since_ms", 0, 0, INT64_MAX));
  ARROW_ASSIGN_OR_RAISE(int64_t limit, IntQuery(request, "limit", kMaxLogLines, 1, kMaxLogLines));
  ARROW_ASSIGN_OR_RAISE(auto lines, store->Logs(std::string(*request.PathParam("id")), owner, after, since, limit));
  return Response::Json(Dump(LogsJson(lines)));
}

// Long poll: answers as soon as there are lines after `after`, the job has ended, or
// `timeout` seconds (at most 30) have passed. {"status", "lines": [...]}
Result<Response> TailJobLogs(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  ARROW_ASSIGN_OR_RAISE(int64_t after, IntQuery(request, "after", 0, 0, INT64_MAX));
  ARROW_ASSIGN_OR_RAISE(int64_t timeout, IntQuery(request, "timeout", 10, 0, static_cast<int64_t>(kMaxTailSeconds)));
  const std::string id(*request.PathParam("id"));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  while (true) {
    ARROW_ASSIGN_OR_RAISE(auto lines, store->Logs(id, owner, after, 0, kMaxLogLines));
    ARROW_ASSIGN_OR_RAISE(jobs::JobInfo job, store->Get(id, owner, false));
    if (!lines.empty() || job.ended_ms != 0 || std::chrono::steady_clock::now() >= deadline ||
        request.cancelled()) {
      return Response::Json(Dump({{"status", job.status}, {"lines", LogsJson(lines)}}));
    }
    std::this_thread::sleep_for(kTailPoll);
  }
}

Result<Response> CancelJob(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(jobs::JobStore * store, Store(services));
  const std::string id(*request.PathParam("id"));
  ARROW_ASSIGN_OR_RAISE(std::vector<int64_t> running, store->Cancel(id, owner));
  if (services.job_runner != nullptr) services.job_runner->Cancel(id, running);
  ARROW_ASSIGN_OR_RAISE(jobs::JobInfo job, store->Get(id, owner, false));
  return Response::Json(Dump(JobJson(job, false)));
}

}  // namespace

Status RegisterJobRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/jobs"), CreateJob));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/jobs"), ListJobs));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/jobs/{id}"), GetJob));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/jobs/{id}/logs"), JobLogs));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/jobs/{id}/logs/tail"), TailJobLogs));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/jobs/{id}/cancel"), CancelJob));
  return Status::OK();
}

}  // namespace terrafuse::routes
