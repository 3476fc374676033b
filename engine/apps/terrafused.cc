// terrafused: the realtime server. Parses flags, builds the route table and the services,
// binds, prints the startup line tests and `terrafuse serve` wait for, and serves until
// SIGINT/SIGTERM. Exit codes: 0 after a graceful shutdown, 2 for bad flags or an address
// it cannot listen on, 1 when in-flight requests had to be cut off at shutdown.
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "terrafuse/cache/result_cache.h"
#include "terrafuse/common/status.h"
#include "terrafuse/encode/encoder.h"
#include "terrafuse/http/http_server.h"
#include "terrafuse/http/log.h"
#include "terrafuse/jobs/job_runner.h"
#include "terrafuse/jobs/job_store.h"
#include "terrafuse/routes/builtin_routes.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/storage/file_system.h"
#include "terrafuse/storage/signed_url.h"
#include "terrafuse/udf/registry.h"
#include "terrafuse/workers/worker_pool.h"

namespace {

using terrafuse::InvalidArgument;
using terrafuse::Result;
using terrafuse::Status;
namespace http = terrafuse::http;

constexpr int kExitBadInvocation = 2;
constexpr int kExitShutdownCutShort = 1;
constexpr std::chrono::seconds kStorageFinalizeGrace{3};

constexpr const char* kUsage = R"(Usage: terrafused [options]

Serves UDFs over HTTP: Fused's /server/v1 API, tiles and files (docs/server.md).

Options:
  --host HOST        address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --port PORT        port to listen on (default 8000; 0 picks a free port)
  --home DIR         data home (default $TERRAFUSE_HOME, else ~/.terrafuse); created if missing
  --workers N        Python worker processes (default: one per core)
  --threads N        request handler threads (default: four per core, at least 16)
  --io-threads N     network threads, which also answer cached results (default: one per core)
  --python PATH      interpreter of the workers (default $TERRAFUSE_PYTHON, else python3)
  --udf-timeout SEC  limit of one UDF call (default 120)
  --worker-memory MB address-space limit of each worker (default: none)
  --worker-max-calls N  replace a worker after N calls (default: never)
  --fd-root URI      where fd:// lives: a directory or s3://bucket/prefix (default
                     $TERRAFUSE_FD_ROOT, else <home>/fd); S3 settings come from
                     TERRAFUSE_S3_ENDPOINT and the AWS_* variables
  --cache-uri URI    where cached UDF results persist: a directory, s3://bucket/prefix or an
                     fd:// path (default $TERRAFUSE_CACHE_URI, else <home>/cache/results)
  --job-slots N      job tasks running at once on the workers (default: workers - 1, at least 1)
  --log-level LEVEL  debug, info, warn or error (default $TERRAFUSE_LOG, else info)
  --web-root DIR     the built workbench served at /workbench (default: ../web beside the
                     binary, which is fused/web in the Python package)
  --debug-routes     also serve /server/v1/_debug/... (for the HTTP tests only)
  -h, --help         print this help and exit

Once listening it prints "terrafused listening on http://HOST:PORT" to stderr, then the
workbench's address with the local API token (read from <home>/credentials).
SIGINT or SIGTERM: stop accepting, let in-flight requests finish (up to 10 s), exit 0;
a second signal stops at once.
)";

struct Flags {
  std::string host = "127.0.0.1";
  uint16_t port = http::kDefaultPort;
  std::string home;
  std::string fd_root;
  std::string cache_uri;
  int workers = 0;
  int threads = 0;
  int io_threads = 0;
  std::string python = "python3";
  double udf_timeout_seconds = 120;
  int64_t worker_memory_mb = 0;
  int64_t worker_max_calls = 0;
  int job_slots = 0;
  http::LogLevel log_level = http::LogLevel::kInfo;
  std::string web_root;
  bool debug_routes = false;
  bool help = false;
};

int CoreCount() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

Result<int64_t> ParseInteger(std::string_view flag, std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return InvalidArgument("Invalid ", flag, " '", text, "': expected an integer from ", min, " to ", max);
  }
  return value;
}

std::string DefaultHome() {
  if (const char* env = std::getenv("TERRAFUSE_HOME"); env != nullptr && *env != '\0') return env;
  const char* user_home = std::getenv("HOME");
  if (user_home == nullptr || *user_home == '\0') {
    const passwd* entry = ::getpwuid(::getuid());
    user_home = entry != nullptr ? entry->pw_dir : "/tmp";
  }
  return std::string(user_home) + "/.terrafuse";
}

