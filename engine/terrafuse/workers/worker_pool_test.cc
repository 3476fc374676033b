#include "terrafuse/workers/worker_pool.h"

#include <nlohmann/json.hpp>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>
#include <arrow/util/key_value_metadata.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <thread>

#include "terrafuse/workers/workers_test_internal.h"

namespace terrafuse::workers {
namespace {

using testing::ExpectMessage;
using testing::LogCapture;
using testing::Reaped;
using testing::TestPoolOptions;
using testing::UdfRequest;

std::unique_ptr<WorkerPool> StartPool(WorkerPoolOptions options) {
  auto pool = WorkerPool::Start(std::move(options));
  EXPECT_TRUE(pool.ok()) << pool.status().ToString();
  return pool.ok() ? std::move(*pool) : nullptr;
}

nlohmann::json JsonPayload(const WorkerReply& reply) {
  EXPECT_EQ(reply.kind, ReplyKind::kJson);
  return nlohmann::json::parse(reply.payload->ToString());
}

// Runs `request` and expects an ok reply.
WorkerReply RunOk(WorkerPool* pool, const WorkerRequest& request) {
  auto reply = pool->Run(request);
  EXPECT_TRUE(reply.ok()) << reply.status().ToString();
  if (!reply.ok()) return {};
  EXPECT_TRUE(reply->ok) << reply->header_json;
  return std::move(*reply);
}

const WorkerRequest& PidRequest() {
  static const WorkerRequest request =
      UdfRequest("pid", "", "    import os\n    return os.getpid()\n");
  return request;
}

pid_t PidOf(WorkerPool* pool) { return JsonPayload(RunOk(pool, PidRequest())).get<pid_t>(); }

// -- one shared pool for the tests that do not break workers ---------------------------------

class WorkerPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    log_ = new LogCapture;
    pool_ = StartPool(TestPoolOptions(2, log_)).release();
  }
  static void TearDownTestSuite() {
    delete pool_;
    delete log_;
  }
  void SetUp() override { ASSERT_NE(pool_, nullptr); }

  static WorkerPool* pool_;
  static LogCapture* log_;
};

WorkerPool* WorkerPoolTest::pool_ = nullptr;
LogCapture* WorkerPoolTest::log_ = nullptr;

TEST_F(WorkerPoolTest, TrivialRoundTripCapturesStdoutWithoutLeakingIt) {
  WorkerReply reply =
      RunOk(pool_, UdfRequest("double", "n: int = 1",
                              "    print('doubling', n)\n    return n * 2\n", {{"n", "21"}}));
  EXPECT_EQ(JsonPayload(reply), 42);
  EXPECT_EQ(reply.captured_stdout(), "doubling 21\n");
  EXPECT_EQ(reply.captured_stderr(), "");
  EXPECT_GT(reply.worker_pid, 0);
  EXPECT_GT(reply.seconds, 0);
  EXPECT_FALSE(log_->Contains("doubling")) << log_->Joined();
}

TEST_F(WorkerPoolTest, StringParametersAreCoercedByAnnotation) {
  WorkerReply reply = RunOk(
      pool_,
      UdfRequest("typed",
                 "n: int = 0, x: float = 0.0, flag: bool = False, items: list = None, name='?'",
                 "    return {'n': n, 'x': x, 'flag': flag, 'items': items, 'name': name}\n",
                 {{"n", "7"}, {"x", "2.5"}, {"flag", "true"}, {"items", "a,b"}, {"name", "ünï"}}));
  EXPECT_EQ(JsonPayload(reply),
            nlohmann::json::parse(R"({"n":7,"x":2.5,"flag":true,"items":["a","b"],"name":"ünï"})"));
}

TEST_F(WorkerPoolTest, TileAndBoundsReachTheUdf) {
  WorkerRequest request =
      UdfRequest("bounded", "bounds: fused.types.Bounds = None", "    return bounds\n");
  request.tile = std::array<int64_t, 3>{0, 0, 0};
  auto bounds = JsonPayload(RunOk(pool_, request));
  ASSERT_EQ(bounds.size(), 4u);
  EXPECT_NEAR(bounds[0].get<double>(), -180, 1e-9);
  EXPECT_NEAR(bounds[3].get<double>(), 85.0511, 1e-3);
  request.tile.reset();
  request.bounds = std::array<double, 4>{1, 2, 3, 4};
  EXPECT_EQ(JsonPayload(RunOk(pool_, request)), nlohmann::json::parse("[1.0,2.0,3.0,4.0]"));
}

