#include "terrafuse/udf/registry.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "terrafuse/udf/crypto_internal.h"

#include "terrafuse/udf/meta_json.h"
#include "terrafuse/udf/udf_test_util.h"

namespace terrafuse::udf {
namespace {

namespace fs = std::filesystem;
using testing::ReadText;
using testing::TempDirTest;
using testing::WriteText;

constexpr const char* kLocal = Registry::kLocalUser;

UdfSpec MakeUdf(const std::string& name, const std::string& body = "return n") {
  UdfSpec spec;
  spec.name = name;
  spec.code = "@fused.udf\ndef udf(n: int = 1):\n    " + body + "\n";
  spec.metadata_json = R"({"fused:description": "A test UDF"})";
  return spec;
}

bool IsAlnum(const std::string& s) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Runs one SQL statement on state.db from outside the registry and returns the first column.
std::string QueryDb(const fs::path& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(db_path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  std::string out;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0)) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

class RegistryTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    home_ = dir_ / "home";
    auto registry = Registry::Open(home_.string());
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = *registry;
  }

  void Reopen() {
    registry_.reset();
    auto registry = Registry::Open(home_.string());
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_ = *registry;
  }

  void ExpectScratchEmpty() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(home_ / "udfs" / ".scratch", ec)) {
      ADD_FAILURE() << "left in the scratch directory: " << entry.path();
    }
  }

  fs::path home_;
  std::shared_ptr<Registry> registry_;
};

// -- opening -------------------------------------------------------------------------------

TEST_F(RegistryTest, OpenCreatesTheDatabaseFoldersAndLocalUser) {
  EXPECT_TRUE(fs::is_regular_file(home_ / "state.db"));
  EXPECT_TRUE(fs::is_directory(home_ / "udfs"));
  TF_ASSERT_OK_AND_ASSIGN(auto users, registry_->ListUsers());
  EXPECT_EQ(users, std::vector<std::string>{"local@terrafuse"});
  EXPECT_EQ(QueryDb(home_ / "state.db", "PRAGMA user_version"),
            std::to_string(Registry::kSchemaVersion));
  EXPECT_EQ(QueryDb(home_ / "state.db", "PRAGMA journal_mode"), "wal");
}

TEST_F(RegistryTest, RejectsADatabaseFromANewerTerrafuse) {
  registry_.reset();
  QueryDb(home_ / "state.db", "PRAGMA user_version = 99");
  auto reopened = Registry::Open(home_.string());
  TF_ASSERT_RAISES(
      ErrorKind::kUnavailable,
      "has schema version 99, newer than this terrafuse supports (1): upgrade terrafuse",
      reopened.status());
}

TEST_F(RegistryTest, EmptyHomeIsAnError) {
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "The data home directory must not be empty",
                   Registry::Open("").status());
}

TEST_F(RegistryTest, EverythingPersistsAcrossReopen) {
  TF_ASSERT_OK(registry_->EnsureUser("ana@example.org"));
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry_->Save("ana@example.org", MakeUdf("Kept")));
  TF_ASSERT_OK(registry_->SetPublic("ana@example.org", "Kept", true));
  TF_ASSERT_OK_AND_ASSIGN(std::string shared,
                          registry_->CreateSharedToken("ana@example.org", "Kept", {}));
  TF_ASSERT_OK_AND_ASSIGN(std::string api, registry_->CreateApiToken("ana@example.org"));
  Reopen();
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry entry, registry_->Get("ana@example.org", "Kept"));
  EXPECT_EQ(entry.saved.version, saved.version);
  EXPECT_EQ(entry.saved.created_at, saved.created_at);
  EXPECT_TRUE(entry.saved.is_public);
  EXPECT_EQ(entry.spec.code, MakeUdf("Kept").code);
  TF_ASSERT_OK_AND_ASSIGN(ResolvedToken resolved, registry_->ResolveSharedToken(shared));
  EXPECT_EQ(resolved.udf_name, "Kept");
  TF_ASSERT_OK_AND_ASSIGN(resolved, registry_->ResolveSharedToken("UDF_Kept"));
  EXPECT_EQ(resolved.owner, "ana@example.org");
  TF_ASSERT_OK_AND_ASSIGN(std::string owner, registry_->Authenticate(api));
  EXPECT_EQ(owner, "ana@example.org");
  TF_ASSERT_OK_AND_ASSIGN(auto users, registry_->ListUsers());
  EXPECT_EQ(users, (std::vector<std::string>{"ana@example.org", "local@terrafuse"}));
}

