// The UDF registry of a data home: users, private API tokens, saved UDFs (catalog folders on
// disk, versions by content hash) and shared tokens, with the state in SQLite.
//
//   <home>/state.db                                  SQLite, WAL, schema in PRAGMA user_version
//   <home>/udfs/<owner>/<name>/<version>/            one catalog folder per saved version
//   <home>/udfs/.scratch/                            folders being written or deleted
//
// docs/design/registry.md describes the schema, the token formats and the rules.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"
#include "terrafuse/udf/udf_spec.h"

namespace terrafuse::udf {

namespace internal {
class Database;
}

/// A saved UDF as the registry records it.
struct SavedUdf {
  std::string owner;
  std::string name;
  std::string version;     // of the returned content (the current one, unless asked for another)
  int64_t created_at = 0;  // Unix ms when this version was first saved
  int64_t updated_at = 0;  // Unix ms of the UDF's last save
  bool is_public = false;  // reachable as "UDF_<name>"
  std::string folder;      // <home>/udfs/<owner>/<name>/<version>
};

/// A saved UDF and its content, read back from its folder.
struct UdfEntry {
  SavedUdf saved;
  UdfSpec spec;
};

enum class TokenScope { kPublic, kTeam };

/// Returns "public" or "team".
const char* TokenScopeName(TokenScope scope);

/// What a shared token allows (the settings of Fused's `create_udf_access_token`).
struct TokenSettings {
  /// A disabled token resolves to PermissionDenied until enabled again.
  bool enabled = true;
  /// Whether runs through the token may read and write the result cache.
  bool cache = true;
  /// TTL of cached results for this token; unset means the UDF's or the server's default.
  std::optional<int64_t> cache_max_age_seconds;
  /// kPublic: anyone with the token; kTeam: the route also requires a valid API token.
  TokenScope scope = TokenScope::kPublic;
  /// Whether the token's holder may read the UDF's code (fused.load of the token).
  bool include_code = false;
  /// Free-form JSON object kept with the token ("{}" when empty).
  std::string metadata_json = "{}";

  bool operator==(const TokenSettings&) const = default;
};

/// What a shared token or public name reaches: exactly one UDF, at its current version.
struct ResolvedToken {
  std::string owner;
  std::string udf_name;
  std::string version;
  TokenSettings settings;
  bool is_public_name = false;  // resolved from "UDF_<Name>", not from an "fsh_" token
};

struct SharedTokenInfo {
  std::string token;  // shown to its owner only
  std::string owner;
  std::string udf_name;
  TokenSettings settings;
  int64_t created_at = 0;  // Unix ms
  int64_t updated_at = 0;
};

/// Thread-safe: one SQLite connection serialized by one mutex (every call is a few indexed
/// statements). Save writes new folder files (with fsync) before taking the mutex, so saves do
/// not hold up token resolution. Several processes may share a home: SQLite's WAL and busy
/// timeout serialize their writes, and folders appear by rename.
class Registry {
 public:
  /// The user every home has, owner of UDFs saved without logging in.
  static constexpr const char* kLocalUser = "local@terrafuse";
  /// `PRAGMA user_version` of the schema this build writes.
  static constexpr int64_t kSchemaVersion = 1;
  /// How long a call waits for another process's write lock on state.db.
  static constexpr int kBusyTimeoutMs = 5000;
  static constexpr const char* kApiTokenPrefix = "tfk_";
  static constexpr const char* kSharedTokenPrefix = "fsh_";
  static constexpr const char* kPublicNamePrefix = "UDF_";
  /// Random characters after a token's prefix ([A-Za-z0-9]).
  static constexpr size_t kTokenRandomChars = 32;

  /// Opens the registry of `home_dir`, creating `<home>/state.db` (migrated to the current
  /// schema), `<home>/udfs/` and the local user when missing. Fails when the database was
  /// written by a newer terrafuse.
  static Result<std::shared_ptr<Registry>> Open(const std::string& home_dir);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // -- users --------------------------------------------------------------------------------
  /// Creates the user `owner` when missing.
  Status EnsureUser(std::string_view owner);
  /// Returns every user, sorted.
  Result<std::vector<std::string>> ListUsers();

