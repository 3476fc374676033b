#include "terrafuse/common/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace terrafuse {

struct Hasher::State {
  XXH3_state_t xxh;
};

Hasher::Hasher() : state_(std::make_unique<State>()) { XXH3_128bits_reset(&state_->xxh); }
Hasher::~Hasher() = default;
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;

void Hasher::Update(const void* data, size_t size) {
  XXH3_128bits_update(&state_->xxh, data, size);
}

static std::string ToHex(XXH128_hash_t h) {
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, h);
  static const char* kDigits = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[canon.digest[i] >> 4];
    out[2 * i + 1] = kDigits[canon.digest[i] & 15];
  }
  return out;
}

std::string Hasher::HexDigest() const { return ToHex(XXH3_128bits_digest(&state_->xxh)); }

std::string HashHex(std::string_view data) { return ToHex(XXH3_128bits(data.data(), data.size())); }

uint64_t Hash64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

}  // namespace terrafuse
