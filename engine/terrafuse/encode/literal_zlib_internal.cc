#include "terrafuse/encode/literal_zlib_internal.h"

#include <libdeflate.h>

#include <algorithm>
#include <functional>
#include <queue>
#include <utility>

namespace terrafuse::encode {

namespace {

// One Huffman table per 32 KiB keeps the code close to each part of an image.
constexpr size_t kBlockBytes = size_t{1} << 15;
constexpr int kEndOfBlock = 256;
// The order in which deflate sends the code-length code's lengths (RFC 1951, 3.2.7).
constexpr uint8_t kClOrder[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

// Huffman code lengths of at most `max_bits` for `freq` (no count, no code). Too deep a tree
// is flattened by halving the counts and building again. Decoders such as zlib refuse an
// incomplete code, so a code with one symbol gets a second.
void HuffmanLengths(const uint32_t* freq, int n, int max_bits, uint8_t* lengths) {
  std::vector<uint32_t> counts(freq, freq + n);
  for (int i = 0, used = static_cast<int>(std::count_if(counts.begin(), counts.end(), [](uint32_t c) { return c > 0; }));
       used < 2 && i < n; ++i) {
    if (counts[i] == 0) counts[i] = 1, ++used;
  }
  for (;;) {
    using Node = std::pair<uint64_t, int>;  // weight, index (leaves first, then inner nodes)
    std::priority_queue<Node, std::vector<Node>, std::greater<>> queue;
    for (int i = 0; i < n; ++i) {
      if (counts[i]) queue.emplace(counts[i], i);
    }
    std::vector<int> parent(static_cast<size_t>(2 * n), -1);
    for (int next = n; queue.size() > 1; ++next) {
      const auto [wa, a] = queue.top();
      queue.pop();
      const auto [wb, b] = queue.top();
      queue.pop();
      parent[a] = parent[b] = next;
      queue.emplace(wa + wb, next);
    }
    int longest = 0;
    for (int i = 0; i < n; ++i) {
      int depth = 0;
      for (int p = i; counts[i] && parent[p] >= 0; p = parent[p]) ++depth;
      lengths[i] = static_cast<uint8_t>(depth);
      longest = std::max(longest, depth);
    }
    if (longest <= max_bits) return;
    for (auto& c : counts) c = c ? (c + 1) / 2 : 0;
  }
}

// Canonical codes for `lengths` (RFC 1951, 3.2.2), bit-reversed: deflate packs bits from the
// least significant end but sends Huffman codes from their most significant bit.
void CanonicalCodes(const uint8_t* lengths, int n, uint16_t* codes) {
  int count[16] = {}, next[16] = {};
  for (int i = 0; i < n; ++i) ++count[lengths[i]];
  count[0] = 0;
  for (int bits = 1, code = 0; bits < 16; ++bits) next[bits] = code = (code + count[bits - 1]) << 1;
  for (int i = 0; i < n; ++i) {
    const int len = lengths[i];
    if (len == 0) continue;
    uint32_t code = static_cast<uint32_t>(next[len]++), reversed = 0;
    for (int b = 0; b < len; ++b, code >>= 1) reversed = (reversed << 1) | (code & 1);
    codes[i] = static_cast<uint16_t>(reversed);
  }
}

// Deflate's bit order: least significant bit first, 32 bits stored at a time.
struct BitWriter {
  uint8_t* out;
  uint64_t acc = 0;
  int count = 0;

  // Up to 32 bits pending, so two codes of up to 15 bits fit before a store.
  void Add(uint32_t bits, int n) {
    acc |= static_cast<uint64_t>(bits) << count;
    count += n;
  }
  void Store() {
    if (count < 32) return;
    for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(acc >> (8 * i));
    out += 4, acc >>= 32, count -= 32;
  }
  void Put(uint32_t bits, int n) { Add(bits, n), Store(); }
  void Flush() {
    for (; count > 0; count -= 8, acc >>= 8) *out++ = static_cast<uint8_t>(acc);
  }
};

}  // namespace

LiteralZlib::LiteralZlib(const uint8_t* data, size_t size) : data_(data), size_(size) {
  size_t begin = 0;
  do {
    Block& block = blocks_.emplace_back();
    block.begin = begin;
    block.end = std::min(size, begin + kBlockBytes);
    begin = block.end;
    // Four histograms: consecutive equal bytes would otherwise wait on each other's increment.
    uint32_t hist[4][257] = {};
    size_t i = block.begin;
    for (; i + 4 <= block.end; i += 4) {
      ++hist[0][data[i]], ++hist[1][data[i + 1]], ++hist[2][data[i + 2]], ++hist[3][data[i + 3]];
    }
    for (; i < block.end; ++i) ++hist[0][data[i]];
    uint32_t freq[257];
    for (int s = 0; s < 256; ++s) freq[s] = hist[0][s] + hist[1][s] + hist[2][s] + hist[3][s];
    freq[kEndOfBlock] = 1;
    HuffmanLengths(freq, 257, 15, block.lengths);
    CanonicalCodes(block.lengths, 257, block.codes);

    // The 257 literal/length code lengths and the one (unused) distance code's, as
    // code-length symbols: runs of zeros as 17 (3-10) and 18 (11-138).
    uint8_t sequence[258];
    std::copy_n(block.lengths, 257, sequence);
    sequence[257] = 0;
    for (size_t k = 0; k < 258;) {
      size_t run = 0;
      while (sequence[k] == 0 && k + run < 258 && sequence[k + run] == 0 && run < 138) ++run;
      if (run >= 11) {
        block.cl_symbols.push_back(18), block.cl_extra.push_back(static_cast<uint8_t>(run - 11));
      } else if (run >= 3) {
        block.cl_symbols.push_back(17), block.cl_extra.push_back(static_cast<uint8_t>(run - 3));
      } else {
        run = 1;
        block.cl_symbols.push_back(sequence[k]), block.cl_extra.push_back(0);
      }
      k += run;
    }
    uint32_t cl_freq[19] = {};
    for (uint8_t s : block.cl_symbols) ++cl_freq[s];
    HuffmanLengths(cl_freq, 19, 7, block.cl_lengths);
    CanonicalCodes(block.cl_lengths, 19, block.cl_codes);
    block.hclen = 19;
    while (block.hclen > 4 && block.cl_lengths[kClOrder[block.hclen - 1]] == 0) --block.hclen;

    bits_ += 3 + 5 + 5 + 4 + 3 * static_cast<size_t>(block.hclen);
    for (uint8_t s : block.cl_symbols) bits_ += block.cl_lengths[s] + (s == 17 ? 3 : s == 18 ? 7 : 0);
    for (int s = 0; s < 257; ++s) bits_ += static_cast<size_t>(freq[s]) * block.lengths[s];
  } while (begin < size);
}

void LiteralZlib::Write(uint8_t* out) const {
  out[0] = 0x78, out[1] = 0x01;  // deflate, 32 KiB window, fastest; (0x7801 % 31 == 0)
  BitWriter writer{out + 2};
  for (const Block& block : blocks_) {
    const bool final = &block == &blocks_.back();
    writer.Put((final ? 1u : 0u) | (2u << 1), 3);  // BFINAL, BTYPE 2: dynamic Huffman codes
    writer.Put(0, 5);                              // HLIT: 257 literal/length codes
    writer.Put(0, 5);                              // HDIST: 1 distance code (of length 0: none used)
    writer.Put(static_cast<uint32_t>(block.hclen - 4), 4);
    for (int i = 0; i < block.hclen; ++i) writer.Put(block.cl_lengths[kClOrder[i]], 3);
    for (size_t i = 0; i < block.cl_symbols.size(); ++i) {
      const uint8_t s = block.cl_symbols[i];
      writer.Put(block.cl_codes[s], block.cl_lengths[s]);
      if (s >= 17) writer.Put(block.cl_extra[i], s == 17 ? 3 : 7);
    }
    const uint8_t* p = data_ + block.begin;
    const uint8_t* end = data_ + block.end;
    for (; p + 2 <= end; p += 2) {
      writer.Add(block.codes[p[0]], block.lengths[p[0]]);
      writer.Add(block.codes[p[1]], block.lengths[p[1]]);
      writer.Store();
    }
    if (p < end) writer.Put(block.codes[*p], block.lengths[*p]);
    writer.Put(block.codes[kEndOfBlock], block.lengths[kEndOfBlock]);
  }
  writer.Flush();
  const uint32_t adler = libdeflate_adler32(1, data_, size_);
  for (int i = 0; i < 4; ++i) writer.out[i] = static_cast<uint8_t>(adler >> (24 - 8 * i));
}

}  // namespace terrafuse::encode
