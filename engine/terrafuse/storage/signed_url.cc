#include "terrafuse/storage/signed_url.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "terrafuse/udf/crypto_internal.h"

namespace terrafuse::storage {

namespace {
constexpr size_t kBlockSize = 64;  // SHA-256's block

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}
}  // namespace

std::string HmacSha256(std::string_view key, std::string_view message) {
  std::string block = key.size() > kBlockSize ? udf::internal::Sha256(key) : std::string(key);
  block.resize(kBlockSize, '\0');
  std::string inner(kBlockSize, '\0'), outer(kBlockSize, '\0');
  for (size_t i = 0; i < kBlockSize; ++i) {
    inner[i] = static_cast<char>(block[i] ^ 0x36);
    outer[i] = static_cast<char>(block[i] ^ 0x5c);
  }
  return udf::internal::Sha256(outer + udf::internal::Sha256(inner + std::string(message)));
}

std::string SignPath(std::string_view key, std::string_view path, int64_t expires) {
  return Hex(HmacSha256(key, std::string(path) + "\n" + std::to_string(expires)));
}

Status VerifySignedPath(std::string_view key, std::string_view path, int64_t expires,
                        std::string_view signature, int64_t now) {
  if (!udf::internal::ConstantTimeEquals(SignPath(key, path, expires), signature)) {
    return PermissionDenied("Invalid signature for '", path, "': the URL was altered or signed by another server");
  }
  if (now > expires) return PermissionDenied("The signed URL for '", path, "' has expired");
  return Status::OK();
}

Result<std::string> LoadOrCreateSigningKey(const std::string& home) {
  const std::string path = home + "/signing.key";
  {
    std::ifstream in(path);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      std::string key = text.str();
      if (key.size() >= 32) return key;
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  ARROW_ASSIGN_OR_RAISE(std::string key, udf::internal::RandomAlnum(43));  // ~256 bits
  const std::string temp = path + ".tmp" + std::to_string(getpid());
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return ErrnoError(errno, "Cannot create the URL signing key", temp);
  const bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::close(fd);
  // link() fails if another process won the race: then its key is the one to use.
  if (!ok || (::link(temp.c_str(), path.c_str()) != 0 && errno != EEXIST)) {
    ::unlink(temp.c_str());
    return ErrnoError(errno, "Cannot write the URL signing key", path);
  }
  ::unlink(temp.c_str());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace terrafuse::storage
