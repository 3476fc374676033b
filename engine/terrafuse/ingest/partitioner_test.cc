#include "terrafuse/ingest/partitioner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace terrafuse::ingest {
namespace {

struct Points {
  std::vector<double> x, y;
  PartitionInput input() const { return {x.data(), y.data(), nullptr, static_cast<int64_t>(x.size())}; }
};

Points Clustered(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.5);
  std::uniform_int_distribution<int> cluster(0, 4);
  double cx[] = {-120, -74, 2, 139, 18}, cy[] = {37, 40, 48, 35, -33};
  Points p;
  for (int i = 0; i < n; ++i) {
    int c = cluster(rng);
    p.x.push_back(cx[c] + noise(rng));
    p.y.push_back(cy[c] + noise(rng));
  }
  return p;
}

// FindChunk puts each row in the chunk the partition gave it.
void ExpectEveryRowFound(const Partitioning& part, const Points& p) {
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    for (int64_t j = part.chunk_offsets[k]; j < part.chunk_offsets[k + 1]; ++j) {
      int64_t row = part.order[j];
      ASSERT_EQ(part.FindChunk(p.x[row], p.y[row], row), k) << "row " << row;
    }
  }
}

void ExpectValid(const Partitioning& part, int64_t n) {
  ASSERT_EQ(static_cast<int64_t>(part.order.size()), n);
  std::vector<int64_t> sorted = part.order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sorted[i], i);  // a permutation
  ASSERT_EQ(part.chunk_offsets.back(), n);
  ASSERT_EQ(static_cast<int64_t>(part.chunk_offsets.size()), part.num_chunks() + 1);
}

TEST(Partitioner, MedianGivesEqualChunksUnderTheMaxima) {
  Points p = Clustered(20000, 1);
  PartitionOptions o;
  o.max_per_file = 5000;
  o.max_per_chunk = 1000;
  o.split_method = SplitMethod::kMedian;
  o.force_utm = ForceUtm::kNone;  // the clusters span UTM zones
  auto result = Partition(p.input(), o);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  const Partitioning& part = *result;
  ExpectValid(part, 20000);
  EXPECT_EQ(part.num_files, 4);
  EXPECT_EQ(part.num_chunks(), 20);
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    EXPECT_EQ(part.chunk_offsets[k + 1] - part.chunk_offsets[k], 1000);
  }
  // Chunk ids restart at 0 in every file.
  EXPECT_EQ(part.chunk_id[0], 0);
  EXPECT_EQ(part.chunk_file.back(), 3);
  EXPECT_EQ(part.chunk_id.back(), 4);
}

TEST(Partitioner, ChunkBoxesDoNotOverlap) {
  Points p = Clustered(8000, 2);
  PartitionOptions o;
  o.max_per_file = 8000;
  o.max_per_chunk = 500;
  o.split_method = SplitMethod::kMedian;
  auto part = Partition(p.input(), o).ValueOrDie();
  struct Box { double x0, y0, x1, y1; };
  std::vector<Box> boxes;
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    Box b{1e9, 1e9, -1e9, -1e9};
    for (int64_t j = part.chunk_offsets[k]; j < part.chunk_offsets[k + 1]; ++j) {
      int64_t r = part.order[j];
      b = {std::min(b.x0, p.x[r]), std::min(b.y0, p.y[r]), std::max(b.x1, p.x[r]), std::max(b.y1, p.y[r])};
    }
    boxes.push_back(b);
  }
  double overlap = 0;
  for (size_t i = 0; i < boxes.size(); ++i) {
    for (size_t j = i + 1; j < boxes.size(); ++j) {
      double w = std::min(boxes[i].x1, boxes[j].x1) - std::max(boxes[i].x0, boxes[j].x0);
      double h = std::min(boxes[i].y1, boxes[j].y1) - std::max(boxes[i].y0, boxes[j].y0);
      if (w > 0 && h > 0) overlap += w * h;
    }
  }
  EXPECT_EQ(overlap, 0);
}

TEST(Partitioner, MeanSplitsStayUnderTheMaximum) {
  Points p = Clustered(10000, 3);
  PartitionOptions o;
  o.max_per_file = 10000;
  o.max_per_chunk = 700;
  auto part = Partition(p.input(), o).ValueOrDie();
  ExpectValid(part, 10000);
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    EXPECT_LE(part.chunk_offsets[k + 1] - part.chunk_offsets[k], 700);
  }
  EXPECT_GE(part.num_chunks(), 15);
}