TEST_F(RegistryTest, TwoRegistriesShareOneHome) {
  // As two processes would: separate connections, one database, one folder tree.
  TF_ASSERT_OK_AND_ASSIGN(auto other, Registry::Open(home_.string()));
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry_->Save(kLocal, MakeUdf("Shared")));
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry entry, other->Get(kLocal, "Shared"));
  EXPECT_EQ(entry.saved.version, saved.version);
  TF_ASSERT_OK(other->Delete(kLocal, "Shared"));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found", registry_->Get(kLocal, "Shared"));
}

TEST_F(RegistryTest, ChangeStampMovesOnEveryWriteFromAnyConnection) {
  auto stamp = [&](Registry& r) {
    std::optional<int64_t> value = r.TryChangeStamp();
    EXPECT_TRUE(value.has_value());
    return value.value_or(-1);
  };
  TF_ASSERT_OK_AND_ASSIGN(auto other, Registry::Open(home_.string()));
  int64_t before = stamp(*registry_);
  EXPECT_EQ(stamp(*registry_), before);  // reading changes nothing
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Stamped")).status());
  int64_t saved = stamp(*registry_);
  EXPECT_NE(saved, before);
  TF_ASSERT_OK_AND_ASSIGN(std::string token, registry_->CreateSharedToken(kLocal, "Stamped", {}));
  int64_t shared = stamp(*registry_);
  EXPECT_NE(shared, saved);
  TF_ASSERT_OK(registry_->ResolveSharedToken(token).status());
  EXPECT_EQ(stamp(*registry_), shared);
  TF_ASSERT_OK(other->RevokeSharedToken(kLocal, token));  // another connection's commit
  std::this_thread::sleep_for(Registry::kOtherProcessCheckInterval);
  EXPECT_NE(stamp(*registry_), shared);
}

// -- UDFs ----------------------------------------------------------------------------------

TEST_F(RegistryTest, SaveGetListDelete) {
  UdfSpec spec = MakeUdf("Hello");
  spec.headers = {{"utils", "X = 1\n"}};
  spec.parameters_json = R"({"n": 2})";
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry_->Save(kLocal, spec));
  EXPECT_EQ(saved.owner, kLocal);
  EXPECT_EQ(saved.name, "Hello");
  EXPECT_EQ(saved.version, UdfVersion(spec));
  EXPECT_GT(saved.created_at, 0);
  EXPECT_FALSE(saved.is_public);
  EXPECT_EQ(saved.folder, (home_ / "udfs" / kLocal / "Hello" / saved.version).string());
  EXPECT_TRUE(fs::is_regular_file(fs::path(saved.folder) / "Hello.py"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(saved.folder) / "utils.py"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(saved.folder) / "meta.json"));
  EXPECT_TRUE(fs::is_regular_file(fs::path(saved.folder) / "README.MD"));

  TF_ASSERT_OK_AND_ASSIGN(UdfEntry entry, registry_->Get(kLocal, "Hello"));
  EXPECT_EQ(entry.saved.version, saved.version);
  EXPECT_EQ(entry.saved.folder, saved.folder);
  EXPECT_EQ(entry.spec.name, "Hello");
  EXPECT_EQ(entry.spec.code, spec.code);
  EXPECT_EQ(entry.spec.entrypoint, "udf");
  EXPECT_EQ(entry.spec.headers, spec.headers);
  EXPECT_EQ(entry.spec.parameters_json, R"({"n":2})");
  EXPECT_EQ(JsonStringMember(entry.spec.metadata_json, "fused:description"), "A test UDF");

  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Another")).status());
  TF_ASSERT_OK_AND_ASSIGN(auto list, registry_->List(kLocal));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "Another");
  EXPECT_EQ(list[1].name, "Hello");
  EXPECT_EQ(list[1].version, saved.version);
  EXPECT_EQ(list[1].folder, saved.folder);

  TF_ASSERT_OK(registry_->Delete(kLocal, "Hello"));
  EXPECT_FALSE(fs::exists(home_ / "udfs" / kLocal / "Hello"));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "UDF 'Hello' of owner 'local@terrafuse' not found",
                   registry_->Get(kLocal, "Hello"));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "UDF 'Hello' of owner 'local@terrafuse' not found",
                   registry_->Delete(kLocal, "Hello"));
  TF_ASSERT_OK_AND_ASSIGN(list, registry_->List(kLocal));
  ASSERT_EQ(list.size(), 1u);
  ExpectScratchEmpty();  // no leftovers from the saves and the deletion
}

