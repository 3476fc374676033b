#include "terrafuse/ingest/ingest.h"

#include <arrow/api.h>
#include <arrow/filesystem/localfs.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "terrafuse/ingest/table_reader.h"

namespace terrafuse::ingest {
namespace {

std::shared_ptr<arrow::Table> MakePoints(int n, uint32_t seed, double lon_offset = 0) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> lon(-10, 10), lat(40, 50);
  arrow::DoubleBuilder xs, ys;
  arrow::Int64Builder ids;
  for (int i = 0; i < n; ++i) {
    (void)xs.Append(lon(rng) + lon_offset);
    (void)ys.Append(lat(rng));
    (void)ids.Append(i);
  }
  auto schema = arrow::schema({arrow::field("id", arrow::int64()), arrow::field("LON", arrow::float64()),
                               arrow::field("LAT", arrow::float64())});
  return arrow::Table::Make(schema, {ids.Finish().ValueOrDie(), xs.Finish().ValueOrDie(), ys.Finish().ValueOrDie()});
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("tf-ingest-test-" + std::to_string(getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    fs_ = std::make_shared<arrow::fs::LocalFileSystem>();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<IngestResult> Run(const std::shared_ptr<arrow::Table>& t, const std::string& out, IngestOptions o) {
    o.lon_column = "LON";
    o.lat_column = "LAT";
    return Ingest(std::make_shared<arrow::TableBatchReader>(t), fs_, out, o);
  }

  std::filesystem::path dir_;
  std::shared_ptr<arrow::fs::FileSystem> fs_;
};

TEST_F(IngestTest, WritesTheFusedLayoutAndReadsItBack) {
  auto t = MakePoints(5000, 1);
  IngestOptions o;
  o.max_per_file = 2500;
  o.max_per_chunk = 500;
  o.split_method = "median";
  o.force_utm = "";  // the points span UTM zones 29-31
  std::string out = (dir_ / "table").string();
  auto r = Run(t, out, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->num_rows, 5000);
  EXPECT_EQ(r->num_files, 2);
  EXPECT_EQ(r->num_chunks, 10);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "table" / "0.parquet"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "table" / "1.parquet"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "table" / "_sample"));

  auto meta = ReadChunksMetadata(fs_, out).ValueOrDie();
  ASSERT_EQ(meta->num_rows(), 10);
  auto chunk = ReadChunk(fs_, out, "1", 2, {"id", "geometry"}).ValueOrDie();
  EXPECT_EQ(chunk->num_rows(), 500);
  EXPECT_EQ(chunk->num_columns(), 2);

