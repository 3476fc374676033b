// Content hashing for cache keys: XXH3-128, streaming, rendered as 32 hex characters.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace terrafuse {

/// Accumulates bytes and yields a 128-bit digest. Not a cryptographic hash: keys are
/// content addresses, never secrets.
class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  /// Returns the digest of everything updated so far as 32 lowercase hex characters.
  std::string HexDigest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// Returns the XXH3-128 of `data` as 32 lowercase hex characters.
std::string HashHex(std::string_view data);

/// Returns the XXH3-64 of `data` (checksums of cache entries).
uint64_t Hash64(std::string_view data);

}  // namespace terrafuse
