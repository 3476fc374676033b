// Secrets for tokens: OS randomness, SHA-256 and constant-time comparison.
#pragma once

#include <string>
#include <string_view>

#include "terrafuse/common/status.h"

namespace terrafuse::udf::internal {

/// Returns `count` characters of [A-Za-z0-9] drawn uniformly from getrandom(2)
/// (rejection sampling: no modulo bias). 32 characters carry about 190 bits.
Result<std::string> RandomAlnum(size_t count);

/// Returns the SHA-256 digest of `data` (32 raw bytes).
std::string Sha256(std::string_view data);

/// Returns whether `a` equals `b`, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace terrafuse::udf::internal