TEST_F(WorkerPoolTest, TableReplyDecodesAsArrowWithGeoMetadata) {
  WorkerReply reply = RunOk(
      pool_, UdfRequest("points", "n: int = 3",
                        "    import geopandas as gpd, shapely\n"
                        "    return gpd.GeoDataFrame({'i': list(range(n))},\n"
                        "        geometry=[shapely.Point(i, i) for i in range(n)], crs=4326)\n",
                        {{"n", "5"}}));
  ASSERT_EQ(reply.kind, ReplyKind::kTable);
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(
      std::make_shared<arrow::io::BufferReader>(reply.payload));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto table = (*reader)->ToTable();
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  EXPECT_EQ((*table)->num_rows(), 5);
  EXPECT_NE((*table)->schema()->GetFieldByName("geometry"), nullptr);
  auto metadata = (*table)->schema()->metadata();
  ASSERT_NE(metadata, nullptr);
  auto geo = metadata->Get("geo");
  ASSERT_TRUE(geo.ok());
  auto geo_json = nlohmann::json::parse(*geo);
  EXPECT_EQ(geo_json["primary_column"], "geometry");
  EXPECT_EQ(geo_json["columns"]["geometry"]["encoding"], "WKB");
}

TEST_F(WorkerPoolTest, RasterReplyCarriesShapeDtypeAndBounds) {
  WorkerReply reply =
      RunOk(pool_,
            UdfRequest("raster", "",
                       "    import numpy as np\n"
                       "    return np.arange(24, dtype='uint8').reshape(2, 3, 4), [0, 0, 1, 1]\n"));
  ASSERT_EQ(reply.kind, ReplyKind::kRaster);
  EXPECT_EQ(reply.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(reply.dtype, "uint8");
  ASSERT_TRUE(reply.bounds.has_value());
  EXPECT_EQ(*reply.bounds, (std::array<double, 4>{0, 0, 1, 1}));
  ASSERT_EQ(reply.payload->size(), 24);
  EXPECT_EQ(reply.payload->data()[23], 23);
}

TEST_F(WorkerPoolTest, UdfErrorIsAReplyWithTheUdfsTraceback) {
  auto reply = pool_->Run(UdfRequest("broken", "", "    print('before')\n    return 1 / 0\n"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_FALSE(reply->ok);
  EXPECT_EQ(reply->error_kind(), "udf_failed");
  EXPECT_EQ(reply->error_type(), "ZeroDivisionError");
  EXPECT_EQ(reply->error_message(), "UDF 'broken' raised ZeroDivisionError: division by zero");
  std::string traceback(reply->traceback());
  EXPECT_NE(traceback.find("in udf"), std::string::npos) << traceback;
  EXPECT_NE(traceback.find("return 1 / 0"), std::string::npos) << traceback;
  EXPECT_EQ(traceback.find("fused/_worker"), std::string::npos)
      << "engine frames leak: " << traceback;
  EXPECT_EQ(reply->captured_stdout(), "before\n");
  EXPECT_EQ(KindOf(ReplyStatus(*reply)), ErrorKind::kUdfFailed);
  // The worker survives its UDF's exception.
  RunOk(pool_, PidRequest());
}

TEST_F(WorkerPoolTest, BadParametersAreInvalidArgumentReplies) {
  auto reply = pool_->Run(UdfRequest("strict", "n: int = 1", "    return n\n", {{"nope", "1"}}));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->error_kind(), "invalid_argument");
  EXPECT_EQ(reply->error_message(), "Unknown parameter 'nope' for UDF 'strict': it takes n");
  reply = pool_->Run(UdfRequest("strict", "n: int = 1", "    return n\n", {{"n", "abc"}}));
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->error_kind(), "invalid_argument");
  EXPECT_NE(
      reply->error_message().find("Invalid value for parameter 'n' of UDF 'strict': expected int"),
      std::string_view::npos)
      << reply->error_message();
}

TEST_F(WorkerPoolTest, ConcurrentCallsAllSucceed) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 10;
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        int n = t * 100 + i;
        auto reply = pool_->Run(
            UdfRequest("echo", "n: int = 0", "    return n\n", {{"n", std::to_string(n)}}));
        if (reply.ok() && reply->ok && nlohmann::json::parse(reply->payload->ToString()) == n)
          ++succeeded;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded.load(), kThreads * kCalls);
  EXPECT_EQ(pool_->stats().busy, 0);
}

TEST_F(WorkerPoolTest, WhatAWorkerWritesToItsStderrIsLoggedWithItsPid) {
  WorkerReply reply =
      RunOk(pool_, UdfRequest("native", "",
                              "    import os\n    os.write(2, b'native library says hi\\n')\n"
                              "    return 1\n"));
  EXPECT_TRUE(
      log_->Contains("worker=" + std::to_string(reply.worker_pid) + " native library says hi"))
      << log_->Joined();
  EXPECT_EQ(reply.captured_stderr(), "")
      << "fd 2 is the worker's own stderr, not the UDF's captured one";
}

TEST_F(WorkerPoolTest, ACallCancelledBeforeItStartsTouchesNoWorker) {
  auto before = pool_->stats();
  CancelFlag cancel{true};
  auto reply = pool_->Run(PidRequest(), &cancel);
  EXPECT_TRUE(reply.status().IsCancelled());
  ExpectMessage(reply.status(), "The call of UDF 'pid' was cancelled before it started");
  auto after = pool_->stats();
  EXPECT_EQ(after.calls, before.calls);
  EXPECT_EQ(after.workers_started, before.workers_started) << "no worker was killed and replaced";
}

