#include "terrafuse/udf/crypto_internal.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace terrafuse::udf::internal {

Result<std::string> RandomAlnum(size_t count) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  static constexpr unsigned kAlphabetSize = sizeof(kAlphabet) - 1;  // 62
  static constexpr unsigned kLimit = 256 - 256 % kAlphabetSize;     // 248: unbiased bytes
  std::string out;
  out.reserve(count);
  unsigned char buffer[64];
  while (out.size() < count) {
    ssize_t n = ::getrandom(buffer, sizeof(buffer), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("Cannot read random bytes for a token (getrandom): ", std::strerror(errno));
    }
    for (ssize_t i = 0; i < n && out.size() < count; ++i) {
      if (buffer[i] < kLimit) out += kAlphabet[buffer[i] % kAlphabetSize];
    }
  }
  return out;
}

std::string Sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // EVP_Digest only fails on allocation failure, which is fatal elsewhere anyway.
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) size = 0;
  return std::string(reinterpret_cast<const char*>(digest), size);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size() || a.empty()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace terrafuse::udf::internal