  // Bounds read == brute force over the input.
  std::array<double, 4> b{-1, 44, 1, 46};
  ReadStats stats;
  auto got = ReadTable(fs_, out, b, {"id"}, &stats).ValueOrDie();
  const auto& xs = static_cast<const arrow::DoubleArray&>(*t->column(1)->chunk(0));
  const auto& ys = static_cast<const arrow::DoubleArray&>(*t->column(2)->chunk(0));
  int64_t expected = 0;
  for (int i = 0; i < 5000; ++i) expected += xs.Value(i) >= -1 && xs.Value(i) <= 1 && ys.Value(i) >= 44 && ys.Value(i) <= 46;
  EXPECT_EQ(got->num_rows(), expected);
  EXPECT_LT(stats.chunks_read, 10);
  EXPECT_EQ(got->schema()->field(0)->name(), "id");
  EXPECT_EQ(got->schema()->field(1)->name(), "geometry");
}

TEST_F(IngestTest, RowsInAChunkAreHilbertOrderedAndReadByPages) {
  const int n = 40000;
  auto t = MakePoints(n, 4);
  IngestOptions o;
  o.max_per_chunk = n;
  o.force_utm = "";
  std::string out = (dir_ / "table").string();
  ASSERT_TRUE(Run(t, out, o).ok());
  // One chunk of every row, in Hilbert order: consecutive rows are close (random order
  // would put them ~10 degrees apart).
  auto chunk = ReadChunk(fs_, out, "0", 0, {"LON", "LAT"}).ValueOrDie()->CombineChunks().ValueOrDie();
  ASSERT_EQ(chunk->num_rows(), n);
  const auto& cx = static_cast<const arrow::DoubleArray&>(*chunk->column(0)->chunk(0));
  const auto& cy = static_cast<const arrow::DoubleArray&>(*chunk->column(1)->chunk(0));
  double total = 0;
  for (int i = 1; i < n; ++i) total += std::hypot(cx.Value(i) - cx.Value(i - 1), cy.Value(i) - cy.Value(i - 1));
  EXPECT_LT(total / (n - 1), 0.5);
  // A small box decodes a few pages of the chunk, not all of it, and returns every hit.
  std::array<double, 4> b{-1, 44, 0, 45};
  ReadStats stats;
  auto got = ReadTable(fs_, out, b, {"id"}, &stats).ValueOrDie();
  const auto& xs = static_cast<const arrow::DoubleArray&>(*t->column(1)->chunk(0));
  const auto& ys = static_cast<const arrow::DoubleArray&>(*t->column(2)->chunk(0));
  int64_t expected = 0;
  for (int i = 0; i < n; ++i) expected += xs.Value(i) >= b[0] && xs.Value(i) <= b[2] && ys.Value(i) >= b[1] && ys.Value(i) <= b[3];
  ASSERT_GT(expected, 0);
  EXPECT_EQ(got->num_rows(), expected);
  EXPECT_EQ(stats.chunks_read, 1);
  EXPECT_GE(stats.rows_read, expected);
  EXPECT_LT(stats.rows_read, n / 4);
}

TEST_F(IngestTest, ByteIdenticalOutputForTheSameInput) {
  auto t = MakePoints(3000, 2);
  IngestOptions o;
  o.target_num_chunks = 7;
  auto a = (dir_ / "a").string(), b = (dir_ / "b").string();
  ASSERT_TRUE(Run(t, a, o).ok());
  ASSERT_TRUE(Run(t, b, o).ok());
  for (const auto& entry : std::filesystem::directory_iterator(a)) {
    auto other = std::filesystem::path(b) / entry.path().filename();
    ASSERT_TRUE(std::filesystem::exists(other));
    auto read = [](const std::filesystem::path& p) {
      std::ifstream in(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    EXPECT_EQ(read(entry.path()), read(other)) << entry.path();
  }
}

TEST_F(IngestTest, SmallMemoryGroupsGiveTheSameTable) {
  // Chunks gathered a few at a time (several groups per file, several buckets) must write
  // exactly the bytes of the all-at-once path.
  auto t = MakePoints(6000, 9);
  IngestOptions o;
  o.max_per_file = 3000;
  o.max_per_chunk = 400;
  auto a = (dir_ / "a").string(), b = (dir_ / "b").string();
  ASSERT_TRUE(Run(t, a, o).ok());
  o.memory_budget = 1 << 20;  // buckets of about 1/8 MB: many
  auto r = Run(t, b, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(a)) {
    EXPECT_EQ(read(entry.path()), read(std::filesystem::path(b) / entry.path().filename())) << entry.path();
    ++files;
  }
  EXPECT_GE(files, 3);
}

TEST_F(IngestTest, OverwriteIsExplicit) {
  auto t = MakePoints(100, 3);
  std::string out = (dir_ / "t").string();
  ASSERT_TRUE(Run(t, out, {}).ok());
  auto again = Run(t, out, {});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("overwrite=True"), std::string::npos);
  IngestOptions o;
  o.overwrite = true;
  EXPECT_TRUE(Run(t, out, o).ok());
}

TEST_F(IngestTest, FailedIngestLeavesNoTable) {
  auto t = MakePoints(1000, 4, /*lon_offset=*/175);  // some longitudes beyond 180
  std::string out = (dir_ / "t").string();
  auto r = Run(t, out, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside WGS84 bounds"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir_));  // neither the table nor a temp directory
  IngestOptions o;
  o.drop_out_of_bounds = true;
  auto dropped = Run(t, out, o);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_GT(dropped->rows_dropped, 0);
  EXPECT_EQ(dropped->num_rows + dropped->rows_dropped, 1000);
}

TEST_F(IngestTest, CancelledIngestLeavesNoTable) {
  IngestOptions o;
  o.lon_column = "LON";
  o.lat_column = "LAT";
  IngestProgress progress;
  progress.cancel = true;
  auto r = Ingest(std::make_shared<arrow::TableBatchReader>(MakePoints(100, 8)), fs_, (dir_ / "t").string(), o,
                  &progress);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cancelled"), std::string::npos);
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
}

TEST_F(IngestTest, MissingLonLatColumnIsNamed) {
  auto t = MakePoints(10, 5);
  IngestOptions o;
  o.lon_column = "lng";
  o.lat_column = "LAT";
  auto r = Ingest(std::make_shared<arrow::TableBatchReader>(t), fs_, (dir_ / "t").string(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("column 'lng' not found"), std::string::npos);
}

TEST_F(IngestTest, PartitioningSchemaInputReusesBoxes) {
  std::string first = (dir_ / "day1").string(), second = (dir_ / "day2").string();
  IngestOptions o;
  o.target_num_chunks = 8;
  o.split_method = "median";
  ASSERT_TRUE(Run(MakePoints(4000, 6), first, o).ok());
  IngestOptions reuse;
  reuse.partitioning_schema_input = first;
  auto r = Run(MakePoints(4000, 7), second, reuse);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto m1 = ReadChunksMetadata(fs_, first).ValueOrDie();
  auto m2 = ReadChunksMetadata(fs_, second).ValueOrDie();
  EXPECT_EQ(m1->num_rows(), m2->num_rows());
}

}  // namespace
}  // namespace terrafuse::ingest