TEST_F(WorkerPoolTest, WarmRoundTripLatency) {
  WorkerRequest request = UdfRequest("trivial", "n: int = 1", "    return n\n", {{"n", "1"}});
  request.udf_hash = "trivial-v1";
  for (int i = 0; i < 50; ++i) RunOk(pool_, request);  // warm both workers
  std::vector<double> micros;
  for (int i = 0; i < 1000; ++i) {
    auto start = Clock::now();
    auto reply = pool_->Run(request);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    ASSERT_TRUE(reply.ok() && reply->ok);
  }
  std::sort(micros.begin(), micros.end());
  std::printf("warm trivial UDF round trip over %zu calls: p50 %.0f us, p90 %.0f us, p99 %.0f us\n",
              micros.size(), micros[500], micros[900], micros[990]);
  EXPECT_LT(micros[500], 5000) << "p50 should be well under a millisecond on an idle machine";
}

TEST_F(WorkerPoolTest, UnicodeInvalidRequestIsRefusedBeforeAnyWorker) {
  auto reply = pool_->Run(UdfRequest("u", "", "    return 1\n", {{"bad", "\xff"}}));
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kInvalidArgument);
  ExpectMessage(reply.status(), "The value of parameter 'bad' of UDF 'u' is not valid UTF-8");
}

// -- pools of their own: workers are broken on purpose -------------------------------------

TEST_F(WorkerPoolTest, PickledCallsGetAPickleReply) {
  WorkerRequest request = UdfRequest("pickled", "n: int = 1", "    print('n', n)\n    return n * 2\n");
  request.pickle = true;
  request.payload = "(lp0\n(dp1\nVn\np2\nI21\nsa.";  // pickle protocol 0 of [{'n': 21}]
  WorkerReply reply = RunOk(pool_, request);
  ASSERT_EQ(reply.kind, ReplyKind::kPickle);
  std::string pickled = reply.payload->ToString();  // (42, 'n 21\n', '') in protocol 5
  EXPECT_NE(pickled.find("n 21"), std::string::npos);
  EXPECT_EQ(reply.captured_stdout(), "");  // captured output travels inside the pickle

  request.payload = "not a pickle";
  auto bad = pool_->Run(request);
  ASSERT_TRUE(bad.ok()) << bad.status().ToString();
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->error_kind(), "invalid_argument");
  EXPECT_NE(bad->error_message().find("cannot be unpickled"), std::string::npos);
}

TEST(WorkerPoolGrowTest, GrowStartsMoreWorkersWhileServing) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pool->Grow(3);
  EXPECT_EQ(pool->size(), 3);
  PidOf(pool.get());  // the first worker serves while the others start
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (pool->WorkerPids().size() < 3 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(pool->WorkerPids().size(), 3u) << log.Joined();
  pool->Grow(2);  // never shrinks
  EXPECT_EQ(pool->size(), 3);
}

TEST(WorkerPoolGrowTest, NestedCallsGetATemporaryWorkerWhenAllAreBusy) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t regular = pool->WorkerPids()[0];
  std::thread busy([&] { RunOk(pool.get(), UdfRequest("busy", "", "    import time\n    time.sleep(4)\n")); });
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (pool->stats().busy == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  WorkerRequest nested = PidRequest();
  nested.nested = true;
  auto reply = pool->Run(nested);  // would wait for the busy worker without `nested`
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_NE(JsonPayload(*reply).get<pid_t>(), regular);
  EXPECT_EQ(pool->stats().busy, 1) << "the first call is still running";
  busy.join();
  deadline = Clock::now() + std::chrono::seconds(10);
  while (pool->WorkerPids().size() != 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(pool->WorkerPids(), std::vector<pid_t>{regular});  // the extra worker is gone
  EXPECT_TRUE(log.Contains("event=extra_worker_started")) << log.Joined();
}

TEST(WorkerPoolFailureTest, AVersionTheWorkerDroppedIsSentAgainWithItsCode) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.env.push_back({"TERRAFUSE_WORKER_UDF_CACHE", "1"});  // keeps one version loaded
  auto pool = StartPool(options);
  ASSERT_NE(pool, nullptr);
  auto version = [](const std::string& hash, const std::string& value) {
    WorkerRequest request = UdfRequest("v" + value, "", "    return " + value + "\n");
    request.code = "print('loading " + value + "')\n" + request.code;
    request.udf_hash = hash;
    return request;
  };
  // 1st call: sent with its code (loads). 2nd: by hash only (no load). Then another version
  // evicts it in the worker, so the 3rd call by hash is answered "code_needed" and resent.
  EXPECT_EQ(RunOk(pool.get(), version("h1", "1")).captured_stdout(), "loading 1\n");
  WorkerReply again = RunOk(pool.get(), version("h1", "1"));
  EXPECT_EQ(again.captured_stdout(), "");
  EXPECT_EQ(JsonPayload(again), 1);
  EXPECT_EQ(RunOk(pool.get(), version("h2", "2")).captured_stdout(), "loading 2\n");
  WorkerReply resent = RunOk(pool.get(), version("h1", "1"));
  EXPECT_EQ(resent.captured_stdout(), "loading 1\n");
  EXPECT_EQ(JsonPayload(resent), 1);
  EXPECT_EQ(pool->stats().workers_started, 1);
  EXPECT_EQ(pool->stats().calls_by_hash, 2);  // the 2nd and the 3rd h1 calls
  EXPECT_EQ(pool->stats().code_resent, 1);

  // Code that cannot be sent fails the call once a worker was taken for it, and gives the
  // worker back unharmed.
  WorkerRequest bad = version("h3", "3");
  bad.code += "# \xff\n";
  auto refused = pool->Run(bad);
  EXPECT_EQ(KindOf(refused.status()), ErrorKind::kInvalidArgument);
  ExpectMessage(refused.status(), "The code of UDF 'v3' is not valid UTF-8");
  EXPECT_EQ(JsonPayload(RunOk(pool.get(), version("h1", "1"))), 1);
  EXPECT_EQ(pool->stats().workers_started, 1);
  EXPECT_EQ(pool->stats().busy, 0);
}

