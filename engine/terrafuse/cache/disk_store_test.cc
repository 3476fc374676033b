#include "terrafuse/cache/disk_store.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

namespace terrafuse::cache {
namespace {

namespace fs = std::filesystem;

class DiskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("tf_disk_store_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::shared_ptr<DiskStore> Open(int64_t max_bytes = int64_t{1} << 30) {
    auto store = DiskStore::Open({root_.string(), max_bytes});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return *store;
  }

  fs::path root_;
};

TEST_F(DiskStoreTest, PutThenGetRoundTrips) {
  auto store = Open();
  ASSERT_TRUE(store->Put("k1", std::string("hello\0world", 11)).ok());
  auto got = store->Get("k1", -1);
  ASSERT_TRUE(got.ok());
  ASSERT_NE(*got, nullptr);
  EXPECT_EQ((*got)->ToString(), std::string("hello\0world", 11));
  auto missing = store->Get("k2", -1);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, nullptr);
  EXPECT_EQ(store->stats().hits, 1);
  EXPECT_EQ(store->stats().misses, 1);
}

TEST_F(DiskStoreTest, ExpiredEntryIsAMiss) {
  auto store = Open();
  ASSERT_TRUE(store->Put("k", "v").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(store->Get("k", 0.001) != nullptr);
  EXPECT_TRUE(store->Get("k", 60) != nullptr);
  EXPECT_TRUE(store->Get("k", -1) != nullptr);
}

TEST_F(DiskStoreTest, TruncatedOrCorruptEntryIsDetectedAndDropped) {
  auto store = Open();
  ASSERT_TRUE(store->Put("trunc", std::string(1000, 'x')).ok());
  fs::resize_file(store->EntryPath("trunc"), 500);
  EXPECT_FALSE(store->Get("trunc", -1) != nullptr);
  EXPECT_FALSE(fs::exists(store->EntryPath("trunc")));

  ASSERT_TRUE(store->Put("flip", std::string(100, 'x')).ok());
  {
    std::fstream f(store->EntryPath("flip"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(60);
    f.put('y');
  }
  EXPECT_FALSE(store->Get("flip", -1) != nullptr);
  EXPECT_EQ(store->stats().corrupt, 2);
}

TEST_F(DiskStoreTest, EvictsLeastRecentlyUsedPastTheBound) {
  auto store = Open(3 * (1000 + 32));
  const std::string blob(1000, 'b');
  ASSERT_TRUE(store->Put("a", blob).ok());
  ASSERT_TRUE(store->Put("b", blob).ok());
  ASSERT_TRUE(store->Put("c", blob).ok());
  // Make "a" the most recently used, so "b" is the oldest.
  fs::last_write_time(store->EntryPath("b"), fs::file_time_type::clock::now() - std::chrono::hours(2));
  fs::last_write_time(store->EntryPath("c"), fs::file_time_type::clock::now() - std::chrono::hours(1));
  ASSERT_TRUE(store->Get("a", -1) != nullptr);
  ASSERT_TRUE(store->Put("d", blob).ok());
  EXPECT_FALSE(store->Get("b", -1) != nullptr);
  EXPECT_TRUE(store->Get("a", -1) != nullptr);
  EXPECT_TRUE(store->Get("c", -1) != nullptr);
  EXPECT_TRUE(store->Get("d", -1) != nullptr);
  EXPECT_EQ(store->stats().evictions, 1);
  EXPECT_LE(*store->UsedBytes(), 3 * (1000 + 32));
}

TEST_F(DiskStoreTest, InvalidKeysAreRejectedWithTheirName) {
  auto store = Open();
  for (const char* bad : {"", "../x", "a/b", ".hidden"}) {
    Status st = store->Put(bad, "v");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(KindOf(st), ErrorKind::kInvalidArgument);
    EXPECT_NE(st.message().find(std::string("'") + bad + "'"), std::string::npos) << st.message();
  }
}

TEST_F(DiskStoreTest, LockIsExclusiveAcrossProcessesAndTimesOut) {
  auto store = Open();
  auto lock = store->Lock("key", 1);
  ASSERT_TRUE(lock.ok());
  pid_t child = ::fork();
  if (child == 0) {
    // In another process the key is busy: a short wait times out with a clear error.
    auto again = DiskStore::Open({root_.string(), 1 << 20});
    auto second = (*again)->Lock("key", 0.05);
    bool timed_out = !second.ok() && KindOf(second.status()) == ErrorKind::kTimeout &&
                     second.status().message().find("'key'") != std::string::npos;
    ::_exit(timed_out ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  (*lock)->Release();
  EXPECT_TRUE(store->Lock("key", 0.05).ok());
}

TEST_F(DiskStoreTest, WaiterGetsTheLockWhenTheHolderReleases) {
  auto store = Open();
  auto lock = store->Lock("k", 1);
  ASSERT_TRUE(lock.ok());
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(store->Put("k", "computed").ok());
    (*lock)->Release();
  });
  auto waited = store->Lock("k", 5);
  releaser.join();
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ((*store->Get("k", -1))->ToString(), "computed");
}

}  // namespace
}  // namespace terrafuse::cache
