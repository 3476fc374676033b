// A small ZIP writer for container formats made of XML parts (xlsx): members deflated with
// zlib in memory, streamed in pieces, no ZIP64 (each member and the archive stay under
// 4 GiB). Timestamps are fixed (1980-01-01), so equal input gives equal bytes.
#pragma once

#include <arrow/buffer.h>
#include <arrow/buffer_builder.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

typedef struct z_stream_s z_stream;

namespace terrafuse::encode::internal {

class ZipWriter {
 public:
  /// `level` is zlib's, 0 (store in deflate blocks) to 9.
  explicit ZipWriter(int level);
  ~ZipWriter();
  ZipWriter(const ZipWriter&) = delete;
  ZipWriter& operator=(const ZipWriter&) = delete;

  /// Starts member `name`; its data follows through Write, then EndMember.
  Status BeginMember(std::string_view name);
  Status Write(std::string_view data);
  Status EndMember();
  /// A whole member at once.
  Status AddMember(std::string_view name, std::string_view data);

  /// Writes the central directory and returns the archive.
  Result<std::shared_ptr<arrow::Buffer>> Finish();

 private:
  struct Member {
    std::string name;
    uint32_t crc = 0;
    uint64_t compressed = 0;
    uint64_t size = 0;
    uint64_t offset = 0;
  };
  Status Deflate(std::string_view data, bool finish);

  int level_;
  arrow::BufferBuilder out_;
  std::vector<Member> members_;
  std::unique_ptr<z_stream> stream_;
  bool open_ = false;
};

}  // namespace terrafuse::encode::internal