  // -- private API tokens ("tfk_...") --------------------------------------------------------
  /// Issues a new API token for `owner` (an existing user). Only its SHA-256 is stored: the
  /// returned string is the one time the token is seen.
  Result<std::string> CreateApiToken(std::string_view owner);
  /// Returns the owner of an API token (given bare or as "Bearer <token>"). Unauthenticated
  /// when missing, malformed, revoked or never issued.
  Result<std::string> Authenticate(std::string_view bearer);
  /// Revokes an API token; NotFound when it is not (or no longer) valid.
  Status RevokeApiToken(std::string_view token);

  // -- UDFs ---------------------------------------------------------------------------------
  /// Saves `spec` for `owner` (an existing user) and makes it the current version of
  /// `spec.name`. The folder of the version is written first (reused when identical), then
  /// the database records it.
  Result<SavedUdf> Save(std::string_view owner, const UdfSpec& spec);
  /// Returns the current version of a UDF. NotFound names the UDF and the owner.
  Result<UdfEntry> Get(std::string_view owner, std::string_view name);
  /// Returns one saved version of a UDF (current or older).
  Result<UdfEntry> GetVersion(std::string_view owner, std::string_view name,
                              std::string_view version);
  /// Returns the UDFs of `owner`, sorted by name, at their current versions.
  Result<std::vector<SavedUdf>> List(std::string_view owner);
  /// Deletes a UDF: its rows, every version's folder and its shared tokens.
  Status Delete(std::string_view owner, std::string_view name);
  /// Marks a UDF public (reachable as "UDF_<name>") or private again. A public name belongs to
  /// one UDF: AlreadyExists when another owner's UDF of that name is public.
  Status SetPublic(std::string_view owner, std::string_view name, bool is_public);

  // -- shared tokens ("fsh_...") -------------------------------------------------------------
  /// Creates a token reaching exactly the UDF `owner`/`udf_name` (at its current version at
  /// each resolution).
  Result<std::string> CreateSharedToken(std::string_view owner, std::string_view udf_name,
                                        const TokenSettings& settings);
  /// Resolves an "fsh_" token or a public name "UDF_<Name>". NotFound when unknown, revoked,
  /// or its UDF was deleted; PermissionDenied when the token is disabled.
  Result<ResolvedToken> ResolveSharedToken(std::string_view token);
  /// Replaces the settings of one of `owner`'s tokens.
  Status UpdateSharedToken(std::string_view owner, std::string_view token,
                           const TokenSettings& settings);
  /// Deletes one of `owner`'s tokens; it stops resolving at once.
  Status RevokeSharedToken(std::string_view owner, std::string_view token);
  /// Returns `owner`'s tokens, oldest first.
  Result<std::vector<SharedTokenInfo>> ListSharedTokens(std::string_view owner);

  /// How long a commit by another process may go unseen by TryChangeStamp (reading
  /// `PRAGMA data_version` takes a read transaction: too dear for every cached tile).
  static constexpr std::chrono::milliseconds kOtherProcessCheckInterval{100};

  /// A number that changes whenever what the registry holds may have changed: at once for
  /// a write through this object, within kOtherProcessCheckInterval for a commit by another
  /// process to state.db. What memos of resolved tokens are checked against. nullopt when
  /// another thread holds the registry, for callers that must not wait.
  std::optional<int64_t> TryChangeStamp();

  /// Returns the folder a version of a UDF is (or would be) stored in.
  std::string UdfFolder(std::string_view owner, std::string_view name,
                        std::string_view version) const;
  const std::string& home() const { return home_; }

 private:
  Registry(std::string home, std::unique_ptr<internal::Database> db);
  Status Migrate();
  /// Where folders are assembled before being renamed into place, and deleted ones go.
  std::string ScratchDir() const;
  /// Removes scratch entries older than an hour.
  void SweepScratch();
  Status RequireUser(std::string_view owner);
  Result<UdfEntry> ReadEntry(SavedUdf saved);

  const std::string home_;
  std::mutex mutex_;  // guards db_ and the folder writes
  std::unique_ptr<internal::Database> db_;
  // TryChangeStamp's last reading of `PRAGMA data_version`, and when it was taken.
  int64_t data_version_ = 0;
  std::chrono::steady_clock::time_point data_version_read_{};
};

/// Returns the first characters of a token for messages ("fsh_AbCd..."): never the whole secret.
std::string TokenPrefixForMessage(std::string_view token);

}  // namespace terrafuse::udf