TEST_F(RegistryTest, VersionsAreContentHashes) {
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v1, registry_->Save(kLocal, MakeUdf("Versioned")));
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf again, registry_->Save(kLocal, MakeUdf("Versioned")));
  EXPECT_EQ(again.version, v1.version);
  EXPECT_EQ(again.created_at, v1.created_at) << "the same content is the same version";

  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v2, registry_->Save(kLocal, MakeUdf("Versioned", "return n ")));
  EXPECT_NE(v2.version, v1.version) << "whitespace is content";
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry current, registry_->Get(kLocal, "Versioned"));
  EXPECT_EQ(current.saved.version, v2.version);
  EXPECT_EQ(current.spec.code, MakeUdf("Versioned", "return n ").code);

  TF_ASSERT_OK_AND_ASSIGN(UdfEntry old, registry_->GetVersion(kLocal, "Versioned", v1.version));
  EXPECT_EQ(old.saved.version, v1.version);
  EXPECT_EQ(old.spec.code, MakeUdf("Versioned").code);
  EXPECT_EQ(old.saved.folder, v1.folder);

  // Saving the old content again makes it current without a new folder.
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf back, registry_->Save(kLocal, MakeUdf("Versioned")));
  EXPECT_EQ(back.version, v1.version);
  EXPECT_EQ(back.created_at, v1.created_at);
  size_t folders = 0;
  for ([[maybe_unused]] const auto& e :
       fs::directory_iterator(home_ / "udfs" / kLocal / "Versioned")) {
    ++folders;
  }
  EXPECT_EQ(folders, 2u);

  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "Version '" + std::string(32, '0') +
                       "' of UDF 'Versioned' of owner 'local@terrafuse' not found",
                   registry_->GetVersion(kLocal, "Versioned", std::string(32, '0')));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF version '../x'",
                   registry_->GetVersion(kLocal, "Versioned", "../x"));
}

TEST_F(RegistryTest, NewMetadataKeepsTheVersionAndIsSaved) {
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v1, registry_->Save(kLocal, MakeUdf("Meta")));
  UdfSpec spec = MakeUdf("Meta");
  spec.metadata_json = R"({"fused:description": "Updated", "fused:udfType": "vector_tile"})";
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v2, registry_->Save(kLocal, spec));
  EXPECT_EQ(v2.version, v1.version);
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry entry, registry_->Get(kLocal, "Meta"));
  EXPECT_EQ(JsonStringMember(entry.spec.metadata_json, "fused:description"), "Updated");
  EXPECT_EQ(JsonStringMember(entry.spec.metadata_json, "fused:udfType"), "vector_tile");
  EXPECT_EQ(ReadText(fs::path(v2.folder) / "README.MD"), "<!--fused:readme-->\nUpdated\n");
}

TEST_F(RegistryTest, AFolderEditedByHandIsReported) {
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry_->Save(kLocal, MakeUdf("Edited")));
  WriteText(fs::path(saved.folder) / "Edited.py", "print('changed')\n");
  TF_ASSERT_RAISES(ErrorKind::kIOError,
                   "of UDF 'Edited' of owner 'local@terrafuse' does not match its version",
                   registry_->Get(kLocal, "Edited"));
  fs::remove_all(saved.folder);
  TF_ASSERT_RAISES(ErrorKind::kIOError, "Cannot read version " + saved.version + " of UDF 'Edited'",
                   registry_->Get(kLocal, "Edited"));
  // Saving again repairs it.
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Edited")).status());
  TF_ASSERT_OK(registry_->Get(kLocal, "Edited").status());
}

TEST_F(RegistryTest, BadNamesAndOwnersAreNamed) {
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name 'no/slash'",
                   registry_->Save(kLocal, MakeUdf("no/slash")).status());
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name '..'",
                   registry_->Get(kLocal, "..").status());
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name ''",
                   registry_->Delete(kLocal, ""));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid owner 'root'",
                   registry_->Save("root", MakeUdf("A")).status());
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid owner '../x@y'",
                   registry_->List("../x@y").status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "Unknown owner 'ghost@example.org': no such user in this registry",
                   registry_->Save("ghost@example.org", MakeUdf("A")).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Unknown owner 'ghost@example.org'",
                   registry_->List("ghost@example.org").status());
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid owner 'x'", registry_->EnsureUser("x"));
  UdfSpec bad = MakeUdf("Bad");
  bad.metadata_json = "nope";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid metadata of UDF 'Bad': not valid JSON",
                   registry_->Save(kLocal, bad).status());
  EXPECT_FALSE(fs::exists(home_ / "udfs" / kLocal / "Bad"));
}

