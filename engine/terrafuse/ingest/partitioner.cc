#include "terrafuse/ingest/partitioner.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

namespace terrafuse::ingest {


namespace {

// The UTM zone (0..59) of a longitude.
int Zone(double lon) { return std::clamp(static_cast<int>(std::floor((lon + 180) / 6)), 0, 59); }

// A row with its centroid and weight: the splitter moves these, so every pass over a part
// reads memory in order (chasing row indices into coordinate arrays was cache-miss bound).
struct Item {
  double x, y, w;
  int64_t row;
};

struct Range {
  Item* begin;
  Item* end;
  double weight;
};

double Weight(const Item* b, const Item* e, bool weighted) {
  if (!weighted) return static_cast<double>(e - b);
  double total = 0;
  for (const Item* p = b; p != e; ++p) total += p->w;
  return total;
}

class Splitter {
 public:
  Splitter(bool weighted, const PartitionOptions& options) : weighted_(weighted), options_(options) {}

  // Cuts `root` into parts of at most `max` weight; appends them in depth-first order, so
  // neighbouring parts are neighbours in space, and records the cuts in `tree`. With
  // `utm_zones`, a part whose centroids lie in more than one UTM zone (6° of longitude) is
  // cut at a zone edge whatever its weight.
  void Split(Range root, double max, bool utm_zones, std::vector<Range>* leaves, SplitTree* tree) const {
    using Node = SplitTree::Node;
    tree->nodes.assign(1, Node{});
    std::vector<std::pair<Range, int32_t>> stack{{root, 0}};
    while (!stack.empty()) {
      auto [r, node] = stack.back();
      stack.pop_back();
      Node cut;
      Item* mid = CutOf(r, max, utm_zones, &cut);
      if (mid == nullptr) {  // small enough, or identical centroids not to be split
        tree->nodes[node].value = static_cast<double>(leaves->size());
        leaves->push_back(r);
        continue;
      }
      cut.left = static_cast<int32_t>(tree->nodes.size());
      cut.right = cut.left + 1;
      tree->nodes[node] = cut;
      tree->nodes.resize(tree->nodes.size() + 2);
      Range left{r.begin, mid, Weight(r.begin, mid, weighted_)};
      Range right{mid, r.end, weighted_ ? r.weight - left.weight : static_cast<double>(r.end - mid)};
      stack.push_back({right, cut.right});
      stack.push_back({left, cut.left});
    }
  }

  // Split with the two halves of the first cut on two threads (each pass over a part is
  // memory-bound and the top cuts see every row): the same leaves and cuts as Split, the
  // tree's nodes numbered left subtree first.
  void SplitInTwo(Range root, double max, bool utm_zones, std::vector<Range>* leaves, SplitTree* tree) const {
    using Node = SplitTree::Node;
    Node cut;
    Item* mid = root.end - root.begin >= kParallelRows ? CutOf(root, max, utm_zones, &cut) : nullptr;
    if (mid == nullptr) return Split(root, max, utm_zones, leaves, tree);
    Range left{root.begin, mid, Weight(root.begin, mid, weighted_)};
    Range right{mid, root.end, weighted_ ? root.weight - left.weight : static_cast<double>(root.end - mid)};
    std::vector<Range> right_leaves;
    SplitTree left_tree, right_tree;
    std::thread helper([&] { Split(right, max, utm_zones, &right_leaves, &right_tree); });
    Split(left, max, utm_zones, leaves, &left_tree);
    helper.join();
    auto left_size = static_cast<int32_t>(left_tree.nodes.size());
    auto left_leaves = static_cast<double>(leaves->size());
    cut.left = 1;
    cut.right = 1 + left_size;
    tree->nodes.assign(1, cut);
    for (Node node : left_tree.nodes) {
      if (node.kind != Node::Kind::kLeaf) {
        node.left += 1;
        node.right += 1;
      }
      tree->nodes.push_back(node);
    }
    for (Node node : right_tree.nodes) {
      if (node.kind == Node::Kind::kLeaf) {
        node.value += left_leaves;
      } else {
        node.left += 1 + left_size;
        node.right += 1 + left_size;
      }
      tree->nodes.push_back(node);
    }
    leaves->insert(leaves->end(), right_leaves.begin(), right_leaves.end());
  }

 private:
  static constexpr int64_t kParallelRows = 1 << 20;

  // How `r` is cut (its split point and the rule in `cut`), or nullptr when it is a leaf.
  Item* CutOf(const Range& r, double max, bool utm_zones, SplitTree::Node* cut) const {
    Item* mid = utm_zones ? CutAtZoneEdge(r, cut) : nullptr;
    double k = std::ceil(r.weight / max - 1e-9);
    if (!mid && k > 1 && r.end - r.begin > 1) mid = Cut(r, k, cut);
    return mid;
  }

  // Splits at the UTM zone edge in the middle of the zones spanned, or nullptr for one zone.
  Item* CutAtZoneEdge(const Range& r, SplitTree::Node* cut) const {
    int zmin = 59, zmax = 0;
    for (const Item* p = r.begin; p != r.end; ++p) {
      int z = Zone(p->x);
      zmin = std::min(zmin, z);
      zmax = std::max(zmax, z);
    }
    if (zmin >= zmax) return nullptr;
    int zone = (zmin + zmax + 1) / 2;
    cut->kind = SplitTree::Node::Kind::kZone;
    cut->value = zone;
    return std::partition(r.begin, r.end, [&](const Item& i) { return Zone(i.x) < zone; });
  }