TEST(WorkerPoolFailureTest, ACallThatAnswersSoonAfterItsCancelKeepsItsWorker) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t before = PidOf(pool.get());
  CancelFlag cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  // Cancelled 200 ms in, answers about 50 ms later: within the grace, so no restart.
  auto reply = pool->Run(UdfRequest("brief", "", "    import time\n    time.sleep(0.25)\n    return 1\n"), &cancel);
  canceller.join();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(reply->ok);
  EXPECT_EQ(PidOf(pool.get()), before);
  EXPECT_EQ(pool->stats().cancellations, 0);
  EXPECT_EQ(pool->stats().workers_started, 1);
}

TEST(WorkerPoolFailureTest, CancelledWhileRunningKillsAndReplaces) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t before = PidOf(pool.get());
  CancelFlag cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  auto start = Clock::now();
  auto reply =
      pool->Run(UdfRequest("sleepy", "", "    import time\n    time.sleep(30)\n"), &cancel);
  canceller.join();
  EXPECT_TRUE(reply.status().IsCancelled()) << reply.status().ToString();
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kTimeout);
  ExpectMessage(reply.status(), "The call of UDF 'sleepy' was cancelled (the caller went away)");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_NE(PidOf(pool.get()), before);
  EXPECT_EQ(pool->stats().cancellations, 1);
  EXPECT_TRUE(Reaped(before));
}

TEST(WorkerPoolFailureTest, TimeoutKillsAndReplacesTheWorker) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t before = PidOf(pool.get());
  WorkerRequest request = UdfRequest("slow", "", "    import time\n    time.sleep(30)\n");
  request.timeout_seconds = 1;
  auto start = Clock::now();
  auto reply = pool->Run(request);
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kTimeout);
  ExpectMessage(reply.status(), "UDF 'slow' did not finish within its time limit of 1 s: worker " +
                                    std::to_string(before) + " was stopped and is being replaced");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  pid_t after = PidOf(pool.get());
  EXPECT_NE(after, before);
  EXPECT_EQ(pool->stats().timeouts, 1);
  EXPECT_TRUE(log.Contains("level=warn event=call_timeout worker=" + std::to_string(before) +
                           " udf=slow limit_s=1"));
  EXPECT_TRUE(Reaped(before));
}

void ExpectCrashThenRecovery(const std::string& body, const std::string& status_text) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t before = PidOf(pool.get());
  auto reply = pool->Run(UdfRequest("crasher", "", body));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kWorkerCrashed);
  ExpectMessage(reply.status(), "Worker " + std::to_string(before) +
                                    " closed its connection while running "
                                    "UDF 'crasher' (" +
                                    status_text + "); it is being replaced.");
  ExpectMessage(reply.status(), "Its stderr ends with:\nabout to die");
  auto detail = std::dynamic_pointer_cast<WorkerCrashDetail>(reply.status().detail());
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(detail->pid(), before);
  EXPECT_EQ(detail->exit_status(), status_text);
  EXPECT_NE(detail->stderr_tail().find("about to die"), std::string::npos);
  EXPECT_TRUE(log.Contains("level=info worker=" + std::to_string(before) + " about to die"))
      << log.Joined();
  EXPECT_TRUE(log.Contains("level=warn event=worker_crashed worker=" + std::to_string(before) +
                           " udf=crasher"))
      << log.Joined();
  EXPECT_TRUE(Reaped(before));
  EXPECT_NE(PidOf(pool.get()), before);
  EXPECT_EQ(pool->stats().crashes, 1);
}

