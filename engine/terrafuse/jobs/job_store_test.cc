#include "terrafuse/jobs/job_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace terrafuse::jobs {
namespace {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tf_jobs_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<JobStore> Open() {
    auto store = JobStore::Open((dir_ / "jobs.db").string());
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }
  std::filesystem::path dir_;
};

TEST_F(JobStoreTest, TasksRunInOrderAndTheJobEndsWithItsLastTask) {
  auto store = Open();
  auto id = store->Create("me", "udf", "hello", "{}", {R"({"a":1})", R"({"a":2})"}, 0);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(std::count(id->begin(), id->end(), '-'), 2) << *id;  // "brisk-otter-7f3a"
  auto first = store->ClaimNext();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->index, 0);
  EXPECT_EQ((*first)->params, R"({"a":1})");
  EXPECT_EQ((*first)->attempt, 1);
  auto job = store->Get(*id, "me", true);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status, kRunning);
  EXPECT_EQ(job->counts[kRunning], 1);
  ASSERT_TRUE(store->FinishTask(*id, 0, kSucceeded, "").ok());
  auto second = store->ClaimNext();
  ASSERT_TRUE(second.ok() && second->has_value());
  ASSERT_TRUE(store->AppendLog(*id, 1, "stdout", "line one\nline two\n").ok());
  ASSERT_TRUE(store->FinishTask(*id, 1, kFailed, "boom\ntraceback").ok());
  job = store->Get(*id, "me", true);
  EXPECT_EQ(job->status, kFailed);
  EXPECT_GT(job->ended_ms, 0);
  EXPECT_EQ(job->tasks[1].error, "boom\ntraceback");
  auto logs = store->Logs(*id, "me", 0, 0, 1000);
  ASSERT_TRUE(logs.ok());
  std::string all;
  for (const auto& line : *logs) all += line.text + "\n";
  EXPECT_NE(all.find("line one\nline two\n"), std::string::npos) << all;
  EXPECT_NE(all.find("job failed in"), std::string::npos) << all;
  auto later = store->Logs(*id, "me", logs->back().id, 0, 1000);
  EXPECT_TRUE(later->empty());
  auto none = store->ClaimNext();
  EXPECT_TRUE(none.ok() && !none->has_value());
}

TEST_F(JobStoreTest, OtherOwnersDoNotSeeTheJob) {
  auto store = Open();
  auto id = store->Create("me", "udf", "", "{}", {"{}"}, 0);
  EXPECT_EQ(KindOf(store->Get(*id, "you", false).status()), ErrorKind::kNotFound);
  EXPECT_EQ(KindOf(store->Cancel(*id, "you").status()), ErrorKind::kNotFound);
  EXPECT_TRUE(store->List("you", 10, 0)->empty());
  EXPECT_EQ(store->List("me", 10, 0)->size(), 1u);
}

TEST_F(JobStoreTest, BadJobsAreRefused) {
  auto store = Open();
  EXPECT_EQ(KindOf(store->Create("me", "", "", "{}", {"{}"}, 0).status()), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf(store->Create("me", "udf", "", "{}", {}, 0).status()), ErrorKind::kInvalidArgument);
}

TEST_F(JobStoreTest, CancelEndsQueuedTasksAndReportsRunningOnes) {
  auto store = Open();
  auto id = store->Create("me", "udf", "", "{}", {"{}", "{}", "{}"}, 0);
  ASSERT_TRUE(store->ClaimNext().ok());
  auto running = store->Cancel(*id, "me");
  ASSERT_TRUE(running.ok());
  EXPECT_EQ(*running, std::vector<int64_t>{0});
  auto next = store->ClaimNext();
  EXPECT_TRUE(next.ok() && !next->has_value());  // nothing of a cancelled job starts
  EXPECT_TRUE(*store->CancelRequested(*id));
  ASSERT_TRUE(store->FinishTask(*id, 0, kCancelled, "").ok());
  EXPECT_EQ(store->Get(*id, "me", false)->status, kCancelled);
}

TEST_F(JobStoreTest, RunningTasksAreQueuedAgainAfterARestart) {
  std::string id;
  {
    auto store = Open();
    id = *store->Create("me", "udf", "", "{}", {"{}", "{}"}, 1);
    ASSERT_TRUE(store->ClaimNext()->has_value());
  }
  auto store = Open();
  EXPECT_EQ(store->recovered(), 1);
  auto job = store->Get(id, "me", true);
  EXPECT_EQ(job->counts[kQueued], 2);
  auto again = store->ClaimNext();
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->index, 0);
  EXPECT_EQ((*again)->attempt, 2);
  ASSERT_TRUE(store->Requeue(id, 0).ok());
  EXPECT_EQ((*store->ClaimNext())->index, 1);  // a requeued task goes to the back
}

}  // namespace
}  // namespace terrafuse::jobs