TEST_F(RegistryTest, OwnersHaveSeparateNamespaces) {
  TF_ASSERT_OK(registry_->EnsureUser("ana@example.org"));
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Same", "return 1")).status());
  TF_ASSERT_OK(registry_->Save("ana@example.org", MakeUdf("Same", "return 2")).status());
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry mine, registry_->Get(kLocal, "Same"));
  TF_ASSERT_OK_AND_ASSIGN(UdfEntry hers, registry_->Get("ana@example.org", "Same"));
  EXPECT_NE(mine.spec.code, hers.spec.code);
  TF_ASSERT_OK(registry_->Delete(kLocal, "Same"));
  TF_ASSERT_OK(registry_->Get("ana@example.org", "Same").status());
}

// A folder written by the registry loads in Python: tests/registry/test_registry_folder.py
// runs this test with TERRAFUSE_TEST_OUT set, then fused.load()s and fused.run()s the folder.
TEST_F(RegistryTest, WritesLoadableFolder) {
  const char* out = std::getenv("TERRAFUSE_TEST_OUT");
  std::shared_ptr<Registry> registry = registry_;
  if (out != nullptr) {
    TF_ASSERT_OK_AND_ASSIGN(registry, Registry::Open((fs::path(out) / "home").string()));
  }
  UdfSpec spec;
  spec.name = "Registry_Loadable";
  spec.code =
      "@fused.udf\n"
      "def udf(n: int = 3, label: str = \"a\"):\n"
      "    import pandas as pd\n"
      "    import helpers\n"
      "    return pd.DataFrame({\"x\": helpers.series(n), \"label\": [label] * n})\n";
  spec.headers = {{"helpers", "def series(n):\n    return [i * 10 for i in range(n)]\n"}};
  spec.metadata_json =
      R"({"fused:description": "Made by the C++ registry: \"quotes\", unicode \u00e9 \u2713\nline 2",)"
      R"( "fused:udfType": "vector_single", "custom": {"nested": [1, 2.5, null, true], "tab": "a\tb"}})";
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry->Save(kLocal, spec));
  for (const char* file : {"Registry_Loadable.py", "helpers.py", "meta.json", "README.MD"}) {
    EXPECT_TRUE(fs::is_regular_file(fs::path(saved.folder) / file)) << file;
  }
  if (out != nullptr) WriteText(fs::path(out) / "folder.txt", saved.folder);
}

// -- API tokens ----------------------------------------------------------------------------

TEST_F(RegistryTest, ApiTokensAuthenticateUntilRevoked) {
  TF_ASSERT_OK_AND_ASSIGN(std::string token, registry_->CreateApiToken(kLocal));
  ASSERT_EQ(token.size(), 4 + Registry::kTokenRandomChars);
  EXPECT_EQ(token.substr(0, 4), "tfk_");
  EXPECT_TRUE(IsAlnum(token.substr(4)));
  TF_ASSERT_OK_AND_ASSIGN(std::string other, registry_->CreateApiToken(kLocal));
  EXPECT_NE(other, token);

  TF_ASSERT_OK_AND_ASSIGN(std::string owner, registry_->Authenticate(token));
  EXPECT_EQ(owner, kLocal);
  TF_ASSERT_OK_AND_ASSIGN(owner, registry_->Authenticate("Bearer " + token));
  EXPECT_EQ(owner, kLocal);
  TF_ASSERT_OK_AND_ASSIGN(owner, registry_->Authenticate("bearer  " + token + " "));
  EXPECT_EQ(owner, kLocal);

  TF_ASSERT_RAISES(ErrorKind::kUnauthenticated, "Missing API token",
                   registry_->Authenticate("").status());
  TF_ASSERT_RAISES(ErrorKind::kUnauthenticated, "Missing API token",
                   registry_->Authenticate("Bearer ").status());
  TF_ASSERT_RAISES(
      ErrorKind::kUnauthenticated,
      "Invalid API token 'password...': expected 'tfk_' followed by 32 letters or digits",
      registry_->Authenticate("password123").status());
  std::string forged = "tfk_" + std::string(32, 'A');
  TF_ASSERT_RAISES(ErrorKind::kUnauthenticated,
                   "API token 'tfk_AAAA...' is not valid: it was revoked or never issued",
                   registry_->Authenticate(forged).status());
  // A token differing in its last character only.
  std::string near = token;
  near.back() = near.back() == 'a' ? 'b' : 'a';
  TF_ASSERT_RAISES(ErrorKind::kUnauthenticated, "is not valid",
                   registry_->Authenticate(near).status());

  TF_ASSERT_OK(registry_->RevokeApiToken(token));
  TF_ASSERT_RAISES(ErrorKind::kUnauthenticated, "is not valid",
                   registry_->Authenticate(token).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "already revoked or never issued",
                   registry_->RevokeApiToken(token));
  TF_ASSERT_OK(registry_->Authenticate(other).status());  // the other token is unaffected

  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Unknown owner 'ghost@example.org'",
                   registry_->CreateApiToken("ghost@example.org").status());
}

