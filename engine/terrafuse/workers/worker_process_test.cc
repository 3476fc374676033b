#include "terrafuse/workers/worker_process.h"

#include <gtest/gtest.h>

#include "terrafuse/workers/workers_test_internal.h"

namespace terrafuse::workers {
namespace {

using testing::ExpectMessage;
using testing::LogCapture;
using testing::Reaped;
using testing::TestHome;
using testing::TestPython;

WorkerProcessOptions ProcessOptions(LogCapture* log) {
  WorkerProcessOptions options;
  options.python = TestPython();
  options.env = {{"TERRAFUSE_HOME", TestHome()}};
  options.log = log->Sink();
  return options;
}

TEST(WorkerProcessTest, ReadyHandshakeThenExitOnRequest) {
  LogCapture log;
  auto worker = WorkerProcess::Start(ProcessOptions(&log));
  ASSERT_TRUE(worker.ok()) << worker.status().ToString();
  pid_t pid = (*worker)->pid();
  EXPECT_GT(pid, 0);
  EXPECT_TRUE((*worker)->CheckIdle());
  (*worker)->RequestExit();
  EXPECT_EQ((*worker)->Reap(Clock::now() + std::chrono::seconds(10)), "exited with status 0");
  EXPECT_TRUE(Reaped(pid));
  EXPECT_EQ(log.Joined(), "") << "a warm worker writes nothing to the log";
}

TEST(WorkerProcessTest, MissingInterpreterIsAClearError) {
  LogCapture log;
  WorkerProcessOptions options = ProcessOptions(&log);
  options.python = "no-such-python-interpreter";
  ExpectMessage(WorkerProcess::Start(options).status(),
                "The worker interpreter 'no-such-python-interpreter' was not found on PATH");
  options.python = "/nonexistent/python3";
  ExpectMessage(WorkerProcess::Start(options).status(), "'/nonexistent/python3'");
}

TEST(WorkerProcessTest, AWorkerThatDiesAtStartReportsStatusAndStderr) {
  LogCapture log;
  WorkerProcessOptions options = ProcessOptions(&log);
  options.args = {"-c", "import sys; sys.stderr.write('cannot import fused\\n'); sys.exit(3)"};
  auto worker = WorkerProcess::Start(options);
  EXPECT_EQ(KindOf(worker.status()), ErrorKind::kWorkerCrashed);
  ExpectMessage(worker.status(), "did not start: closed its connection (exited with status 3)");
  ExpectMessage(worker.status(), "its stderr ends with:\ncannot import fused");
  EXPECT_TRUE(log.Contains(" cannot import fused")) << log.Joined();
}

TEST(WorkerProcessTest, StartupTimeoutKillsTheWorker) {
  LogCapture log;
  WorkerProcessOptions options = ProcessOptions(&log);
  options.args = {"-c", "import time; time.sleep(60)"};
  options.startup_timeout_seconds = 0.5;
  auto start = Clock::now();
  auto worker = WorkerProcess::Start(options);
  EXPECT_EQ(KindOf(worker.status()), ErrorKind::kTimeout);
  ExpectMessage(worker.status(), "did not start: no 'ready' frame within");
  ExpectMessage(worker.status(), "killed by signal 9");
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(WorkerProcessTest, GarbageInsteadOfAFrameIsAProtocolError) {
  LogCapture log;
  WorkerProcessOptions options = ProcessOptions(&log);
  options.args = {"-c", "import os, time; os.write(3, b'HELLO WORLD!'); time.sleep(60)"};
  auto worker = WorkerProcess::Start(options);
  EXPECT_EQ(KindOf(worker.status()), ErrorKind::kWorkerCrashed);
  ExpectMessage(worker.status(),
                "sent a malformed frame: Malformed worker frame: bad magic 'HELL'");
}

TEST(WorkerProcessTest, MemoryLimitAppliesToTheChild) {
  LogCapture log;
  WorkerProcessOptions options = ProcessOptions(&log);
  options.memory_limit_bytes = int64_t{300} << 20;
  options.args = {"-c",
                  "import resource, sys; "
                  "sys.stderr.write(str(resource.getrlimit(resource.RLIMIT_AS)) + '\\n')"};
  auto worker = WorkerProcess::Start(options);
  ASSERT_FALSE(worker.ok());
  ExpectMessage(worker.status(), "(314572800, 314572800)");
}

}  // namespace
}  // namespace terrafuse::workers
