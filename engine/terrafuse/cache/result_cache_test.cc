#include "terrafuse/cache/result_cache.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace terrafuse::cache {
namespace {

namespace fs = std::filesystem;

CachedResult Body(const std::string& text) {
  CachedResult r;
  r.body = arrow::Buffer::FromString(text);
  r.media_type = "text/csv";
  r.metadata = R"({"x":1})";
  return r;
}

class ResultCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("tf_result_cache_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::shared_ptr<ResultCache> Make(int64_t memory = 1 << 20, bool disk = true) {
    return *ResultCache::Make({memory, disk ? root_.string() : "", 1 << 20});
  }
  fs::path root_;
};

TEST_F(ResultCacheTest, SecondLookupIsAMemoryHit) {
  auto cache = Make();
  int computed = 0;
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    return Body("a,b\n1,2\n");
  };
  CacheOutcome outcome;
  auto first = cache->GetOrCompute("udf1", "k1", 60, compute, &outcome);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(outcome, CacheOutcome::kComputed);
  auto second = cache->GetOrCompute("udf1", "k1", 60, compute, &outcome);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(outcome, CacheOutcome::kMemoryHit);
  EXPECT_EQ(second->body->ToString(), "a,b\n1,2\n");
  EXPECT_EQ(second->media_type, "text/csv");
  EXPECT_EQ(computed, 1);
  EXPECT_STREQ(CacheOutcomeName(outcome), "hit");
}

TEST_F(ResultCacheTest, PeekMemorySeesOnlyFreshMemoryEntries) {
  auto compute = [&]() -> Result<CachedResult> { return Body("tile"); };
  ASSERT_TRUE(Make()->GetOrCompute("udf1", "k", 60, compute).ok());  // on disk only now
  auto cache = Make();
  EXPECT_FALSE(cache->PeekMemory("udf1", "k", 60).has_value());  // never reads the disk
  ASSERT_TRUE(cache->GetOrCompute("udf1", "k", 60, compute).ok());  // disk hit, now in memory
  auto peeked = cache->PeekMemory("udf1", "k", 60);
  ASSERT_TRUE(peeked.has_value());
  EXPECT_EQ(peeked->body->ToString(), "tile");
  EXPECT_EQ(peeked->metadata, R"({"x":1})");
  EXPECT_FALSE(cache->PeekMemory("udf1", "k", 0).has_value());      // bypass
  EXPECT_FALSE(cache->PeekMemory("udf1", "other", 60).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(cache->PeekMemory("udf1", "k", 0.005).has_value());  // too old for this caller
  EXPECT_EQ(cache->stats().memory_hits, 1);
}

TEST_F(ResultCacheTest, DiskTierSurvivesANewCache) {
  int computed = 0;
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    return Body("persisted");
  };
  ASSERT_TRUE(Make()->GetOrCompute("udf1", "k", 60, compute).ok());
  CacheOutcome outcome;
  auto again = Make()->GetOrCompute("udf1", "k", 60, compute, &outcome);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(outcome, CacheOutcome::kDiskHit);
  EXPECT_EQ(again->body->ToString(), "persisted");
  EXPECT_EQ(again->metadata, R"({"x":1})");
  EXPECT_EQ(computed, 1);
}

TEST_F(ResultCacheTest, ZeroMaxAgeBypassesAndExpiredEntriesRecompute) {
  auto cache = Make();
  int computed = 0;
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    return Body("v");
  };
  CacheOutcome outcome;
  ASSERT_TRUE(cache->GetOrCompute("t", "k", 0, compute, &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kBypassed);
  ASSERT_TRUE(cache->GetOrCompute("t", "k", 60, compute).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(cache->GetOrCompute("t", "k", 0.005, compute, &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kComputed);
  EXPECT_EQ(computed, 3);
}

TEST_F(ResultCacheTest, ConcurrentIdenticalMissesComputeOnce) {
  auto cache = Make();
  std::atomic<int> computed{0};
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return Body("slow");
  };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = cache->GetOrCompute("t", "same", 60, compute);
      if (r.ok() && r->body->ToString() == "slow") ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(computed.load(), 1);
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(cache->stats().shared_waits + cache->stats().memory_hits, 7);
}

TEST_F(ResultCacheTest, FailuresAreSharedButNotStored) {
  auto cache = Make();
  int computed = 0;
  auto failing = [&]() -> Result<CachedResult> {
    ++computed;
    return InvalidArgument("bad parameter 'n'");
  };
  auto first = cache->GetOrCompute("t", "k", 60, failing);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().message(), "bad parameter 'n'");
  ASSERT_FALSE(cache->GetOrCompute("t", "k", 60, failing).ok());
  EXPECT_EQ(computed, 2);
}

TEST_F(ResultCacheTest, MemoryTierEvictsLeastRecentlyUsed) {
  auto cache = Make(/*memory=*/3 * (1000 + 300), /*disk=*/false);
  auto make = [](char c) { return [c]() -> Result<CachedResult> { return Body(std::string(1000, c)); }; };
  ASSERT_TRUE(cache->GetOrCompute("t", "a", 60, make('a')).ok());
  ASSERT_TRUE(cache->GetOrCompute("t", "b", 60, make('b')).ok());
  ASSERT_TRUE(cache->GetOrCompute("t", "c", 60, make('c')).ok());
  ASSERT_TRUE(cache->GetOrCompute("t", "a", 60, make('a')).ok());  // a is now the most recent
  ASSERT_TRUE(cache->GetOrCompute("t", "d", 60, make('d')).ok());  // evicts b
  CacheOutcome outcome;
  ASSERT_TRUE(cache->GetOrCompute("t", "a", 60, make('a'), &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kMemoryHit);
  ASSERT_TRUE(cache->GetOrCompute("t", "b", 60, make('b'), &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kComputed);
  EXPECT_LE(cache->stats().memory_bytes, 3 * (1000 + 300));
}

TEST_F(ResultCacheTest, PurgeDropsOneTagInMemoryAndOnDisk) {
  auto cache = Make();
  int computed = 0;
  auto compute = [&]() -> Result<CachedResult> {
    ++computed;
    return Body("v");
  };
  ASSERT_TRUE(cache->GetOrCompute("udfA", "k", 60, compute).ok());
  ASSERT_TRUE(cache->GetOrCompute("udfB", "k", 60, compute).ok());
  ASSERT_TRUE(cache->Purge("udfA").ok());
  CacheOutcome outcome;
  ASSERT_TRUE(cache->GetOrCompute("udfA", "k", 60, compute, &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kComputed);
  ASSERT_TRUE(cache->GetOrCompute("udfB", "k", 60, compute, &outcome).ok());
  EXPECT_EQ(outcome, CacheOutcome::kMemoryHit);
  EXPECT_EQ(computed, 3);
  EXPECT_FALSE(cache->Purge("../escape").ok());
}

TEST(CachedResultTest, SerializationRoundTripsAndRejectsGarbage) {
  CachedResult r = Body(std::string("bin\0ary", 7));
  r.created_unix_ms = 1234;
  auto back = ParseCachedResult(arrow::Buffer::FromString(SerializeCachedResult(r)));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->body->ToString(), std::string("bin\0ary", 7));
  EXPECT_EQ(back->media_type, "text/csv");
  EXPECT_EQ(back->created_unix_ms, 1234);
  EXPECT_FALSE(ParseCachedResult(arrow::Buffer::FromString("TFR1\xff\xff")).ok());
}

}  // namespace
}  // namespace terrafuse::cache