TEST_F(RegistryTest, ApiTokensAreStoredOnlyAsHashes) {
  TF_ASSERT_OK_AND_ASSIGN(std::string token, registry_->CreateApiToken(kLocal));
  registry_.reset();  // checkpoint and close: the database file holds everything
  for (const char* file : {"state.db", "state.db-wal"}) {
    if (!fs::exists(home_ / file)) continue;
    std::string bytes = ReadText(home_ / file);
    EXPECT_EQ(bytes.find(token.substr(4)), std::string::npos)
        << file << " holds the token in clear";
  }
}

TEST_F(RegistryTest, ErrorsShowOnlyATokenPrefix) {
  std::string secret = "fsh_" + std::string(32, 'Z');
  auto resolved = registry_->ResolveSharedToken(secret);
  ASSERT_FALSE(resolved.ok());
  EXPECT_EQ(resolved.status().message().find(secret), std::string::npos)
      << resolved.status().message();
  EXPECT_NE(resolved.status().message().find("'fsh_ZZZZ...'"), std::string::npos)
      << resolved.status().message();
  std::string api = "tfk_" + std::string(32, 'Z');
  auto auth = registry_->Authenticate(api);
  EXPECT_EQ(auth.status().message().find(api), std::string::npos);
  EXPECT_EQ(registry_->RevokeSharedToken(kLocal, secret).message().find(secret), std::string::npos);
  EXPECT_EQ(registry_->RevokeApiToken(api).message().find(api), std::string::npos);
}

// -- shared tokens -------------------------------------------------------------------------

TEST_F(RegistryTest, SharedTokensResolveToTheirUdf) {
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v1, registry_->Save(kLocal, MakeUdf("Shared")));
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Other")).status());
  TokenSettings settings;
  settings.cache_max_age_seconds = 3600;
  settings.metadata_json = R"({ "purpose" : "demo" })";
  TF_ASSERT_OK_AND_ASSIGN(std::string token,
                          registry_->CreateSharedToken(kLocal, "Shared", settings));
  ASSERT_EQ(token.size(), 4 + Registry::kTokenRandomChars);
  EXPECT_EQ(token.substr(0, 4), "fsh_");
  EXPECT_TRUE(IsAlnum(token.substr(4)));

  TF_ASSERT_OK_AND_ASSIGN(ResolvedToken resolved, registry_->ResolveSharedToken(token));
  EXPECT_EQ(resolved.owner, kLocal);
  EXPECT_EQ(resolved.udf_name, "Shared");
  EXPECT_EQ(resolved.version, v1.version);
  EXPECT_FALSE(resolved.is_public_name);
  EXPECT_TRUE(resolved.settings.enabled);
  EXPECT_TRUE(resolved.settings.cache);
  EXPECT_EQ(resolved.settings.cache_max_age_seconds, 3600);
  EXPECT_EQ(resolved.settings.scope, TokenScope::kPublic);
  EXPECT_FALSE(resolved.settings.include_code);
  EXPECT_EQ(resolved.settings.metadata_json, R"({"purpose":"demo"})");

  // The token follows the UDF to its current version.
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf v2, registry_->Save(kLocal, MakeUdf("Shared", "return 2 * n")));
  TF_ASSERT_OK_AND_ASSIGN(resolved, registry_->ResolveSharedToken(token));
  EXPECT_EQ(resolved.version, v2.version);

  TF_ASSERT_OK_AND_ASSIGN(auto tokens, registry_->ListSharedTokens(kLocal));
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].token, token);
  EXPECT_EQ(tokens[0].udf_name, "Shared");
  EXPECT_EQ(tokens[0].owner, kLocal);
  EXPECT_EQ(tokens[0].settings.cache_max_age_seconds, 3600);
  EXPECT_GT(tokens[0].created_at, 0);

  TF_ASSERT_OK_AND_ASSIGN(std::string second, registry_->CreateSharedToken(kLocal, "Other", {}));
  EXPECT_NE(second, token);
  TF_ASSERT_OK_AND_ASSIGN(resolved, registry_->ResolveSharedToken(second));
  EXPECT_EQ(resolved.udf_name, "Other");
  EXPECT_FALSE(resolved.settings.cache_max_age_seconds.has_value());
  TF_ASSERT_OK_AND_ASSIGN(tokens, registry_->ListSharedTokens(kLocal));
  EXPECT_EQ(tokens.size(), 2u);
}

