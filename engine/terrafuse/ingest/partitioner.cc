#include "terrafuse/ingest/partitioner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

namespace terrafuse::ingest {

namespace {

struct Range {
  int64_t* begin;
  int64_t* end;
  double weight;
};

class Splitter {
 public:
  Splitter(const PartitionInput& input, const PartitionOptions& options)
      : x_(input.x), y_(input.y), w_(input.weight), options_(options) {}

  double Weight(const int64_t* b, const int64_t* e) const {
    if (!w_) return static_cast<double>(e - b);
    double total = 0;
    for (const int64_t* p = b; p != e; ++p) total += w_[*p];
    return total;
  }

  // Cuts `root` into parts of at most `max` weight; appends them in depth-first order, so
  // neighbouring parts are neighbours in space. With `utm_zones`, a part whose centroids lie
  // in more than one UTM zone (6° of longitude) is cut at a zone edge whatever its weight.
  void Split(Range root, double max, bool utm_zones, std::vector<Range>* leaves) const {
    std::vector<Range> stack{root};
    while (!stack.empty()) {
      Range r = stack.back();
      stack.pop_back();
      int64_t n = r.end - r.begin;
      int64_t* mid = utm_zones ? CutAtZoneEdge(r) : nullptr;
      if (!mid) {
        double k = std::ceil(r.weight / max - 1e-9);
        if (k <= 1 || n <= 1) {
          leaves->push_back(r);
          continue;
        }
        mid = Cut(r, k);
      }
      if (mid == nullptr) {  // identical centroids, not to be split
        leaves->push_back(r);
        continue;
      }
      Range left{r.begin, mid, Weight(r.begin, mid)};
      Range right{mid, r.end, w_ ? r.weight - left.weight : static_cast<double>(r.end - mid)};
      stack.push_back(right);
      stack.push_back(left);
    }
  }

 private:
  // Returns the split point of `r` into about floor(k/2) : ceil(k/2) of its weight, or
  // nullptr when it cannot be split.
  static int Zone(double lon) { return std::clamp(static_cast<int>(std::floor((lon + 180) / 6)), 0, 59); }

  // Splits at the UTM zone edge in the middle of the zones spanned, or nullptr for one zone.
  int64_t* CutAtZoneEdge(const Range& r) const {
    int zmin = 59, zmax = 0;
    for (const int64_t* p = r.begin; p != r.end; ++p) {
      int z = Zone(x_[*p]);
      zmin = std::min(zmin, z);
      zmax = std::max(zmax, z);
    }
    if (zmin >= zmax) return nullptr;
    int zone = (zmin + zmax + 1) / 2;
    return std::partition(r.begin, r.end, [&](int64_t i) { return Zone(x_[i]) < zone; });
  }

  int64_t* Cut(const Range& r, double k) const {
    double minx = HUGE_VAL, maxx = -HUGE_VAL, miny = HUGE_VAL, maxy = -HUGE_VAL;
    for (const int64_t* p = r.begin; p != r.end; ++p) {
      minx = std::min(minx, x_[*p]);
      maxx = std::max(maxx, x_[*p]);
      miny = std::min(miny, y_[*p]);
      maxy = std::max(maxy, y_[*p]);
    }
    double frac = std::floor(k / 2) / k;
    int64_t n = r.end - r.begin;
    if (minx == maxx && miny == maxy) {
      // All rows share one centroid: no spatial cut exists. Cut by position (input order,
      // so the result stays deterministic) when allowed.
      if (!options_.split_identical_centroids) return nullptr;
      std::sort(r.begin, r.end);
      return r.begin + std::clamp<int64_t>(std::llround(n * frac), 1, n - 1);
    }
    double width = maxx - minx, height = maxy - miny;
    const double* c = width / options_.max_width_ratio >= height / options_.max_height_ratio ? x_ : y_;
    auto less = [c](int64_t a, int64_t b) { return c[a] < c[b] || (c[a] == c[b] && a < b); };
    if (options_.split_method == SplitMethod::kMean) {
      double sum = 0, wsum = 0;
      for (const int64_t* p = r.begin; p != r.end; ++p) {
        double w = w_ ? w_[*p] : 1.0;
        sum += c[*p] * w;
        wsum += w;
      }
      double mean = wsum > 0 ? sum / wsum : 0;
      int64_t* mid = std::partition(r.begin, r.end, [&](int64_t i) { return c[i] < mean; });
      // Zero total weight or float rounding can put everything on one side: fall back to
      // the median so the part still shrinks.
      if (mid != r.begin && mid != r.end) return mid;
    }
    if (!w_) {
      // Select on (coordinate, row) pairs copied once: the comparisons then walk memory in
      // order instead of chasing row indices into the coordinate array.
      int64_t k = std::clamp<int64_t>(std::llround(n * frac), 1, n - 1);
      std::vector<std::pair<double, int64_t>> keys(n);
      for (int64_t i = 0; i < n; ++i) keys[i] = {c[r.begin[i]], r.begin[i]};
      std::nth_element(keys.begin(), keys.begin() + k, keys.end());
      for (int64_t i = 0; i < n; ++i) r.begin[i] = keys[i].second;
      return r.begin + k;
    }
    std::sort(r.begin, r.end, less);
    double target = r.weight * frac, acc = 0;
    int64_t* p = r.begin;
    for (; p != r.end - 1; ++p) {
      acc += w_[*p];
      if (acc >= target) break;
    }
    return std::clamp(p + 1, r.begin + 1, r.end - 1);
  }

