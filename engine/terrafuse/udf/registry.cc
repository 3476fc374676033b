#include "terrafuse/udf/registry.h"

#include <cctype>
#include <chrono>
#include <filesystem>
#include <iterator>
#include <thread>

#include "terrafuse/udf/crypto_internal.h"
#include "terrafuse/udf/database_internal.h"
#include "terrafuse/udf/meta_json.h"
#include "terrafuse/udf/udf_folder.h"

namespace terrafuse::udf {

namespace fs = std::filesystem;
using internal::Database;
using internal::Statement;
using internal::Transaction;

namespace {

// kMigrations[i] takes the schema from version i to i + 1. Append, never edit.
constexpr const char* kMigrations[] = {
    // 0 -> 1: users, API tokens, UDFs and their versions, shared tokens.
    R"sql(
CREATE TABLE users (
  owner       TEXT PRIMARY KEY,
  created_at  INTEGER NOT NULL
);
CREATE TABLE api_tokens (
  token_hash  BLOB PRIMARY KEY,
  prefix      TEXT NOT NULL,
  owner       TEXT NOT NULL REFERENCES users (owner) ON DELETE CASCADE,
  created_at  INTEGER NOT NULL
);
CREATE INDEX api_tokens_owner ON api_tokens (owner);
CREATE TABLE udfs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  owner            TEXT NOT NULL REFERENCES users (owner) ON DELETE CASCADE,
  name             TEXT NOT NULL,
  current_version  TEXT NOT NULL,
  is_public        INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  UNIQUE (owner, name)
);
CREATE UNIQUE INDEX udfs_public_name ON udfs (name) WHERE is_public = 1;
CREATE TABLE udf_versions (
  udf_id      INTEGER NOT NULL REFERENCES udfs (id) ON DELETE CASCADE,
  version     TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (udf_id, version)
) WITHOUT ROWID;
CREATE TABLE shared_tokens (
  token_hash             BLOB PRIMARY KEY,
  token                  TEXT NOT NULL,
  udf_id                 INTEGER NOT NULL REFERENCES udfs (id) ON DELETE CASCADE,
  enabled                INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  cache                  INTEGER NOT NULL CHECK (cache IN (0, 1)),
  cache_max_age_seconds  INTEGER CHECK (cache_max_age_seconds >= 0),
  scope                  TEXT NOT NULL CHECK (scope IN ('public', 'team')),
  include_code           INTEGER NOT NULL CHECK (include_code IN (0, 1)),
  metadata_json          TEXT NOT NULL,
  created_at             INTEGER NOT NULL,
  updated_at             INTEGER NOT NULL
);
CREATE INDEX shared_tokens_udf ON shared_tokens (udf_id);
)sql",
};
static_assert(std::size(kMigrations) == Registry::kSchemaVersion);

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool HasTokenShape(std::string_view token, std::string_view prefix) {
  if (token.size() != prefix.size() + Registry::kTokenRandomChars ||
      token.substr(0, prefix.size()) != prefix) {
    return false;
  }
  for (char c : token.substr(prefix.size())) {
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) return false;
  }
  return true;
}

Result<std::string> NewToken(std::string_view prefix) {
  ARROW_ASSIGN_OR_RAISE(std::string random, internal::RandomAlnum(Registry::kTokenRandomChars));
  return std::string(prefix) + random;
}

// Validates settings and returns them with the metadata minified.
Result<TokenSettings> NormalizeSettings(const TokenSettings& settings) {
  if (settings.cache_max_age_seconds && *settings.cache_max_age_seconds < 0) {
    return InvalidArgument("Invalid cache_max_age_seconds ", *settings.cache_max_age_seconds,
                           " of a shared token: use 0 or more seconds, or leave it unset");
  }
  TokenSettings out = settings;
  ARROW_ASSIGN_OR_RAISE(out.metadata_json, NormalizeJsonObject(settings.metadata_json,
                                                               "metadata_json of a shared token"));
  return out;
}

// Binds the six settings columns as parameters first..first+5.
void BindSettings(Statement& st, int first, const TokenSettings& s) {
  st.Bind(first, int64_t{s.enabled}).Bind(first + 1, int64_t{s.cache});
  if (s.cache_max_age_seconds) {
    st.Bind(first + 2, *s.cache_max_age_seconds);
  } else {
    st.BindNull(first + 2);
  }
  st.Bind(first + 3, std::string_view(TokenScopeName(s.scope)))
      .Bind(first + 4, int64_t{s.include_code})
      .Bind(first + 5, std::string_view(s.metadata_json));
}