TEST_F(RegistryTest, SharedTokensUpdateDisableAndRevoke) {
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Shared")).status());
  TF_ASSERT_OK_AND_ASSIGN(std::string token, registry_->CreateSharedToken(kLocal, "Shared", {}));

  TokenSettings disabled;
  disabled.enabled = false;
  TF_ASSERT_OK(registry_->UpdateSharedToken(kLocal, token, disabled));
  TF_ASSERT_RAISES(ErrorKind::kPermissionDenied,
                   "Shared token '" + token.substr(0, 8) +
                       "...' of UDF 'Shared' of owner 'local@terrafuse' is disabled by its owner",
                   registry_->ResolveSharedToken(token).status());

  TokenSettings changed;
  changed.cache = false;
  changed.cache_max_age_seconds = 0;
  changed.scope = TokenScope::kTeam;
  changed.include_code = true;
  changed.metadata_json = R"({"k": [1, "two"]})";
  TF_ASSERT_OK(registry_->UpdateSharedToken(kLocal, token, changed));
  TF_ASSERT_OK_AND_ASSIGN(ResolvedToken resolved, registry_->ResolveSharedToken(token));
  EXPECT_TRUE(resolved.settings.enabled);
  EXPECT_FALSE(resolved.settings.cache);
  EXPECT_EQ(resolved.settings.cache_max_age_seconds, 0);
  EXPECT_EQ(resolved.settings.scope, TokenScope::kTeam);
  EXPECT_TRUE(resolved.settings.include_code);
  EXPECT_EQ(resolved.settings.metadata_json, R"({"k":[1,"two"]})");

  // Another owner can neither change nor revoke it.
  TF_ASSERT_OK(registry_->EnsureUser("eve@example.org"));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "of owner 'eve@example.org' not found",
                   registry_->UpdateSharedToken("eve@example.org", token, disabled));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "of owner 'eve@example.org' not found",
                   registry_->RevokeSharedToken("eve@example.org", token));
  TF_ASSERT_OK(registry_->ResolveSharedToken(token).status());

  TF_ASSERT_OK(registry_->RevokeSharedToken(kLocal, token));
  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "' not found: it was revoked, its UDF was deleted, or it never existed",
                   registry_->ResolveSharedToken(token).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "already revoked or never issued",
                   registry_->RevokeSharedToken(kLocal, token));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found",
                   registry_->UpdateSharedToken(kLocal, token, changed));
  TF_ASSERT_OK_AND_ASSIGN(auto tokens, registry_->ListSharedTokens(kLocal));
  EXPECT_TRUE(tokens.empty());
}

TEST_F(RegistryTest, SharedTokenErrors) {
  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "UDF 'Missing' of owner 'local@terrafuse' not found: save it before sharing it",
                   registry_->CreateSharedToken(kLocal, "Missing", {}).status());
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Shared")).status());
  TokenSettings bad;
  bad.cache_max_age_seconds = -1;
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid cache_max_age_seconds -1 of a shared token",
                   registry_->CreateSharedToken(kLocal, "Shared", bad).status());
  bad = {};
  bad.metadata_json = "[1]";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid metadata_json of a shared token: expected a JSON object, got an array",
                   registry_->CreateSharedToken(kLocal, "Shared", bad).status());
  TF_ASSERT_RAISES(
      ErrorKind::kNotFound,
      "Unknown shared token 'hello': expected 'fsh_' followed by 32 letters or digits, or a public "
      "name 'UDF_<Name>'",
      registry_->ResolveSharedToken("hello").status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Unknown shared token 'fsh_shor...'",
                   registry_->ResolveSharedToken("fsh_short").status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Shared token 'fsh_AAAA...' not found",
                   registry_->ResolveSharedToken("fsh_" + std::string(32, 'A')).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Unknown shared token ''",
                   registry_->ResolveSharedToken("").status());
}