Result<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  flags.home = DefaultHome();
  if (const char* env = std::getenv("TERRAFUSE_PYTHON"); env != nullptr && *env != '\0') flags.python = env;
  if (const char* env = std::getenv("TERRAFUSE_CACHE_URI"); env != nullptr && *env != '\0') flags.cache_uri = env;
  if (const char* env = std::getenv("TERRAFUSE_LOG"); env != nullptr && *env != '\0') {
    auto level = http::ParseLogLevel(env);
    if (!level.ok()) return InvalidArgument("TERRAFUSE_LOG: ", level.status().message());
    flags.log_level = *level;
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    // Returns the option's value: "--port=8000" or "--port 8000".
    auto value = [&]() -> Result<std::string_view> {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) return InvalidArgument("Option ", name, " needs a value");
      return std::string_view(argv[++i]);
    };
    if (name == "-h" || name == "--help") {
      flags.help = true;
    } else if (name == "--debug-routes" && !inline_value) {
      flags.debug_routes = true;
    } else if (name == "--host") {
      ARROW_ASSIGN_OR_RAISE(std::string_view host, value());
      if (host.empty()) return InvalidArgument("Invalid --host '': give an address such as 127.0.0.1");
      flags.host = std::string(host);
    } else if (name == "--port") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t port, ParseInteger(name, text, 0, 65535));
      flags.port = static_cast<uint16_t>(port);
    } else if (name == "--home") {
      ARROW_ASSIGN_OR_RAISE(std::string_view home, value());
      if (home.empty()) return InvalidArgument("Invalid --home '': give a directory");
      flags.home = std::string(home);
    } else if (name == "--fd-root") {
      ARROW_ASSIGN_OR_RAISE(std::string_view root, value());
      if (root.empty()) return InvalidArgument("Invalid --fd-root '': give a directory or s3://bucket/prefix");
      flags.fd_root = std::string(root);
    } else if (name == "--cache-uri") {
      ARROW_ASSIGN_OR_RAISE(std::string_view uri, value());
      if (uri.empty()) return InvalidArgument("Invalid --cache-uri '': give a directory or s3://bucket/prefix");
      flags.cache_uri = std::string(uri);
    } else if (name == "--workers") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t workers, ParseInteger(name, text, 1, 1024));
      flags.workers = static_cast<int>(workers);
    } else if (name == "--threads") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t threads, ParseInteger(name, text, 1, 4096));
      flags.threads = static_cast<int>(threads);
    } else if (name == "--io-threads") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t threads, ParseInteger(name, text, 1, 256));
      flags.io_threads = static_cast<int>(threads);
    } else if (name == "--python") {
      ARROW_ASSIGN_OR_RAISE(std::string_view python, value());
      if (python.empty()) return InvalidArgument("Invalid --python '': give an interpreter");
      flags.python = std::string(python);
    } else if (name == "--udf-timeout") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t seconds, ParseInteger(name, text, 1, 86400));
      flags.udf_timeout_seconds = static_cast<double>(seconds);
    } else if (name == "--worker-memory") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(flags.worker_memory_mb, ParseInteger(name, text, 256, int64_t{1} << 30));
    } else if (name == "--worker-max-calls") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(flags.worker_max_calls, ParseInteger(name, text, 1, int64_t{1} << 40));
    } else if (name == "--web-root") {
      ARROW_ASSIGN_OR_RAISE(std::string_view root, value());
      if (!std::filesystem::is_regular_file(std::filesystem::path(root) / "index.html")) {
        return InvalidArgument("Invalid --web-root '", root, "': no index.html there (build it: cd web && npm run build)");
      }
      flags.web_root = std::string(root);
    } else if (name == "--job-slots") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(int64_t slots, ParseInteger(name, text, 1, 1024));
      flags.job_slots = static_cast<int>(slots);
    } else if (name == "--log-level") {
      ARROW_ASSIGN_OR_RAISE(std::string_view text, value());
      ARROW_ASSIGN_OR_RAISE(flags.log_level, http::ParseLogLevel(text));
    } else if (arg.starts_with("-")) {
      return InvalidArgument("Unknown option '", arg, "'");
    } else {
      return InvalidArgument("Unexpected argument '", arg, "': terrafused takes only options");
    }
  }
  if (flags.web_root.empty()) {
    // Installed package: fused/bin/terrafused → fused/web.
    std::error_code ec;
    std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::filesystem::path beside = exe.parent_path().parent_path() / "web";
    if (!ec && std::filesystem::is_regular_file(beside / "index.html", ec)) flags.web_root = beside.string();
  }
  if (flags.workers == 0) flags.workers = CoreCount();
  // Jobs leave a worker to realtime requests, which would otherwise queue behind long tasks.
  if (flags.job_slots == 0) flags.job_slots = std::max(1, flags.workers - 1);
  // Handlers mostly wait (on workers, on disk), so more threads than cores pays off; calls
  // waiting for a worker are what the pool batches (WorkerPool::Run).
  if (flags.threads == 0) flags.threads = std::max(16, 4 * CoreCount());
  // One per core, as nginx's workers: each runs its own event loop, and sleeps when idle.
  if (flags.io_threads == 0) flags.io_threads = CoreCount();
  return flags;
}