TEST(WorkerPoolFailureTest, ExitInsideAUdfIsWorkerCrashed) {
  ExpectCrashThenRecovery("    import os\n    os.write(2, b'about to die\\n')\n    os._exit(3)\n",
                          "exited with status 3");
}

TEST(WorkerPoolFailureTest, SigkillInsideAUdfIsWorkerCrashed) {
  ExpectCrashThenRecovery(
      "    import os, signal\n    os.write(2, b'about to die\\n')\n"
      "    os.kill(os.getpid(), signal.SIGKILL)\n",
      "killed by signal 9 (Killed)");
}

TEST(WorkerPoolFailureTest, AWorkerThatBreaksTheProtocolIsReplaced) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t first = PidOf(pool.get());
  auto reply = pool->Run(UdfRequest("scribbler", "",
                                    "    import os, time\n    os.write(3, b'XXXXXXXX')\n"
                                    "    time.sleep(30)\n"));
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kWorkerCrashed);
  ExpectMessage(reply.status(), "Worker " + std::to_string(first) +
                                    " sent a malformed frame: Malformed worker frame: bad magic "
                                    "'XXXX', expected 'TFW1' while running UDF 'scribbler' "
                                    "(killed by signal 9 (Killed))");
  pid_t second = PidOf(pool.get());
  EXPECT_NE(second, first);
  auto start = Clock::now();
  reply = pool->Run(
      UdfRequest("liar", "",
                 "    import json, os, struct, time\n"
                 "    h = json.dumps({'id': 'other', 'ok': True, 'kind': 'none'}).encode()\n"
                 "    os.write(3, b'TFW1' + struct.pack('<I', len(h)) + h + struct.pack('<Q', 0))\n"
                 "    time.sleep(30)\n"));
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kWorkerCrashed);
  ExpectMessage(reply.status(), "Worker " + std::to_string(second) +
                                    " sent a malformed reply: Malformed worker reply: id \"other\" "
                                    "does not match the request id \"req-liar\"");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2)) << "killed at once, not after a grace";
  EXPECT_NE(PidOf(pool.get()), second);
}

TEST(WorkerPoolFailureTest, ACrashDoesNotDisturbOtherCalls) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(2, &log));
  ASSERT_NE(pool, nullptr);
  std::atomic<int> succeeded{0};
  std::atomic<int> crashed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        int n = t * 100 + i;
        auto reply = pool->Run(
            UdfRequest("echo", "n: int = 0", "    return n\n", {{"n", std::to_string(n)}}));
        if (reply.ok() && reply->ok && nlohmann::json::parse(reply->payload->ToString()) == n)
          ++succeeded;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 3; ++i) {
      auto reply = pool->Run(UdfRequest("crasher", "", "    import os\n    os._exit(1)\n"));
      if (KindOf(reply.status()) == ErrorKind::kWorkerCrashed) ++crashed;
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded.load(), 30);
  EXPECT_EQ(crashed.load(), 3);
  EXPECT_EQ(pool->stats().crashes, 3);
}