TEST_F(RegistryTest, DeletingAUdfEndsItsTokens) {
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Doomed")).status());
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Kept")).status());
  TF_ASSERT_OK_AND_ASSIGN(std::string doomed, registry_->CreateSharedToken(kLocal, "Doomed", {}));
  TF_ASSERT_OK_AND_ASSIGN(std::string kept, registry_->CreateSharedToken(kLocal, "Kept", {}));
  TF_ASSERT_OK(registry_->SetPublic(kLocal, "Doomed", true));
  TF_ASSERT_OK(registry_->Delete(kLocal, "Doomed"));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found",
                   registry_->ResolveSharedToken(doomed).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Public UDF 'UDF_Doomed' not found",
                   registry_->ResolveSharedToken("UDF_Doomed").status());
  TF_ASSERT_OK(registry_->ResolveSharedToken(kept).status());
  // A new UDF of the same name does not revive the old token or public name.
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Doomed")).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found",
                   registry_->ResolveSharedToken(doomed).status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found",
                   registry_->ResolveSharedToken("UDF_Doomed").status());
  TF_ASSERT_OK_AND_ASSIGN(auto tokens, registry_->ListSharedTokens(kLocal));
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].token, kept);
}

TEST_F(RegistryTest, PublicNames) {
  TF_ASSERT_OK_AND_ASSIGN(SavedUdf saved, registry_->Save(kLocal, MakeUdf("Example")));
  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "Public UDF 'UDF_Example' not found: no UDF named 'Example' is public",
                   registry_->ResolveSharedToken("UDF_Example").status());
  TF_ASSERT_OK(registry_->SetPublic(kLocal, "Example", true));
  TF_ASSERT_OK(registry_->SetPublic(kLocal, "Example", true));  // idempotent
  TF_ASSERT_OK_AND_ASSIGN(ResolvedToken resolved, registry_->ResolveSharedToken("UDF_Example"));
  EXPECT_EQ(resolved.owner, kLocal);
  EXPECT_EQ(resolved.udf_name, "Example");
  EXPECT_EQ(resolved.version, saved.version);
  EXPECT_TRUE(resolved.is_public_name);
  EXPECT_EQ(resolved.settings, TokenSettings{});
  TF_ASSERT_OK_AND_ASSIGN(auto list, registry_->List(kLocal));
  EXPECT_TRUE(list[0].is_public);

  // One public UDF per name.
  TF_ASSERT_OK(registry_->EnsureUser("ana@example.org"));
  TF_ASSERT_OK(registry_->Save("ana@example.org", MakeUdf("Example")).status());
  TF_ASSERT_RAISES(
      ErrorKind::kAlreadyExists,
      "Cannot make UDF 'Example' of owner 'ana@example.org' public: the public name 'UDF_Example' "
      "already belongs to owner 'local@terrafuse'",
      registry_->SetPublic("ana@example.org", "Example", true));
  TF_ASSERT_OK(registry_->SetPublic(kLocal, "Example", false));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "not found",
                   registry_->ResolveSharedToken("UDF_Example").status());
  TF_ASSERT_OK(registry_->SetPublic("ana@example.org", "Example", true));
  TF_ASSERT_OK_AND_ASSIGN(resolved, registry_->ResolveSharedToken("UDF_Example"));
  EXPECT_EQ(resolved.owner, "ana@example.org");

  TF_ASSERT_RAISES(ErrorKind::kNotFound, "UDF 'Nope' of owner 'local@terrafuse' not found",
                   registry_->SetPublic(kLocal, "Nope", true));
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Public UDF 'UDF_a/b' not found",
                   registry_->ResolveSharedToken("UDF_a/b").status());
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Public UDF 'UDF_' not found",
                   registry_->ResolveSharedToken("UDF_").status());
}

// -- threads -------------------------------------------------------------------------------