// The local user's API token, in <home>/credentials (mode 0600), created on first start:
// the SDK on this machine reads it to reach the private routes.
Status EnsureCredentials(terrafuse::udf::Registry& registry, const std::string& home) {
  const std::string path = home + "/credentials";
  if (std::filesystem::exists(path)) return Status::OK();
  ARROW_ASSIGN_OR_RAISE(std::string token, registry.CreateApiToken(terrafuse::udf::Registry::kLocalUser));
  const std::string tmp = path + ".tmp";
  FILE* file = std::fopen(tmp.c_str(), "w");
  if (file == nullptr) return terrafuse::IOError("Cannot write '", tmp, "'");
  ::fchmod(::fileno(file), 0600);
  std::fputs((token + "\n").c_str(), file);
  if (std::fclose(file) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return terrafuse::IOError("Cannot write '", path, "'");
  }
  return Status::OK();
}

// The result cache's persistent tier: a local directory, or an object store (s3://, or fd://
// when fd:// is on S3) resolved through the storage layer.
Result<terrafuse::cache::ResultCacheOptions> ResultCacheOptionsFor(const Flags& flags,
                                                                   terrafuse::storage::StorageConfig config) {
  terrafuse::cache::ResultCacheOptions options;
  if (flags.cache_uri.empty()) {
    options.disk_root = flags.home + "/cache/results";
    return options;
  }
  config.allow_local = true;  // the operator's own setting, not a client's path
  auto where = terrafuse::storage::ResolveUri(flags.cache_uri, config);
  if (!where.ok()) return InvalidArgument("Invalid --cache-uri '", flags.cache_uri, "': ", where.status().message());
  if (where->uri.starts_with("http")) return InvalidArgument("Invalid --cache-uri '", flags.cache_uri, "': http(s) is read-only");
  if (where->local) {
    options.disk_root = where->path;
  } else {
    options.object_fs = where->fs;
    options.object_root = where->path;
  }
  return options;
}