// Batching (WorkerPool::Run): one worker is held by a slow call while short calls queue
// behind it in a known order; the first queued call then takes the others along.
class WorkerPoolBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WorkerPoolOptions options = TestPoolOptions(1, &log_);
    options.batchable_seconds = 0.05;  // a trivial call can take 1 ms on a loaded machine
    pool_ = StartPool(options);
    ASSERT_NE(pool_, nullptr);
    RunOk(pool_.get(), Short(0, false));  // sent with its code
    RunOk(pool_.get(), Short(0, false));  // by hash: the version's time is now known
  }

  // A short call of one version; `crash` ends its worker instead of answering.
  static WorkerRequest Short(int n, bool crash) {
    WorkerRequest request = UdfRequest(
        "short", "n: int = 0, crash: bool = False",
        "    if crash:\n        import os\n        os._exit(3)\n    return n\n",
        {{"n", std::to_string(n)}, {"crash", crash ? "true" : "false"}});
    request.id = "req-" + std::to_string(n);
    request.udf_hash = "short-v1";
    return request;
  }

  // Runs Short(i, i == crash_index) for i in [1, calls] queued in that order behind a slow
  // call; returns each call's outcome.
  std::vector<Result<WorkerReply>> RunQueued(int calls, int crash_index) {
    std::vector<Result<WorkerReply>> results(calls + 1);
    std::thread slow([&] {
      WorkerRequest request = UdfRequest("slow", "", "    import time\n    time.sleep(1.2)\n    return 0\n");
      results[0] = pool_->Run(request);
    });
    WaitUntilBusy();  // the slow call has the worker
    std::vector<std::thread> threads;
    for (int i = 1; i <= calls; ++i) {
      threads.emplace_back([&, i] { results[i] = pool_->Run(Short(i, i == crash_index)); });
      for (int wait = 0; wait < 100 && pool_->stats().waiting < i; ++wait) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    EXPECT_EQ(pool_->stats().waiting, calls);
    slow.join();
    for (auto& thread : threads) thread.join();
    EXPECT_TRUE(results[0].ok() && results[0]->ok) << results[0].status().ToString();
    results.erase(results.begin());
    return results;
  }

  void WaitUntilBusy() {
    for (int wait = 0; wait < 1000 && pool_->stats().busy < 1; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(pool_->stats().busy, 1);
  }

  LogCapture log_;
  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(WorkerPoolBatchTest, ShortCallsWaitingForAWorkerRideInOneBatch) {
  auto results = RunQueued(6, /*crash_index=*/0);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(JsonPayload(*results[i]), i + 1);  // each caller gets its own answer
    EXPECT_GT(results[i]->queue_seconds, 0.2);
  }
  WorkerPoolStats stats = pool_->stats();
  EXPECT_EQ(stats.calls_batched, 5);  // the first queued call took the other five along
  EXPECT_EQ(stats.workers_started, 1);
  EXPECT_EQ(stats.busy, 0);
  EXPECT_EQ(stats.idle, 1);
}

TEST_F(WorkerPoolBatchTest, ACrashInABatchIsChargedOnlyToTheCallThatCausesIt) {
  // The crashing call leads the batch: the worker dies before any reply, every call of the
  // batch runs again alone, and only the crashing one fails (on a second worker).
  auto results = RunQueued(5, /*crash_index=*/1);
  EXPECT_EQ(KindOf(results[0].status()), ErrorKind::kWorkerCrashed) << results[0].status().ToString();
  for (int i = 1; i < 5; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(JsonPayload(*results[i]), i + 1);
  }
  EXPECT_EQ(pool_->stats().calls_batched, 4);
  EXPECT_EQ(pool_->stats().crashes, 2);  // in the batch, then alone
}

TEST_F(WorkerPoolBatchTest, ACrashingRiderFailsAloneAndTheOtherCallsAnswer) {
  auto results = RunQueued(5, /*crash_index=*/3);
  EXPECT_EQ(KindOf(results[2].status()), ErrorKind::kWorkerCrashed) << results[2].status().ToString();
  for (int i : {0, 1, 3, 4}) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(JsonPayload(*results[i]), i + 1);
  }
  EXPECT_EQ(pool_->stats().crashes, 2);  // in the batch, then alone
  EXPECT_EQ(pool_->stats().busy, 0);
}

TEST_F(WorkerPoolBatchTest, LongCallsNeverRide) {
  // A version whose calls take longer than batchable_seconds runs one call per write.
  WorkerRequest slowish = UdfRequest("slowish", "n: int = 0", "    import time\n    time.sleep(0.08)\n    return n\n");
  slowish.udf_hash = "slowish-v1";
  RunOk(pool_.get(), slowish);
  std::vector<std::thread> threads;
  std::atomic<int> answered{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      WorkerRequest request = slowish;
      request.params = {{"n", std::to_string(i)}};
      auto reply = pool_->Run(request);
      if (reply.ok() && reply->ok && JsonPayload(*reply) == i) ++answered;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(answered.load(), 6);
  EXPECT_EQ(pool_->stats().calls_batched, 0);
}

// RunAsync: the same queue, with the pool's driver threads instead of blocked callers.
class Answers {
 public:
  explicit Answers(size_t n) : results_(n), calls_(n, 0) {}
  WorkerPool::Done For(size_t i) {
    return [this, i](Result<WorkerReply> reply) {
      std::lock_guard<std::mutex> lock(mutex_);
      results_[i] = std::move(reply);
      ++calls_[i];
      ++answered_;
      cv_.notify_all();
    };
  }
  // Waits until every call answered (each exactly once); returns the results.
  std::vector<Result<WorkerReply>> Wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(20), [&] { return answered_ >= results_.size(); }));
    for (size_t i = 0; i < calls_.size(); ++i) EXPECT_EQ(calls_[i], 1) << "call " << i;
    return results_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Result<WorkerReply>> results_;
  std::vector<int> calls_;
  size_t answered_ = 0;
};