TEST(Partitioner, Deterministic) {
  Points p = Clustered(5000, 4);
  PartitionOptions o;
  o.max_per_file = 2000;
  o.max_per_chunk = 300;
  auto a = Partition(p.input(), o).ValueOrDie();
  auto b = Partition(p.input(), o).ValueOrDie();
  EXPECT_EQ(a.order, b.order);
  EXPECT_EQ(a.chunk_offsets, b.chunk_offsets);
}

TEST(Partitioner, IdenticalCentroidsSplitOnlyWhenAsked) {
  Points p;
  p.x.assign(1000, 5.0);
  p.y.assign(1000, 6.0);
  PartitionOptions o;
  o.max_per_file = 1000;
  o.max_per_chunk = 100;
  auto split = Partition(p.input(), o).ValueOrDie();
  EXPECT_EQ(split.num_chunks(), 10);
  o.split_identical_centroids = false;
  auto kept = Partition(p.input(), o).ValueOrDie();
  EXPECT_EQ(kept.num_chunks(), 1);
}

TEST(Partitioner, WeightsBalanceTheMeasureNotTheRows) {
  // Half the rows weigh 9, half weigh 1: chunks by weight have unequal row counts.
  Points p = Clustered(2000, 5);
  std::vector<double> w(2000);
  for (int i = 0; i < 2000; ++i) w[i] = p.x[i] < 0 ? 9.0 : 1.0;
  PartitionInput in = p.input();
  in.weight = w.data();
  PartitionOptions o;
  o.max_per_file = 1e9;
  o.max_per_chunk = 1000;
  o.split_method = SplitMethod::kMedian;
  auto part = Partition(in, o).ValueOrDie();
  ExpectValid(part, 2000);
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    double sum = 0;
    for (int64_t j = part.chunk_offsets[k]; j < part.chunk_offsets[k + 1]; ++j) sum += w[part.order[j]];
    EXPECT_LE(sum, 1000 + 9);
  }
}

TEST(Partitioner, WidthRatioChoosesTheAxis) {
  // A wide strip: with the default ratio every cut is vertical (along x).
  Points p;
  for (int i = 0; i < 1000; ++i) {
    p.x.push_back(i * 0.1);
    p.y.push_back((i % 10) * 0.01);
  }
  PartitionOptions o;
  o.max_per_file = 1000;
  o.max_per_chunk = 250;
  o.split_method = SplitMethod::kMedian;
  o.force_utm = ForceUtm::kNone;
  auto part = Partition(p.input(), o).ValueOrDie();
  ASSERT_EQ(part.num_chunks(), 4);
  for (int64_t k = 0; k < 4; ++k) {
    std::set<int64_t> rows(part.order.begin() + part.chunk_offsets[k], part.order.begin() + part.chunk_offsets[k + 1]);
    EXPECT_EQ(*rows.begin(), k * 250);
    EXPECT_EQ(*rows.rbegin(), k * 250 + 249);
  }
}

TEST(Partitioner, ForceUtmKeepsChunksInsideOneZone) {
  // Points from 0° to 18° longitude span UTM zones 31, 32 and 33.
  Points p;
  for (int i = 0; i < 900; ++i) {
    p.x.push_back(i * 0.02);
    p.y.push_back(10);
  }
  PartitionOptions o;
  o.max_per_file = 1e9;
  o.max_per_chunk = 1e9;  // no weight limit: only the zones cut
  o.force_utm = ForceUtm::kChunk;
  auto part = Partition(p.input(), o).ValueOrDie();
  EXPECT_EQ(part.num_chunks(), 3);
  EXPECT_EQ(part.num_files, 1);
  for (int64_t k = 0; k < part.num_chunks(); ++k) {
    int zone = -1;
    for (int64_t j = part.chunk_offsets[k]; j < part.chunk_offsets[k + 1]; ++j) {
      int z = static_cast<int>(std::floor((p.x[part.order[j]] + 180) / 6));
      if (zone < 0) zone = z;
      EXPECT_EQ(z, zone);
    }
  }
  o.force_utm = ForceUtm::kFile;
  EXPECT_EQ(Partition(p.input(), o).ValueOrDie().num_files, 3);
  o.force_utm = ForceUtm::kNone;
  EXPECT_EQ(Partition(p.input(), o).ValueOrDie().num_chunks(), 1);
}