// Reads the six settings columns starting at `first`.
TokenSettings ReadSettings(const Statement& st, int first) {
  TokenSettings s;
  s.enabled = st.Int(first) != 0;
  s.cache = st.Int(first + 1) != 0;
  if (!st.IsNull(first + 2)) s.cache_max_age_seconds = st.Int(first + 2);
  s.scope = st.Text(first + 3) == "team" ? TokenScope::kTeam : TokenScope::kPublic;
  s.include_code = st.Int(first + 4) != 0;
  s.metadata_json = st.Text(first + 5);
  return s;
}

std::string UdfLabel(std::string_view owner, std::string_view name) {
  return "UDF '" + std::string(name) + "' of owner '" + std::string(owner) + "'";
}

}  // namespace

const char* TokenScopeName(TokenScope scope) {
  return scope == TokenScope::kTeam ? "team" : "public";
}

std::string TokenPrefixForMessage(std::string_view token) {
  constexpr size_t kShown = 8;  // "fsh_" + 4 random characters: ~24 of ~190 bits
  if (token.size() <= kShown) return std::string(token);
  return std::string(token.substr(0, kShown)) + "...";
}

Registry::Registry(std::string home, std::unique_ptr<Database> db)
    : home_(std::move(home)), db_(std::move(db)) {}
Registry::~Registry() = default;

Result<std::shared_ptr<Registry>> Registry::Open(const std::string& home_dir) {
  if (home_dir.empty()) return InvalidArgument("The data home directory must not be empty");
  std::error_code ec;
  fs::create_directories(fs::path(home_dir) / "udfs", ec);
  if (ec) return IOError("Cannot create the data home '", home_dir, "': ", ec.message());
  ARROW_ASSIGN_OR_RAISE(auto db, Database::Open(home_dir + "/state.db", kBusyTimeoutMs));
  std::shared_ptr<Registry> registry(new Registry(home_dir, std::move(db)));
  registry->SweepScratch();
  ARROW_RETURN_NOT_OK(registry->Migrate());
  ARROW_RETURN_NOT_OK(registry->EnsureUser(kLocalUser));
  return registry;
}

Status Registry::Migrate() {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(int64_t version, db_->UserVersion());
  while (version < kSchemaVersion) {
    ARROW_ASSIGN_OR_RAISE(auto txn, Transaction::Begin(db_.get()));
    // Another process may have migrated while this one waited for the write lock.
    ARROW_ASSIGN_OR_RAISE(version, db_->UserVersion());
    if (version >= kSchemaVersion) break;
    if (version < 0) {
      return IOError("State database '", db_->path(), "' has a negative schema version ", version);
    }
    const std::string purpose = "migrate the schema to version " + std::to_string(version + 1);
    ARROW_RETURN_NOT_OK(db_->Exec(kMigrations[version], purpose));
    ARROW_RETURN_NOT_OK(db_->Exec("PRAGMA user_version = " + std::to_string(version + 1), purpose));
    ARROW_RETURN_NOT_OK(txn->Commit());
    ++version;
  }
  if (version > kSchemaVersion) {
    return MakeError(ErrorKind::kUnavailable,
                     "State database '" + db_->path() + "' has schema version " +
                         std::to_string(version) + ", newer than this terrafuse supports (" +
                         std::to_string(kSchemaVersion) +
                         "): upgrade terrafuse or use another data home");
  }
  return Status::OK();
}

std::string Registry::ScratchDir() const { return home_ + "/udfs/.scratch"; }

void Registry::SweepScratch() {
  // Left by a process that died mid-save or mid-delete. Another process may be using a
  // fresh entry right now, so only old ones go.
  constexpr auto kStale = std::chrono::hours(1);
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (auto it = fs::directory_iterator(ScratchDir(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::error_code entry_ec;
    auto modified = it->last_write_time(entry_ec);
    if (!entry_ec && now - modified > kStale) fs::remove_all(it->path(), entry_ec);
  }
}

std::string Registry::UdfFolder(std::string_view owner, std::string_view name,
                                std::string_view version) const {
  std::string out = home_;
  out.append("/udfs/").append(owner).append("/").append(name).append("/").append(version);
  return out;
}

// -- users ---------------------------------------------------------------------------------

Status Registry::EnsureUser(std::string_view owner) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("INSERT INTO users (owner, created_at) VALUES (?1, ?2) "
                                     "ON CONFLICT (owner) DO NOTHING",
                                     "create a user"));
  return st.Bind(1, owner).Bind(2, NowMs()).Run();
}

