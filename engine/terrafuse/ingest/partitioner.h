// The geo-partitioner of fused.ingest: a KD-tree over geometry centroids that cuts the rows
// into files and each file into chunks (row groups), so every part stays under its maximum
// of the partitioning measure (rows, area, length or coordinates). Pure computation on
// arrays; reading and writing tables lives in ingest.h.
#pragma once

#include <cstdint>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::ingest {

enum class SplitMethod { kMean, kMedian };
/// Keep the centroids of each file (kFile, which implies chunks too) or of each chunk
/// (kChunk) inside one UTM zone (6° of longitude), cutting at zone edges when needed.
enum class ForceUtm { kNone, kFile, kChunk };

struct PartitionOptions {
  double max_per_file = 0;   // resolved maxima, in units of the weights (> 0)
  double max_per_chunk = 0;
  double max_width_ratio = 2;
  double max_height_ratio = 2;
  SplitMethod split_method = SplitMethod::kMean;
  ForceUtm force_utm = ForceUtm::kChunk;
  bool split_identical_centroids = true;
};

/// Centroids (WGS84 degrees) and the weight of each row in the partitioning measure.
/// `weight` empty means 1 per row (partitioning_method="rows"). `row` gives each row's
/// number in the whole input (ties are broken by it); empty means 0, 1, 2, ... (a sample of
/// the input passes the numbers of its rows, so its splits apply to every row).
struct PartitionInput {
  const double* x = nullptr;
  const double* y = nullptr;
  const double* weight = nullptr;
  int64_t num_rows = 0;
  const int64_t* row = nullptr;
};

/// The cuts of a KD-tree, so any row can be placed by its centroid and row number.
class SplitTree {
 public:
  struct Node {
    // kLeaf: part `value` (its index); kX / kY: left when (key, row) < (value, tie_row);
    // kZone: left when the UTM zone of x is below `value`.
    enum class Kind : uint8_t { kLeaf, kX, kY, kZone } kind = Kind::kLeaf;
    double value = 0;
    int64_t tie_row = 0;
    int32_t left = -1, right = -1;
  };
  /// The index of the part (leaf) holding a row; the tree must have a root.
  int64_t Find(double x, double y, int64_t row) const;
  std::vector<Node> nodes;  // nodes[0] is the root
};

/// Rows grouped file by file, chunk by chunk (in no set order inside a chunk: the writer
/// orders them along a Hilbert curve, placing rows with the trees).
struct Partitioning {
  std::vector<int64_t> order;            // row numbers (input.row), grouped by (file, chunk)
  std::vector<int64_t> chunk_offsets;    // chunk k holds order[chunk_offsets[k], chunk_offsets[k+1])
  std::vector<int32_t> chunk_file;       // file id of chunk k
  std::vector<int32_t> chunk_id;         // chunk id of chunk k inside its file
  int32_t num_files = 0;
  SplitTree file_tree;                 // leaf value: file id
  std::vector<SplitTree> chunk_trees;  // per file; leaf value: chunk id in the file
  std::vector<int64_t> file_first_chunk;  // index of each file's first chunk
  /// The chunk (index k) that holds a row with this centroid and row number.
  int64_t FindChunk(double x, double y, int64_t row) const {
    int64_t f = file_tree.Find(x, y, row);
    return file_first_chunk[f] + chunk_trees[f].Find(x, y, row);
  }
  int64_t num_chunks() const { return static_cast<int64_t>(chunk_file.size()); }
};

/// Splits the rows. Deterministic: the same input and options give the same result.
Result<Partitioning> Partition(const PartitionInput& input, const PartitionOptions& options);

/// Resolves Fused's `partitioning_maximum_per_file/_per_chunk` defaults: None is 1/10 (file)
/// and 1/100 (chunk) of `total`, or total/target_num_chunks for chunks when that is > 0.
/// The file maximum is never below the chunk maximum.
void ResolveMaxima(double total, const double* max_per_file, const double* max_per_chunk,
                   int64_t target_num_chunks, double* file_out, double* chunk_out);

}  // namespace terrafuse::ingest