TEST_F(RegistryTest, ConcurrentSavesAndResolves) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 12;
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Common")).status());
  TF_ASSERT_OK_AND_ASSIGN(std::string common, registry_->CreateSharedToken(kLocal, "Common", {}));
  TF_ASSERT_OK_AND_ASSIGN(std::string api, registry_->CreateApiToken(kLocal));
  std::atomic<int> failures{0};
  std::vector<std::string> errors(kThreads);
  auto check = [&](int t, const Status& st) {
    if (!st.ok()) {
      ++failures;
      errors[t] = st.ToString();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string name = "Udf_" + std::to_string(t);
      std::string token;
      for (int i = 0; i < kRounds; ++i) {
        auto saved = registry_->Save(kLocal, MakeUdf(name, "return n + " + std::to_string(i)));
        check(t, saved.status());
        // Every thread also saves identical content under one name: one folder, reused.
        check(t, registry_->Save(kLocal, MakeUdf("Common")).status());
        if (i == 0) {
          auto created = registry_->CreateSharedToken(kLocal, name, {});
          check(t, created.status());
          if (created.ok()) token = *created;
        }
        auto resolved = registry_->ResolveSharedToken(token);
        check(t, resolved.status());
        if (resolved.ok() && saved.ok() && resolved->version != saved->version) {
          check(t, Internal("token of ", name, " resolved to a stale version"));
        }
        check(t, registry_->ResolveSharedToken(common).status());
        check(t, registry_->Authenticate(api).status());
        auto entry = registry_->Get(kLocal, name);
        check(t, entry.status());
        if (entry.ok() &&
            entry->spec.code != MakeUdf(name, "return n + " + std::to_string(i)).code) {
          check(t, Internal("Get of ", name, " returned other code"));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(failures.load(), 0);
  TF_ASSERT_OK_AND_ASSIGN(auto list, registry_->List(kLocal));
  EXPECT_EQ(list.size(), static_cast<size_t>(kThreads + 1));
  TF_ASSERT_OK_AND_ASSIGN(auto tokens, registry_->ListSharedTokens(kLocal));
  EXPECT_EQ(tokens.size(), static_cast<size_t>(kThreads + 1));
  size_t versions = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(home_ / "udfs" / kLocal / "Udf_0")) {
    ++versions;
  }
  EXPECT_EQ(versions, static_cast<size_t>(kRounds));
  ExpectScratchEmpty();
}

TEST_F(RegistryTest, SaveRacingDeleteLeavesNoDanglingVersion) {
  // Whatever the interleaving, a UDF that Get finds has its folder.
  std::atomic<bool> stop{false};
  std::string delete_error;  // anything but "not found" is a bug
  std::thread deleter([&] {
    while (!stop) {
      Status st = registry_->Delete(kLocal, "Racy");
      if (!st.ok() && KindOf(st) != ErrorKind::kNotFound && delete_error.empty()) {
        delete_error = st.ToString();
      }
    }
  });
  for (int i = 0; i < 30; ++i) {
    auto saved = registry_->Save(kLocal, MakeUdf("Racy", "return " + std::to_string(i)));
    ASSERT_TRUE(saved.ok()) << saved.status().ToString();
    auto entry = registry_->Get(kLocal, "Racy");
    if (!entry.ok()) {
      EXPECT_EQ(KindOf(entry.status()), ErrorKind::kNotFound) << entry.status().ToString();
    }
  }
  stop = true;
  deleter.join();
  EXPECT_EQ(delete_error, "");
  TF_ASSERT_OK(registry_->Save(kLocal, MakeUdf("Racy")).status());
  TF_ASSERT_OK(registry_->Get(kLocal, "Racy").status());
  ExpectScratchEmpty();
}

TEST_F(RegistryTest, OpenSweepsStaleScratchEntries) {
  fs::path stale = home_ / "udfs" / ".scratch" / ".tmp-x-old";
  fs::path fresh = home_ / "udfs" / ".scratch" / ".tmp-x-new";
  WriteText(stale / "meta.json", "{}");
  WriteText(fresh / "meta.json", "{}");
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  Reopen();
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(fresh)) << "another process may still be writing it";
}

}  // namespace
TEST(CryptoTest, Sha256MatchesTheStandardVectors) {
  auto hex = [](const std::string& raw) {
    static const char* kDigits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) out += {kDigits[c >> 4], kDigits[c & 15]};
    return out;
  };
  EXPECT_EQ(hex(internal::Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(internal::Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(internal::Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(hex(internal::Sha256(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_TRUE(internal::ConstantTimeEquals("same", "same"));
  EXPECT_FALSE(internal::ConstantTimeEquals("same", "sama"));
  EXPECT_FALSE(internal::ConstantTimeEquals("", ""));
}

}  // namespace terrafuse::udf
