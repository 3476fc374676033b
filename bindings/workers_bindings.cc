// The worker pool for the SDK's local engine of fused.submit (python/fused/_submit.py): the
// same WorkerPool the server uses, started in the user's process.
#include "binding_core.h"
#include "terrafuse/workers/worker_pool.h"

namespace terrafuse::bindings {

using workers::CancelFlag;
using workers::LogLevel;
using workers::WorkerPool;
using workers::WorkerPoolOptions;
using workers::WorkerReply;
using workers::WorkerRequest;

void InitWorkers(nb::module_& m) {
  nb::class_<CancelFlag>(m, "CancelFlag", "Set it to stop the call it was passed to.")
      .def(nb::init<>())
      .def("set", [](CancelFlag& flag) { flag.store(true); })
      .def("is_set", [](const CancelFlag& flag) { return flag.load(); });

  nb::class_<WorkerPool>(m, "WorkerPool", "Warm `python -m fused._worker` processes.")
      .def_static(
          "start",
          [](std::string python, std::vector<std::string> args, int num_workers,
             std::vector<std::pair<std::string, std::string>> env, double call_timeout_seconds,
             double startup_timeout_seconds, bool log_warnings) {
            WorkerPoolOptions options;
            options.python = std::move(python);
            options.args = std::move(args);
            options.num_workers = num_workers;
            options.env = std::move(env);
            options.call_timeout_seconds = call_timeout_seconds;
            options.startup_timeout_seconds = startup_timeout_seconds;
            // Calls wait for a worker as long as they must: the SDK bounds its own threads.
            options.queue_timeout_seconds = 365.0 * 24 * 3600;
            options.max_waiting = 1 << 20;
            options.log = [log_warnings](LogLevel level, std::string_view line) {
              if (log_warnings && level == LogLevel::kWarn) workers::LogToStderr(level, line);
            };
            nb::gil_scoped_release release;
            return ValueOrThrow(WorkerPool::Start(std::move(options)));
          },
          "python"_a, "args"_a, "num_workers"_a, "env"_a, "call_timeout_seconds"_a,
          "startup_timeout_seconds"_a, "log_warnings"_a,
          "Start the workers and wait until all are ready.")
      .def(
          "run",
          [](WorkerPool& pool, std::string id, std::string udf_name, std::string code,
             std::string entrypoint, std::string udf_hash,
             std::vector<std::pair<std::string, std::string>> headers, nb::bytes payload,
             double timeout_seconds, CancelFlag* cancel) {
            WorkerRequest request;
            request.id = std::move(id);
            request.udf_name = std::move(udf_name);
            request.code = std::move(code);
            request.entrypoint = std::move(entrypoint);
            request.udf_hash = std::move(udf_hash);
            for (auto& [name, source] : headers) request.headers.push_back({name, source});
            request.pickle = true;
            request.payload.assign(payload.c_str(), payload.size());
            request.timeout_seconds = timeout_seconds;
            Result<WorkerReply> reply;
            {
              nb::gil_scoped_release release;
              reply = pool.Run(request, cancel);
            }
            ThrowIfError(reply.status());
            const WorkerReply& r = *reply;
            return std::make_tuple(r.ok, r.header_json,
                                   nb::bytes(reinterpret_cast<const char*>(r.payload->data()),
                                             static_cast<size_t>(r.payload->size())),
                                   r.worker_pid);
          },
          "id"_a, "udf_name"_a, "code"_a, "entrypoint"_a, "udf_hash"_a, "headers"_a, "payload"_a,
          "timeout_seconds"_a = 0.0, "cancel"_a = nb::none(),
          "Run pickled calls on a free worker: (ok, reply header JSON, payload, worker pid).")
      .def("grow", &WorkerPool::Grow, "num_workers"_a,
           "Raise the number of workers (started in the background); never lowers it.")
      .def("size", &WorkerPool::size)
      .def("shutdown", &WorkerPool::Shutdown, "grace_seconds"_a = 10.0,
           nb::call_guard<nb::gil_scoped_release>())
      .def("worker_pids", [](const WorkerPool& pool) {
        std::vector<int> pids;
        for (pid_t pid : pool.WorkerPids()) pids.push_back(static_cast<int>(pid));
        return pids;
      })
      .def("stats", [](const WorkerPool& pool) {
        workers::WorkerPoolStats s = pool.stats();
        nb::dict d;
        d["workers_started"] = s.workers_started;
        d["calls"] = s.calls;
        d["timeouts"] = s.timeouts;
        d["crashes"] = s.crashes;
        d["cancellations"] = s.cancellations;
        d["idle"] = s.idle;
        d["busy"] = s.busy;
        d["starting"] = s.starting;
        return d;
      });
}

}  // namespace terrafuse::bindings