Result<std::vector<std::string>> Registry::ListUsers() {
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("SELECT owner FROM users ORDER BY owner", "list users"));
  std::vector<std::string> out;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool row, st.Step());
    if (!row) break;
    out.push_back(st.Text(0));
  }
  return out;
}

Status Registry::RequireUser(std::string_view owner) {
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("SELECT 1 FROM users WHERE owner = ?1", "look up a user"));
  ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, owner).Step());
  if (!found) return NotFound("Unknown owner '", owner, "': no such user in this registry");
  return Status::OK();
}

// -- API tokens ----------------------------------------------------------------------------

Result<std::string> Registry::CreateApiToken(std::string_view owner) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_ASSIGN_OR_RAISE(std::string token, NewToken(kApiTokenPrefix));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_RETURN_NOT_OK(RequireUser(owner));
  ARROW_ASSIGN_OR_RAISE(
      Statement st, db_->Prepare("INSERT INTO api_tokens (token_hash, prefix, owner, created_at) "
                                 "VALUES (?1, ?2, ?3, ?4)",
                                 "record an API token"));
  ARROW_RETURN_NOT_OK(st.BindBlob(1, internal::Sha256(token))
                          .Bind(2, TokenPrefixForMessage(token))
                          .Bind(3, owner)
                          .Bind(4, NowMs())
                          .Run());
  return token;
}

Result<std::string> Registry::Authenticate(std::string_view bearer) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  std::string_view token = trim(bearer);
  // The Authorization scheme is case-insensitive (RFC 9110 §11.1).
  if (token.size() >= 6 && (token.size() == 6 || token[6] == ' ' || token[6] == '\t')) {
    std::string scheme(token.substr(0, 6));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "bearer") token = trim(token.substr(6));
  }
  if (token.empty()) {
    return Unauthenticated("Missing API token: send the header 'Authorization: Bearer ",
                           kApiTokenPrefix, "...'");
  }
  if (!HasTokenShape(token, kApiTokenPrefix)) {
    return Unauthenticated("Invalid API token '", TokenPrefixForMessage(token), "': expected '",
                           kApiTokenPrefix, "' followed by ", kTokenRandomChars,
                           " letters or digits");
  }
  const std::string hash = internal::Sha256(token);
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(
      Statement st, db_->Prepare("SELECT token_hash, owner FROM api_tokens WHERE token_hash = ?1",
                                 "look up an API token"));
  ARROW_ASSIGN_OR_RAISE(bool found, st.BindBlob(1, hash).Step());
  if (!found || !internal::ConstantTimeEquals(st.Blob(0), hash)) {
    return Unauthenticated("API token '", TokenPrefixForMessage(token),
                           "' is not valid: it was revoked or never issued");
  }
  return st.Text(1);
}

Status Registry::RevokeApiToken(std::string_view token) {
  if (!HasTokenShape(token, kApiTokenPrefix)) {
    return NotFound("API token '", TokenPrefixForMessage(token), "' not found: expected '",
                    kApiTokenPrefix, "' followed by ", kTokenRandomChars, " letters or digits");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Statement st, db_->Prepare("DELETE FROM api_tokens WHERE token_hash = ?1",
                                                   "revoke an API token"));
  ARROW_RETURN_NOT_OK(st.BindBlob(1, internal::Sha256(token)).Run());
  if (db_->Changes() == 0) {
    return NotFound("API token '", TokenPrefixForMessage(token),
                    "' not found: already revoked or never issued");
  }
  return Status::OK();
}

// -- UDFs ----------------------------------------------------------------------------------