TEST(Partitioner, TreesPlaceEveryRowInItsChunk) {
  // The recorded cuts must put each row exactly where the partition put it, for every kind
  // of cut: mean, median (ties broken by row), weighted, UTM zones, identical centroids.
  Points p = Clustered(6000, 11);
  for (int i = 0; i < 500; ++i) {  // a pile of identical centroids and some shared x values
    p.x.push_back(2.5);
    p.y.push_back(48.5);
    p.x.push_back(-74.0);
    p.y.push_back(40 + i * 0.001);
  }
  std::vector<double> w(p.x.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1 + static_cast<double>(i % 7);
  for (SplitMethod method : {SplitMethod::kMean, SplitMethod::kMedian}) {
    for (ForceUtm utm : {ForceUtm::kNone, ForceUtm::kFile, ForceUtm::kChunk}) {
      for (bool weighted : {false, true}) {
        PartitionOptions o;
        o.max_per_file = weighted ? 8000 : 2000;
        o.max_per_chunk = weighted ? 900 : 250;
        o.split_method = method;
        o.force_utm = utm;
        PartitionInput in = p.input();
        if (weighted) in.weight = w.data();
        auto result = Partition(in, o);
        ASSERT_TRUE(result.ok()) << result.status().ToString();
        const Partitioning& part = *result;
        ExpectEveryRowFound(part, p);
      }
    }
  }
}

TEST(Partitioner, TreesOfATopCutOnTwoThreadsPlaceEveryRow) {
  // From 2^20 rows the two halves of the first file cut are split on two threads and their
  // trees joined: the joined tree must still put each row where the partition put it.
  Points p = Clustered((1 << 20) + 5000, 12);
  std::vector<double> w(p.x.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = 1 + static_cast<double>(i % 5);
  for (ForceUtm utm : {ForceUtm::kNone, ForceUtm::kFile}) {
    for (bool weighted : {false, true}) {
      PartitionOptions o;
      o.max_per_file = (weighted ? 3.0 : 1.0) * 150000;
      o.max_per_chunk = (weighted ? 3.0 : 1.0) * 40000;
      o.split_method = weighted ? SplitMethod::kMean : SplitMethod::kMedian;
      o.force_utm = utm;
      PartitionInput in = p.input();
      if (weighted) in.weight = w.data();
      auto result = Partition(in, o);
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      const Partitioning& part = *result;
      ExpectValid(part, static_cast<int64_t>(p.x.size()));
      EXPECT_GT(part.num_files, 4);
      ExpectEveryRowFound(part, p);
    }
  }
}

TEST(Partitioner, RowNumbersOfASampleBreakTies) {
  // A sample passes the numbers of its rows: the order and the cuts use them.
  Points p;
  std::vector<int64_t> rows;
  for (int i = 0; i < 100; ++i) {
    p.x.push_back(10);
    p.y.push_back(10);
    rows.push_back(1000 + 10 * i);
  }
  PartitionOptions o;
  o.max_per_file = 100;
  o.max_per_chunk = 50;
  PartitionInput in = p.input();
  in.row = rows.data();
  auto result = Partition(in, o);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->num_chunks(), 2);
  EXPECT_EQ(result->order[0], 1000);
  // An unsampled row between two sampled ones goes with its neighbours in row order.
  EXPECT_EQ(result->FindChunk(10, 10, 1005), 0);
  EXPECT_EQ(result->FindChunk(10, 10, 1995), 1);
}

TEST(Partitioner, RejectsBadInput) {
  Points p;
  p.x = {0, NAN};
  p.y = {0, 0};
  PartitionOptions o;
  o.max_per_file = 10;
  o.max_per_chunk = 1;
  auto r = Partition(p.input(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 1 has a non-finite centroid"), std::string::npos);
  o.max_per_chunk = 0;
  EXPECT_FALSE(Partition(Points{}.input(), o).ok());
}

TEST(Partitioner, ResolveMaximaFollowsFusedDefaults) {
  double f, c;
  ResolveMaxima(1e6, nullptr, nullptr, 0, &f, &c);
  EXPECT_EQ(f, 1e5);
  EXPECT_EQ(c, 1e4);
  ResolveMaxima(1e6, nullptr, nullptr, 500, &f, &c);
  EXPECT_EQ(c, 2000);
  double mpc = 3e5;
  ResolveMaxima(1e6, nullptr, &mpc, 0, &f, &c);
  EXPECT_EQ(c, 3e5);
  EXPECT_EQ(f, 3e5);  // never below the chunk maximum
}

}  // namespace
}  // namespace terrafuse::ingest