  // Returns the split point of `r` into about floor(k/2) : ceil(k/2) of its weight, or
  // nullptr when it cannot be split. `cut` gets the rule: the left part is every item
  // ordered before (value, tie_row) by (key, row).
  Item* Cut(const Range& r, double k, SplitTree::Node* cut) const {
    double minx = HUGE_VAL, maxx = -HUGE_VAL, miny = HUGE_VAL, maxy = -HUGE_VAL;
    for (const Item* p = r.begin; p != r.end; ++p) {
      minx = std::min(minx, p->x);
      maxx = std::max(maxx, p->x);
      miny = std::min(miny, p->y);
      maxy = std::max(maxy, p->y);
    }
    double frac = std::floor(k / 2) / k;
    int64_t n = r.end - r.begin;
    auto by_row = [](const Item& a, const Item& b) { return a.row < b.row; };
    if (minx == maxx && miny == maxy) {
      // All rows share one centroid: no spatial cut exists. Cut by position (input order,
      // so the result stays deterministic) when allowed.
      if (!options_.split_identical_centroids) return nullptr;
      std::sort(r.begin, r.end, by_row);
      Item* mid = r.begin + std::clamp<int64_t>(std::llround(n * frac), 1, n - 1);
      *cut = {SplitTree::Node::Kind::kX, mid->x, mid->row};
      return mid;
    }
    double width = maxx - minx, height = maxy - miny;
    bool on_x = width / options_.max_width_ratio >= height / options_.max_height_ratio;
    cut->kind = on_x ? SplitTree::Node::Kind::kX : SplitTree::Node::Kind::kY;
    auto key = [on_x](const Item& i) { return on_x ? i.x : i.y; };
    auto less = [&](const Item& a, const Item& b) {
      double ka = key(a), kb = key(b);
      return ka < kb || (ka == kb && a.row < b.row);
    };
    if (options_.split_method == SplitMethod::kMean) {
      double sum = 0, wsum = 0;
      for (const Item* p = r.begin; p != r.end; ++p) {
        double w = weighted_ ? p->w : 1.0;
        sum += key(*p) * w;
        wsum += w;
      }
      double mean = wsum > 0 ? sum / wsum : 0;
      Item* mid = std::partition(r.begin, r.end, [&](const Item& i) { return key(i) < mean; });
      // Zero total weight or float rounding can put everything on one side: fall back to
      // the median so the part still shrinks.
      if (mid != r.begin && mid != r.end) {
        cut->value = mean;
        cut->tie_row = INT64_MIN;  // key == mean goes right
        return mid;
      }
    }
    if (!weighted_) {
      Item* mid = r.begin + std::clamp<int64_t>(std::llround(n * frac), 1, n - 1);
      std::nth_element(r.begin, mid, r.end, less);
      cut->value = key(*mid);
      cut->tie_row = mid->row;
      return mid;
    }
    std::sort(r.begin, r.end, less);
    double target = r.weight * frac, acc = 0;
    Item* p = r.begin;
    for (; p != r.end - 1; ++p) {
      acc += p->w;
      if (acc >= target) break;
    }
    Item* mid = std::clamp(p + 1, r.begin + 1, r.end - 1);
    cut->value = key(*mid);
    cut->tie_row = mid->row;
    return mid;
  }

  bool weighted_;
  const PartitionOptions& options_;
};

}  // namespace

int64_t SplitTree::Find(double x, double y, int64_t row) const {
  const Node* node = &nodes[0];
  while (node->kind != Node::Kind::kLeaf) {
    bool left;
    if (node->kind == Node::Kind::kZone) {
      left = Zone(x) < node->value;
    } else {
      double key = node->kind == Node::Kind::kX ? x : y;
      left = key < node->value || (key == node->value && row < node->tie_row);
    }
    node = &nodes[left ? node->left : node->right];
  }
  return static_cast<int64_t>(node->value);
}

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
  result.chunk_offsets.push_back(0);
  if (input.num_rows == 0) return result;
  bool weighted = input.weight != nullptr;
  std::vector<Item> items(input.num_rows);
  for (int64_t i = 0; i < input.num_rows; ++i) {
    items[i] = {input.x[i], input.y[i], weighted ? input.weight[i] : 1.0, input.row ? input.row[i] : i};
  }
  Splitter splitter(weighted, options);
  Item* begin = items.data();
  Item* end = begin + input.num_rows;

  std::vector<Range> files;
  splitter.SplitInTwo({begin, end, Weight(begin, end, weighted)}, options.max_per_file,
                      options.force_utm == ForceUtm::kFile, &files, &result.file_tree);
  // Files are cut into chunks independently: two threads, results kept in file order.
  std::vector<std::vector<Range>> chunks(files.size());
  result.chunk_trees.resize(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t f = next++; f < files.size(); f = next++) {
      splitter.Split(files[f], options.max_per_chunk, options.force_utm != ForceUtm::kNone, &chunks[f],
                     &result.chunk_trees[f]);
    }
  };
  std::thread helper;
  if (files.size() > 1 && input.num_rows > 100000) helper = std::thread(work);
  work();
  if (helper.joinable()) helper.join();
  result.order.resize(input.num_rows);
  for (int64_t i = 0; i < input.num_rows; ++i) result.order[i] = items[i].row;
  for (size_t f = 0; f < files.size(); ++f) {
    result.file_first_chunk.push_back(result.num_chunks());
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