Result<SavedUdf> Registry::Save(std::string_view owner, const UdfSpec& spec) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfSpec(spec));
  SavedUdf saved;
  saved.owner = std::string(owner);
  saved.name = spec.name;
  saved.version = UdfVersion(spec);
  saved.folder = UdfFolder(owner, spec.name, saved.version);
  saved.updated_at = NowMs();

  {
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_RETURN_NOT_OK(RequireUser(owner));
  }
  // Files first, so the database never points at an incomplete folder. The slow part (new
  // files, fsync) runs without the lock: token resolution is not held up by saves.
  ARROW_RETURN_NOT_OK(WriteUdfFolder(spec, saved.folder, ScratchDir()));
  std::lock_guard<std::mutex> lock(mutex_);
  // A Delete of this UDF may have removed the folder meanwhile; when it is there (almost
  // always) this only reads it back.
  ARROW_RETURN_NOT_OK(WriteUdfFolder(spec, saved.folder, ScratchDir()));
  ARROW_ASSIGN_OR_RAISE(auto txn, Transaction::Begin(db_.get()));
  int64_t udf_id = 0;
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare(
            "INSERT INTO udfs (owner, name, current_version, is_public, created_at, updated_at) "
            "VALUES (?1, ?2, ?3, 0, ?4, ?4) "
            "ON CONFLICT (owner, name) DO UPDATE SET current_version = excluded.current_version, "
            "updated_at = excluded.updated_at "
            "RETURNING id, is_public",
            "record a saved UDF"));
    ARROW_ASSIGN_OR_RAISE(bool row, st.Bind(1, owner)
                                        .Bind(2, spec.name)
                                        .Bind(3, saved.version)
                                        .Bind(4, saved.updated_at)
                                        .Step());
    if (!row) return Internal("Saving ", UdfLabel(owner, spec.name), " returned no row");
    udf_id = st.Int(0);
    saved.is_public = st.Int(1) != 0;
    ARROW_RETURN_NOT_OK(st.Run());
  }
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("INSERT INTO udf_versions (udf_id, version, created_at) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT (udf_id, version) DO NOTHING",
                     "record a UDF version"));
    ARROW_RETURN_NOT_OK(st.Bind(1, udf_id).Bind(2, saved.version).Bind(3, saved.updated_at).Run());
  }
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("SELECT created_at FROM udf_versions WHERE udf_id = ?1 AND version = ?2",
                     "read a UDF version"));
    ARROW_ASSIGN_OR_RAISE(bool row, st.Bind(1, udf_id).Bind(2, saved.version).Step());
    if (!row) {
      return Internal("Version ", saved.version, " of ", UdfLabel(owner, spec.name),
                      " was not recorded");
    }
    saved.created_at = st.Int(0);
  }
  ARROW_RETURN_NOT_OK(txn->Commit());
  return saved;
}

Result<UdfEntry> Registry::ReadEntry(SavedUdf saved) {
  saved.folder = UdfFolder(saved.owner, saved.name, saved.version);
  auto spec = ReadUdfFolder(saved.folder);
  if (!spec.ok()) {
    return IOError("Cannot read version ", saved.version, " of ", UdfLabel(saved.owner, saved.name),
                   " from its folder: ", spec.status().message());
  }
  // The folder is named by its content hash: anything else means it was edited by hand.
  std::string actual = UdfVersion(*spec);
  if (actual != saved.version) {
    return IOError("The folder '", saved.folder, "' of ", UdfLabel(saved.owner, saved.name),
                   " does not match its version: its content hashes to ", actual,
                   " (was it edited by hand? save the UDF again)");
  }
  spec->name = saved.name;
  return UdfEntry{std::move(saved), std::move(*spec)};
}

Result<UdfEntry> Registry::Get(std::string_view owner, std::string_view name) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfName(name));
  std::lock_guard<std::mutex> lock(mutex_);
  SavedUdf saved;
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare(
            "SELECT u.current_version, u.is_public, u.updated_at, v.created_at FROM udfs u "
            "JOIN udf_versions v ON v.udf_id = u.id AND v.version = u.current_version "
            "WHERE u.owner = ?1 AND u.name = ?2",
            "look up a UDF"));
    ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, owner).Bind(2, name).Step());
    if (!found) return NotFound(UdfLabel(owner, name), " not found");
    saved = SavedUdf{std::string(owner), std::string(name), st.Text(0), st.Int(3),
                     st.Int(2),          st.Int(1) != 0,    ""};
  }
  return ReadEntry(std::move(saved));
}

