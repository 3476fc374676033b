// A zlib stream that codes every byte as a Huffman literal (no LZ77 matching), the way zlib's
// Z_HUFFMAN_ONLY does. On data where matching finds little (imagery, noise) it is about as
// small as level 1 and several times faster: the matching is most of a compressor's time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace terrafuse::encode {

class LiteralZlib {
 public:
  // Counts the bytes and builds one Huffman code per block of `data`; `data` must outlive
  // Write().
  LiteralZlib(const uint8_t* data, size_t size);

  // The exact size of the zlib stream: header, blocks, Adler-32.
  size_t size() const { return 2 + (bits_ + 7) / 8 + 4; }

  // Writes size() bytes to `out`.
  void Write(uint8_t* out) const;

 private:
  struct Block {
    size_t begin = 0, end = 0;
    uint8_t lengths[258] = {};    // literal/length code lengths: 256 literals, end of block (256), unused 257
    uint16_t codes[257] = {};     // bit-reversed, as deflate sends Huffman codes
    uint8_t cl_lengths[19] = {};  // the code-length code
    uint16_t cl_codes[19] = {};
    std::vector<uint8_t> cl_symbols;  // the code lengths as code-length symbols (17/18: zero runs)
    std::vector<uint8_t> cl_extra;    // each symbol's repeat count (extra bits), 0 for 0-15
    int hclen = 4;
  };

  const uint8_t* data_;
  size_t size_;
  std::vector<Block> blocks_;
  size_t bits_ = 0;  // of all blocks
};

}  // namespace terrafuse::encode
