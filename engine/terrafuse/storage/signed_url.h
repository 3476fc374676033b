// Signed URLs: a file path and an expiry time, authenticated with HMAC-SHA256 under a
// key that only the server holds (<home>/signing.key), so anyone holding the URL may
// read that one file until it expires, and nothing else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "terrafuse/common/status.h"

namespace terrafuse::storage {

/// Returns HMAC-SHA256(key, message) (RFC 2104), 32 raw bytes.
std::string HmacSha256(std::string_view key, std::string_view message);

/// Returns the lowercase hex signature of `path` valid until `expires` (Unix seconds).
std::string SignPath(std::string_view key, std::string_view path, int64_t expires);

/// Checks a signature in constant time. PermissionDenied for a bad signature or an
/// expired URL (the message says which, never the expected value).
Status VerifySignedPath(std::string_view key, std::string_view path, int64_t expires,
                        std::string_view signature, int64_t now);

/// Reads <home>/signing.key, creating it (random, mode 0600, written atomically) the first time.
Result<std::string> LoadOrCreateSigningKey(const std::string& home);

}  // namespace terrafuse::storage