  const double* x_;
  const double* y_;
  const double* w_;
  const PartitionOptions& options_;
};

}  // namespace

void ResolveMaxima(double total, const double* max_per_file, const double* max_per_chunk,
                   int64_t target_num_chunks, double* file_out, double* chunk_out) {
  double chunk = max_per_chunk ? *max_per_chunk
                 : target_num_chunks > 0 ? total / static_cast<double>(target_num_chunks)
                                         : total / 100;
  double file = max_per_file ? *max_per_file : total / 10;
  // Nothing to split (empty input, zero total) still needs positive maxima.
  if (!(chunk > 0)) chunk = 1;
  if (!(file > 0)) file = chunk;
  *chunk_out = chunk;
  *file_out = std::max(file, chunk);
}

Result<Partitioning> Partition(const PartitionInput& input, const PartitionOptions& options) {
  if (!(options.max_per_file > 0) || !(options.max_per_chunk > 0)) {
    return InvalidArgument("partitioning maxima must be > 0, got per_file=", options.max_per_file,
                           " per_chunk=", options.max_per_chunk);
  }
  if (!(options.max_width_ratio > 0) || !(options.max_height_ratio > 0)) {
    return InvalidArgument("partitioning_max_width_ratio and partitioning_max_height_ratio must be > 0");
  }
  for (int64_t i = 0; i < input.num_rows; ++i) {
    if (!std::isfinite(input.x[i]) || !std::isfinite(input.y[i])) {
      return InvalidArgument("row ", i, " has a non-finite centroid (", input.x[i], ", ", input.y[i], ")");
    }
    if (input.weight && !(input.weight[i] >= 0)) {
      return InvalidArgument("row ", i, " has a negative or NaN partitioning weight ", input.weight[i]);
    }
  }
  Partitioning result;
  result.order.resize(input.num_rows);
  for (int64_t i = 0; i < input.num_rows; ++i) result.order[i] = i;
  Splitter splitter(input, options);
  int64_t* begin = result.order.data();
  int64_t* end = begin + input.num_rows;
  result.chunk_offsets.push_back(0);
  if (input.num_rows == 0) return result;

  std::vector<Range> files;
  splitter.Split({begin, end, splitter.Weight(begin, end)}, options.max_per_file,
                 options.force_utm == ForceUtm::kFile, &files);
  // Files are cut into chunks independently: two threads, results kept in file order.
  std::vector<std::vector<Range>> chunks(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t f = next++; f < files.size(); f = next++) {
      splitter.Split(files[f], options.max_per_chunk, options.force_utm != ForceUtm::kNone, &chunks[f]);
      for (const Range& chunk : chunks[f]) std::sort(chunk.begin, chunk.end);  // input order inside a chunk
    }
  };
  std::thread helper;
  if (files.size() > 1 && input.num_rows > 100000) helper = std::thread(work);
  work();
  if (helper.joinable()) helper.join();
  for (size_t f = 0; f < files.size(); ++f) {
    int32_t chunk_id = 0;
    for (const Range& chunk : chunks[f]) {
      result.chunk_offsets.push_back(chunk.end - begin);
      result.chunk_file.push_back(result.num_files);
      result.chunk_id.push_back(chunk_id++);
    }
    ++result.num_files;
  }
  return result;
}

}  // namespace terrafuse::ingest