int Fail(int exit_code, const Status& status) {
  std::fprintf(stderr, "terrafused: %s\n", status.message().c_str());
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stderr pipe must not kill the server; sockets already use MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);

  Result<Flags> parsed = ParseFlags(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "terrafused: %s\nRun 'terrafused --help' for the options.\n",
                 parsed.status().message().c_str());
    return kExitBadInvocation;
  }
  const Flags& flags = *parsed;
  if (flags.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  http::SetLogLevel(flags.log_level);

  std::error_code ec;
  std::filesystem::create_directories(flags.home, ec);
  if (ec) {
    return Fail(kExitBadInvocation,
                InvalidArgument("Cannot create the data home '", flags.home, "': ", ec.message()));
  }

  terrafuse::Services services;
  services.home = flags.home;
  services.web_root = flags.web_root;
  auto registry = terrafuse::udf::Registry::Open(flags.home);
  if (!registry.ok()) return Fail(1, registry.status());
  services.registry = *registry;
  if (Status st = EnsureCredentials(**registry, flags.home); !st.ok()) return Fail(1, st);
  terrafuse::encode::EncoderRegistry encoders;
  if (Status st = terrafuse::encode::RegisterBuiltins(encoders); !st.ok()) return Fail(1, st);
  services.encoders = &encoders;
  auto storage_config = terrafuse::storage::StorageConfig::FromEnvironment(flags.home);
  if (!flags.fd_root.empty()) storage_config.fd_root = flags.fd_root;
  auto cache_options = ResultCacheOptionsFor(flags, storage_config);
  if (!cache_options.ok()) return Fail(1, cache_options.status());
  auto results = terrafuse::cache::ResultCache::Make(*cache_options);
  if (!results.ok()) return Fail(1, results.status());
  services.results = *results;
  storage_config.allow_local = false;  // clients name fd:// files only, never the server's disk
  auto signing_key = terrafuse::storage::LoadOrCreateSigningKey(flags.home);
  if (!signing_key.ok()) return Fail(1, signing_key.status());
  services.signing_key = *signing_key;
  terrafuse::workers::WorkerPoolOptions pool_options;
  pool_options.python = flags.python;
  pool_options.num_workers = flags.workers;
  pool_options.call_timeout_seconds = flags.udf_timeout_seconds;
  pool_options.memory_limit_bytes = flags.worker_memory_mb << 20;
  pool_options.max_calls_per_worker = flags.worker_max_calls;
  pool_options.env.emplace_back("TERRAFUSE_HOME", flags.home);
  // UDFs resolve fd:// to the same store as the files API.
  if (!storage_config.fd_root.empty()) pool_options.env.emplace_back("TERRAFUSE_FD_ROOT", storage_config.fd_root);
  services.storage = std::make_shared<const terrafuse::storage::StorageConfig>(std::move(storage_config));
  auto pool = terrafuse::workers::WorkerPool::Start(pool_options);
  if (!pool.ok()) return Fail(1, pool.status());
  services.pool = pool->get();
  // Jobs: the store recovers tasks a previous run left running; the runner executes them.
  auto job_store = terrafuse::jobs::JobStore::Open(flags.home + "/jobs.db");
  if (!job_store.ok()) return Fail(1, job_store.status());
  services.jobs = job_store->get();
  if ((*job_store)->recovered() > 0) {
    TF_LOG(http::LogLevel::kInfo, "jobs_recovered", {"tasks", std::to_string((*job_store)->recovered())});
  }
  auto job_runner = terrafuse::jobs::JobRunner::Start(job_store->get(), pool->get(), flags.job_slots,
                                                     flags.home + "/job_logs");
  if (!job_runner.ok()) return Fail(1, job_runner.status());
  services.job_runner = job_runner->get();
  http::Router router;
  Status routes = terrafuse::routes::RegisterBuiltinRoutes(router, {.debug_routes = flags.debug_routes});
  if (!routes.ok()) return Fail(1, routes);  // a bug in the route table, not in the invocation
  const size_t route_count = router.size();

  http::HttpServerOptions options;
  options.host = flags.host;
  options.port = flags.port;
  options.handler_threads = flags.threads;
  options.io_threads = flags.io_threads;
  options.handle_signals = true;
  auto server = http::HttpServer::Make(options, std::move(router), services);
  if (!server.ok()) return Fail(kExitBadInvocation, server.status());
  services.metrics = &(*server)->metrics();

  TF_LOG(http::LogLevel::kInfo, "started", {"home", flags.home}, {"workers", std::to_string(flags.workers)},
         {"threads", std::to_string(flags.threads)},
         {"io_threads", std::to_string(flags.io_threads)}, {"routes", std::to_string(route_count)},
         {"debug_routes", flags.debug_routes ? "true" : "false"});
  const std::string& host = (*server)->host();
  const bool ipv6 = host.find(':') != std::string::npos;
  std::fprintf(stderr, "terrafused listening on http://%s%s%s:%u\n", ipv6 ? "[" : "", host.c_str(),
               ipv6 ? "]" : "", static_cast<unsigned>((*server)->port()));
  if (!flags.web_root.empty()) {
    // The token rides in the fragment: browsers never send it, so it stays out of logs.
    std::ifstream credentials(flags.home + "/credentials");
    std::string token;
    std::getline(credentials, token);
    std::fprintf(stderr, "terrafused workbench: http://%s%s%s:%u/workbench#token=%s\n", ipv6 ? "[" : "",
                 host == "0.0.0.0" ? "127.0.0.1" : host.c_str(), ipv6 ? "]" : "",
                 static_cast<unsigned>((*server)->port()), token.c_str());
  }
  std::fflush(stderr);

  Status stopped = (*server)->Run();
  (*job_runner)->Stop();  // running tasks stay "running": the next start runs them again
  if (!stopped.ok()) {
    // Handlers that ignored cancellation may still be running: exit without waiting on them.
    TF_LOG(http::LogLevel::kError, "stopped", {"error", stopped.message()});
    std::_Exit(kExitShutdownCutShort);
  }
  TF_LOG(http::LogLevel::kInfo, "stopped");
  (*pool)->Shutdown();  // reaps the workers now, whatever the storage finalisation does
  // An S3 request still in flight (the last part of an upload the client abandoned) holds
  // the AWS SDK's finaliser until it ends, which a slow store can stretch past any
  // supervisor's patience. Every answer is sent and nothing is left to write: give it a few
  // seconds, then exit without it.
  auto finalized = std::make_shared<std::promise<void>>();  // shared: the thread may outlive main
  std::future<void> done = finalized->get_future();
  std::thread([finalized] {
    terrafuse::storage::FinalizeStorage();
    finalized->set_value();
  }).detach();
  if (done.wait_for(kStorageFinalizeGrace) == std::future_status::ready) return 0;
  TF_LOG(http::LogLevel::kWarn, "storage_finalize_skipped",
         {"reason", "S3 requests still in flight after " + std::to_string(kStorageFinalizeGrace.count()) + " s"});
  std::fflush(nullptr);
  std::_Exit(0);
}