TEST_F(WorkerPoolBatchTest, AsyncCallsQueuedBehindASlowCallRideInOneBatch) {
  Answers answers(7);
  auto slow = std::make_shared<WorkerRequest>(
      UdfRequest("slow", "", "    import time\n    time.sleep(1.2)\n    return 0\n"));
  pool_->RunAsync(slow, nullptr, answers.For(0));
  WaitUntilBusy();  // the slow call has the worker
  for (int i = 1; i <= 6; ++i) {
    pool_->RunAsync(std::make_shared<WorkerRequest>(Short(i, /*crash=*/i == 3)), nullptr, answers.For(i));
  }
  // (A driver moves the first call from the async queue to the worker queue: poll.)
  for (int wait = 0; wait < 100 && pool_->stats().waiting < 6; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(pool_->stats().waiting, 6);
  auto results = answers.Wait();
  ASSERT_TRUE(results[0].ok() && results[0]->ok) << results[0].status().ToString();
  for (int i = 1; i <= 6; ++i) {
    if (i == 3) {  // its crash is charged to it alone; the others answer
      EXPECT_EQ(KindOf(results[i].status()), ErrorKind::kWorkerCrashed) << results[i].status().ToString();
      continue;
    }
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    EXPECT_EQ(JsonPayload(*results[i]), i);
    EXPECT_GT(results[i]->queue_seconds, 0.2);
  }
  WorkerPoolStats stats = pool_->stats();
  EXPECT_EQ(stats.calls_async, 7);
  EXPECT_EQ(stats.calls_batched, 5);  // the first short call took the other five along
  EXPECT_EQ(stats.crashes, 2);        // in the batch, then alone
  EXPECT_EQ(stats.busy, 0);
  EXPECT_EQ(stats.waiting, 0);
}

TEST_F(WorkerPoolBatchTest, AsyncAndBlockingCallsShareOneQueue) {
  Answers answers(3);
  std::thread slow([&] {
    RunOk(pool_.get(), UdfRequest("slow", "", "    import time\n    time.sleep(1.2)\n    return 0\n"));
  });
  WaitUntilBusy();
  pool_->RunAsync(std::make_shared<WorkerRequest>(Short(1, false)), nullptr, answers.For(0));
  Result<WorkerReply> blocking;
  std::thread caller([&] { blocking = pool_->Run(Short(2, false)); });
  for (int wait = 0; wait < 100 && pool_->stats().waiting < 2; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pool_->RunAsync(std::make_shared<WorkerRequest>(Short(3, false)), nullptr, answers.For(1));
  pool_->RunAsync(std::make_shared<WorkerRequest>(Short(4, false)), nullptr, answers.For(2));
  slow.join();
  caller.join();
  auto results = answers.Wait();
  ASSERT_TRUE(blocking.ok()) << blocking.status().ToString();
  EXPECT_EQ(JsonPayload(*blocking), 2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(JsonPayload(*results[i]), i == 0 ? 1 : i + 2);
  }
  EXPECT_EQ(pool_->stats().calls_batched, 3);  // four short calls, one write
}

TEST(WorkerPoolFailureTest, ShutdownAnswersQueuedAsyncCalls) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  Answers answers(3);
  auto forever = std::make_shared<WorkerRequest>(
      UdfRequest("forever", "", "    import time\n    time.sleep(60)\n"));
  pool->RunAsync(forever, nullptr, answers.For(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  pool->RunAsync(std::make_shared<WorkerRequest>(PidRequest()), nullptr, answers.For(1));
  pool->Shutdown(/*grace_seconds=*/0.3);
  pool->RunAsync(std::make_shared<WorkerRequest>(PidRequest()), nullptr, answers.For(2));
  auto results = answers.Wait();
  ExpectMessage(results[0].status(), "The worker pool shut down while UDF 'forever' was running");
  for (int i : {1, 2}) {
    EXPECT_EQ(KindOf(results[i].status()), ErrorKind::kUnavailable) << results[i].status().ToString();
    ExpectMessage(results[i].status(), "The worker pool is shutting down");
  }
}

TEST(WorkerPoolFailureTest, AnAsyncCallCancelledWhileRunningKillsItsWorker) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t pid = pool->WorkerPids().at(0);
  Answers answers(1);
  auto cancel = std::make_shared<CancelFlag>(false);
  pool->RunAsync(std::make_shared<WorkerRequest>(UdfRequest("nap", "", "    import time\n    time.sleep(30)\n")),
                 cancel, answers.For(0));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  *cancel = true;
  auto results = answers.Wait();
  EXPECT_TRUE(results[0].status().IsCancelled()) << results[0].status().ToString();
  ExpectMessage(results[0].status(), "The call of UDF 'nap' was cancelled (the caller went away)");
  EXPECT_NE(PidOf(pool.get()), pid);  // a new worker answers (the old one is reaped meanwhile)
  EXPECT_TRUE(Reaped(pid));
  EXPECT_EQ(pool->stats().cancellations, 1);
}

TEST(WorkerPoolFailureTest, WorkersAreRecycledAfterMaxCalls) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.max_calls_per_worker = 3;
  auto pool = StartPool(options);
  ASSERT_NE(pool, nullptr);
  std::vector<pid_t> pids;
  for (int i = 0; i < 7; ++i) pids.push_back(PidOf(pool.get()));
  EXPECT_EQ(pids[0], pids[1]);
  EXPECT_EQ(pids[1], pids[2]);
  EXPECT_NE(pids[2], pids[3]);
  EXPECT_EQ(pids[3], pids[5]);
  EXPECT_NE(pids[5], pids[6]);
  EXPECT_EQ(pool->stats().recycled, 2);
  EXPECT_TRUE(log.Contains("event=worker_recycled worker=" + std::to_string(pids[0]) +
                           " reason=max_calls"));
}

TEST(WorkerPoolFailureTest, MemoryLimitFailsCleanlyAndReplacesTheWorker) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.memory_limit_bytes = int64_t{512} << 20;
  auto pool = StartPool(options);
  ASSERT_NE(pool, nullptr);
  pid_t before = PidOf(pool.get());
  auto reply = pool->Run(
      UdfRequest("hog", "", "    block = bytearray(2 * 1024 ** 3)\n    return len(block)\n"));
  if (reply.ok()) {
    EXPECT_FALSE(reply->ok);
    EXPECT_EQ(reply->error_kind(), "udf_failed");
    EXPECT_EQ(reply->error_type(), "MemoryError");
  } else {
    EXPECT_EQ(KindOf(reply.status()), ErrorKind::kWorkerCrashed) << reply.status().ToString();
  }
  EXPECT_NE(PidOf(pool.get()), before) << "a worker that ran out of memory is replaced";
}