Result<UdfEntry> Registry::GetVersion(std::string_view owner, std::string_view name,
                                      std::string_view version) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfName(name));
  ARROW_RETURN_NOT_OK(ValidateVersion(version));
  std::lock_guard<std::mutex> lock(mutex_);
  SavedUdf saved;
  {
    ARROW_ASSIGN_OR_RAISE(Statement st,
                          db_->Prepare("SELECT u.is_public, u.updated_at, v.created_at FROM udfs u "
                                       "JOIN udf_versions v ON v.udf_id = u.id "
                                       "WHERE u.owner = ?1 AND u.name = ?2 AND v.version = ?3",
                                       "look up a UDF version"));
    ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, owner).Bind(2, name).Bind(3, version).Step());
    if (!found) return NotFound("Version '", version, "' of ", UdfLabel(owner, name), " not found");
    saved = SavedUdf{std::string(owner),
                     std::string(name),
                     std::string(version),
                     st.Int(2),
                     st.Int(1),
                     st.Int(0) != 0,
                     ""};
  }
  return ReadEntry(std::move(saved));
}

Result<std::vector<SavedUdf>> Registry::List(std::string_view owner) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_RETURN_NOT_OK(RequireUser(owner));
  ARROW_ASSIGN_OR_RAISE(
      Statement st,
      db_->Prepare(
          "SELECT u.name, u.current_version, u.is_public, u.updated_at, v.created_at FROM udfs u "
          "JOIN udf_versions v ON v.udf_id = u.id AND v.version = u.current_version "
          "WHERE u.owner = ?1 ORDER BY u.name",
          "list UDFs"));
  st.Bind(1, owner);
  std::vector<SavedUdf> out;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool row, st.Step());
    if (!row) break;
    SavedUdf saved{std::string(owner), st.Text(0),     st.Text(1), st.Int(4),
                   st.Int(3),          st.Int(2) != 0, ""};
    saved.folder = UdfFolder(owner, saved.name, saved.version);
    out.push_back(std::move(saved));
  }
  return out;
}

Status Registry::Delete(std::string_view owner, std::string_view name) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfName(name));
  std::lock_guard<std::mutex> lock(mutex_);
  {
    ARROW_ASSIGN_OR_RAISE(auto txn, Transaction::Begin(db_.get()));
    {
      // Versions and shared tokens go with it (ON DELETE CASCADE).
      ARROW_ASSIGN_OR_RAISE(
          Statement st,
          db_->Prepare("DELETE FROM udfs WHERE owner = ?1 AND name = ?2", "delete a UDF"));
      ARROW_RETURN_NOT_OK(st.Bind(1, owner).Bind(2, name).Run());
    }
    if (db_->Changes() == 0) return NotFound(UdfLabel(owner, name), " not found");
    ARROW_RETURN_NOT_OK(txn->Commit());
  }
  // Move the folders aside first, so no reader ever sees half of them deleted.
  const std::string dir = home_ + "/udfs/" + std::string(owner) + "/" + std::string(name);
  ARROW_ASSIGN_OR_RAISE(std::string suffix, internal::RandomAlnum(12));
  const std::string trash = ScratchDir() + "/.trash-" + suffix;
  std::error_code ec;
  fs::create_directories(ScratchDir(), ec);
  fs::rename(dir, trash, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return Status::OK();
    return IOError("Deleted ", UdfLabel(owner, name), " but cannot remove its folder '", dir,
                   "': ", ec.message());
  }
  // A Save that looked up the folder before the rename may still move a version into it
  // (rename resolves the parent before it locks it), so removal can meet a new entry: retry.
  // Save writes the folder again under the lock, so nothing it saved is lost.
  for (int attempt = 0; attempt < 10; ++attempt) {
    fs::remove_all(trash, ec);
    if (ec != std::errc::directory_not_empty) break;
    std::this_thread::yield();
  }
  if (ec) {
    return IOError("Deleted ", UdfLabel(owner, name), " but cannot remove '", trash,
                   "': ", ec.message());
  }
  return Status::OK();
}

