// The object-store tier over Arrow's local file system (the S3 case runs against a moto
// server in tests/storage/test_s3.py).
#include "terrafuse/cache/object_store.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include <arrow/filesystem/localfs.h>
#include <gtest/gtest.h>

#include "terrafuse/cache/result_cache.h"

namespace terrafuse::cache {
namespace {

namespace fs = std::filesystem;

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("tf_object_store_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::shared_ptr<ObjectStore> Open(int64_t max_bytes = int64_t{1} << 30) {
    auto store = ObjectStore::Open({fs_, root_.string() + "/results", max_bytes});
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return *store;
  }
  int CountObjects() {
    int n = 0;
    if (!fs::exists(root_)) return 0;
    for (auto& e : fs::recursive_directory_iterator(root_)) n += e.is_regular_file();
    return n;
  }

  std::shared_ptr<arrow::fs::FileSystem> fs_ = std::make_shared<arrow::fs::LocalFileSystem>();
  fs::path root_;
};

TEST_F(ObjectStoreTest, PutGetAgeAndClear) {
  auto store = Open();
  ASSERT_TRUE(store->Put("k1", std::string("hello\0world", 11)).ok());
  auto got = store->Get("k1", -1);
  ASSERT_TRUE(got.ok() && *got);
  EXPECT_EQ((*got)->ToString(), std::string("hello\0world", 11));
  EXPECT_EQ(*store->Get("missing", -1), nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_EQ(*store->Get("k1", 0.01), nullptr);  // older than the allowed age: a miss
  EXPECT_NE(*store->Get("k1", 60), nullptr);
  ASSERT_TRUE(store->Clear().ok());
  EXPECT_EQ(*store->Get("k1", -1), nullptr);
  EXPECT_EQ(CountObjects(), 0);
  EXPECT_FALSE(store->Put("../escape", "x").ok());  // keys are validated
}

TEST_F(ObjectStoreTest, CorruptObjectIsAMissAndDeleted) {
  auto store = Open();
  ASSERT_TRUE(store->Put("k", std::string(1000, 'a')).ok());
  {
    std::fstream f(store->EntryPath("k"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(500);
    f.put('b');
  }
  EXPECT_EQ(*store->Get("k", -1), nullptr);
  EXPECT_FALSE(fs::exists(store->EntryPath("k")));
}

TEST_F(ObjectStoreTest, SizeBoundEvictsOldestWrites) {
  auto store = Open(3000);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->Put("k" + std::to_string(i), std::string(1000, 'x')).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct mtimes
  }
  EXPECT_LE(*store->UsedBytes(), 3000);
  EXPECT_EQ(*store->Get("k0", -1), nullptr);
  EXPECT_NE(*store->Get("k4", -1), nullptr);
}

TEST_F(ObjectStoreTest, ResultCacheUsesItAsThePersistentTier) {
  ResultCacheOptions options;
  options.object_fs = fs_;
  options.object_root = root_.string() + "/rc";
  int computed = 0;
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    return CachedResult{arrow::Buffer::FromString("body"), "text/plain", "{}", 0};
  };
  {
    auto cache = *ResultCache::Make(options);
    CacheOutcome outcome;
    ASSERT_TRUE(cache->GetOrCompute("tag1", "key1", 60, compute, &outcome).ok());
    EXPECT_EQ(outcome, CacheOutcome::kComputed);
  }
  EXPECT_EQ(CountObjects(), 1);
  auto restarted = *ResultCache::Make(options);  // an empty memory tier
  CacheOutcome outcome;
  auto hit = restarted->GetOrCompute("tag1", "key1", 60, compute, &outcome);
  ASSERT_TRUE(hit.ok());
  EXPECT_EQ(outcome, CacheOutcome::kDiskHit);
  EXPECT_EQ(hit->body->ToString(), "body");
  EXPECT_EQ(computed, 1);
  ASSERT_TRUE(restarted->Purge("tag1").ok());
  EXPECT_EQ(CountObjects(), 0);
}

}  // namespace
}  // namespace terrafuse::cache