TEST(WorkerPoolFailureTest, ShutdownReapsEveryWorkerAndRefusesCalls) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(2, &log));
  ASSERT_NE(pool, nullptr);
  std::vector<pid_t> pids = pool->WorkerPids();
  ASSERT_EQ(pids.size(), 2u);
  pool->Shutdown();
  for (pid_t pid : pids) {
    EXPECT_TRUE(Reaped(pid)) << "worker " << pid << " still exists (running or zombie)";
    EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1);
  }
  auto reply = pool->Run(PidRequest());
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kUnavailable);
  ExpectMessage(reply.status(), "The worker pool is shutting down");
  EXPECT_TRUE(log.Contains("event=pool_stopped reaped=2"));
}

TEST(WorkerPoolFailureTest, ShutdownStopsABusyWorkerAfterTheGrace) {
  LogCapture log;
  auto pool = StartPool(TestPoolOptions(1, &log));
  ASSERT_NE(pool, nullptr);
  pid_t pid = pool->WorkerPids().at(0);
  Status status;
  std::thread caller([&] {
    status = pool->Run(UdfRequest("forever", "", "    import time\n    time.sleep(60)\n")).status();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto start = Clock::now();
  pool->Shutdown(/*grace_seconds=*/0.5);
  caller.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(KindOf(status), ErrorKind::kUnavailable) << status.ToString();
  ExpectMessage(status, "The worker pool shut down while UDF 'forever' was running");
  EXPECT_TRUE(Reaped(pid));
}

TEST(WorkerPoolFailureTest, QueueWaitIsBounded) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.queue_timeout_seconds = 0.3;
  auto pool = StartPool(options);
  ASSERT_NE(pool, nullptr);
  std::thread busy(
      [&] { (void)pool->Run(UdfRequest("nap", "", "    import time\n    time.sleep(1.5)\n")); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto reply = pool->Run(PidRequest());
  EXPECT_EQ(KindOf(reply.status()), ErrorKind::kUnavailable);
  ExpectMessage(reply.status(), "No worker became free within 0.3 s: all 1 workers are busy");
  busy.join();
  RunOk(pool.get(), PidRequest());
}

TEST(WorkerPoolFailureTest, AsyncCallsAreBoundedInNumberAndInTimeWaited) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.queue_timeout_seconds = 0.3;
  options.max_waiting = 1;
  auto pool = StartPool(options);
  ASSERT_NE(pool, nullptr);
  Answers answers(3);
  // The nap holds the one worker and its driver: the next call waits in the async queue.
  pool->RunAsync(std::make_shared<WorkerRequest>(UdfRequest("nap", "", "    import time\n    time.sleep(1.5)\n")),
                 nullptr, answers.For(0));
  for (int wait = 0; wait < 500 && pool->stats().busy < 1; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pool->RunAsync(std::make_shared<WorkerRequest>(PidRequest()), nullptr, answers.For(1));
  pool->RunAsync(std::make_shared<WorkerRequest>(PidRequest()), nullptr, answers.For(2));  // one too many
  auto results = answers.Wait();
  ASSERT_TRUE(results[0].ok()) << results[0].status().ToString();
  EXPECT_EQ(KindOf(results[1].status()), ErrorKind::kUnavailable);
  ExpectMessage(results[1].status(), "No worker became free within 0.3 s: all 1 workers are busy");
  EXPECT_EQ(KindOf(results[2].status()), ErrorKind::kUnavailable);
  ExpectMessage(results[2].status(), "All 1 workers are busy and 1 calls are already waiting");
  RunOk(pool.get(), PidRequest());
}

TEST(WorkerPoolFailureTest, StartFailsWithTheWorkersStderr) {
  LogCapture log;
  WorkerPoolOptions options = TestPoolOptions(1, &log);
  options.args = {"-c", "raise SystemExit('fused is not installed')"};
  auto pool = WorkerPool::Start(options);
  ASSERT_FALSE(pool.ok());
  ExpectMessage(pool.status(), "exited with status 1");
  ExpectMessage(pool.status(), "fused is not installed");
  options.num_workers = 0;
  ExpectMessage(WorkerPool::Start(options).status(), "Invalid number of workers 0: use at least 1");
}

}  // namespace
}  // namespace terrafuse::workers