Status Registry::SetPublic(std::string_view owner, std::string_view name, bool is_public) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfName(name));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto txn, Transaction::Begin(db_.get()));
  int64_t udf_id = 0;
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("SELECT id FROM udfs WHERE owner = ?1 AND name = ?2", "look up a UDF"));
    ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, owner).Bind(2, name).Step());
    if (!found) return NotFound(UdfLabel(owner, name), " not found");
    udf_id = st.Int(0);
  }
  if (is_public) {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("SELECT owner FROM udfs WHERE name = ?1 AND is_public = 1 AND id != ?2",
                     "look up a public name"));
    ARROW_ASSIGN_OR_RAISE(bool taken, st.Bind(1, name).Bind(2, udf_id).Step());
    if (taken) {
      return AlreadyExists("Cannot make ", UdfLabel(owner, name), " public: the public name '",
                           kPublicNamePrefix, name, "' already belongs to owner '", st.Text(0),
                           "'");
    }
  }
  {
    ARROW_ASSIGN_OR_RAISE(Statement st, db_->Prepare("UPDATE udfs SET is_public = ?1 WHERE id = ?2",
                                                     "change whether a UDF is public"));
    ARROW_RETURN_NOT_OK(st.Bind(1, int64_t{is_public}).Bind(2, udf_id).Run());
  }
  return txn->Commit();
}

// -- shared tokens -------------------------------------------------------------------------

Result<std::string> Registry::CreateSharedToken(std::string_view owner, std::string_view udf_name,
                                                const TokenSettings& settings) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_RETURN_NOT_OK(ValidateUdfName(udf_name));
  ARROW_ASSIGN_OR_RAISE(TokenSettings normalized, NormalizeSettings(settings));
  ARROW_ASSIGN_OR_RAISE(std::string token, NewToken(kSharedTokenPrefix));
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(auto txn, Transaction::Begin(db_.get()));
  int64_t udf_id = 0;
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("SELECT id FROM udfs WHERE owner = ?1 AND name = ?2", "look up a UDF"));
    ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, owner).Bind(2, udf_name).Step());
    if (!found) return NotFound(UdfLabel(owner, udf_name), " not found: save it before sharing it");
    udf_id = st.Int(0);
  }
  {
    ARROW_ASSIGN_OR_RAISE(
        Statement st, db_->Prepare("INSERT INTO shared_tokens (token_hash, token, udf_id, enabled, "
                                   "cache, cache_max_age_seconds, "
                                   "scope, include_code, metadata_json, created_at, updated_at) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                                   "record a shared token"));
    st.BindBlob(1, internal::Sha256(token)).Bind(2, token).Bind(3, udf_id);
    BindSettings(st, 4, normalized);
    ARROW_RETURN_NOT_OK(st.Bind(10, now).Run());
  }
  ARROW_RETURN_NOT_OK(txn->Commit());
  return token;
}

Result<ResolvedToken> Registry::ResolveSharedToken(std::string_view token) {
  std::string_view public_prefix(kPublicNamePrefix);
  if (token.substr(0, public_prefix.size()) == public_prefix) {
    std::string_view name = token.substr(public_prefix.size());
    if (!ValidateUdfName(name).ok()) {
      return NotFound("Public UDF ", QuoteForMessage(token), " not found: '", public_prefix,
                      "' must be followed by a UDF name (1 to 100 letters, digits, '_' or '-')");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    ARROW_ASSIGN_OR_RAISE(
        Statement st,
        db_->Prepare("SELECT owner, current_version FROM udfs WHERE name = ?1 AND is_public = 1",
                     "look up a public UDF"));
    ARROW_ASSIGN_OR_RAISE(bool found, st.Bind(1, name).Step());
    if (!found) {
      return NotFound("Public UDF '", token, "' not found: no UDF named '", name, "' is public");
    }
    return ResolvedToken{st.Text(0), std::string(name), st.Text(1), TokenSettings{}, true};
  }
  if (!HasTokenShape(token, kSharedTokenPrefix)) {
    return NotFound("Unknown shared token '", TokenPrefixForMessage(token), "': expected '",
                    kSharedTokenPrefix, "' followed by ", kTokenRandomChars,
                    " letters or digits, or a public name '", kPublicNamePrefix, "<Name>'");
  }
  const std::string hash = internal::Sha256(token);
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("SELECT t.token, u.owner, u.name, u.current_version, "
                                     "t.enabled, t.cache, t.cache_max_age_seconds, "
                                     "t.scope, t.include_code, t.metadata_json FROM shared_tokens "
                                     "t JOIN udfs u ON u.id = t.udf_id "
                                     "WHERE t.token_hash = ?1",
                                     "look up a shared token"));
  ARROW_ASSIGN_OR_RAISE(bool found, st.BindBlob(1, hash).Step());
  if (!found || !internal::ConstantTimeEquals(st.Text(0), token)) {
    return NotFound("Shared token '", TokenPrefixForMessage(token),
                    "' not found: it was revoked, its UDF was deleted, or it never existed");
  }
  ResolvedToken out{st.Text(1), st.Text(2), st.Text(3), ReadSettings(st, 4), false};
  if (!out.settings.enabled) {
    return PermissionDenied("Shared token '", TokenPrefixForMessage(token), "' of ",
                            UdfLabel(out.owner, out.udf_name), " is disabled by its owner");
  }
  return out;
}

std::optional<int64_t> Registry::TryChangeStamp() {
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  if (now - data_version_read_ >= kOtherProcessCheckInterval) {
    Result<int64_t> version = db_->DataVersion();
    if (!version.ok()) return std::nullopt;
    data_version_ = *version;
    data_version_read_ = now;
  }
  // Both only grow, so their sum changes whenever either does.
  return db_->TotalChanges() + data_version_;
}

Status Registry::UpdateSharedToken(std::string_view owner, std::string_view token,
                                   const TokenSettings& settings) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  ARROW_ASSIGN_OR_RAISE(TokenSettings normalized, NormalizeSettings(settings));
  if (!HasTokenShape(token, kSharedTokenPrefix)) {
    return NotFound("Shared token '", TokenPrefixForMessage(token), "' of owner '", owner,
                    "' not found");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(
      Statement st,
      db_->Prepare("UPDATE shared_tokens SET enabled = ?1, cache = ?2, cache_max_age_seconds = ?3, "
                   "scope = ?4, include_code = ?5, metadata_json = ?6, updated_at = ?7 "
                   "WHERE token_hash = ?8 AND udf_id IN (SELECT id FROM udfs WHERE owner = ?9)",
                   "update a shared token"));
  BindSettings(st, 1, normalized);
  ARROW_RETURN_NOT_OK(
      st.Bind(7, NowMs()).BindBlob(8, internal::Sha256(token)).Bind(9, owner).Run());
  if (db_->Changes() == 0) {
    return NotFound("Shared token '", TokenPrefixForMessage(token), "' of owner '", owner,
                    "' not found");
  }
  return Status::OK();
}

Status Registry::RevokeSharedToken(std::string_view owner, std::string_view token) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  if (!HasTokenShape(token, kSharedTokenPrefix)) {
    return NotFound("Shared token '", TokenPrefixForMessage(token), "' of owner '", owner,
                    "' not found");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("DELETE FROM shared_tokens WHERE token_hash = ?1 "
                                     "AND udf_id IN (SELECT id FROM udfs WHERE owner = ?2)",
                                     "revoke a shared token"));
  ARROW_RETURN_NOT_OK(st.BindBlob(1, internal::Sha256(token)).Bind(2, owner).Run());
  if (db_->Changes() == 0) {
    return NotFound("Shared token '", TokenPrefixForMessage(token), "' of owner '", owner,
                    "' not found: already revoked or never issued");
  }
  return Status::OK();
}

Result<std::vector<SharedTokenInfo>> Registry::ListSharedTokens(std::string_view owner) {
  ARROW_RETURN_NOT_OK(ValidateOwner(owner));
  std::lock_guard<std::mutex> lock(mutex_);
  ARROW_RETURN_NOT_OK(RequireUser(owner));
  ARROW_ASSIGN_OR_RAISE(Statement st,
                        db_->Prepare("SELECT t.token, u.name, t.enabled, t.cache, "
                                     "t.cache_max_age_seconds, t.scope, t.include_code, "
                                     "t.metadata_json, t.created_at, t.updated_at FROM "
                                     "shared_tokens t JOIN udfs u ON u.id = t.udf_id "
                                     "WHERE u.owner = ?1 ORDER BY t.created_at, t.rowid",
                                     "list shared tokens"));
  st.Bind(1, owner);
  std::vector<SharedTokenInfo> out;
  while (true) {
    ARROW_ASSIGN_OR_RAISE(bool row, st.Step());
    if (!row) break;
    out.push_back(SharedTokenInfo{st.Text(0), std::string(owner), st.Text(1), ReadSettings(st, 2),
                                  st.Int(8), st.Int(9)});
  }
  return out;
}

}  // namespace terrafuse::udf
