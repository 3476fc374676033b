#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <arrow/buffer.h>
#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <arrow/util/io_util.h>
#include <gtest/gtest.h>

#include "terrafuse/storage/file_system.h"
#include "terrafuse/storage/files.h"
#include "terrafuse/storage/signed_url.h"

namespace terrafuse::storage {
namespace {

namespace stdfs = std::filesystem;

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/tf_storage_test_XXXXXX";
    dir_ = mkdtemp(pattern);
    config_.home = dir_ + "/home";
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  Location Resolve(const std::string& uri) {
    auto location = ResolveUri(uri, config_);
    EXPECT_TRUE(location.ok()) << location.status().ToString();
    return location.ValueOrDie();
  }
  void Put(const std::string& uri, const std::string& bytes) {
    auto writer = AtomicWriter::Open(Resolve(uri));
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Write(bytes.data(), static_cast<int64_t>(bytes.size())).ok());
    ASSERT_TRUE((*writer)->Commit().ok());
  }
  std::string Root() { return dir_ + "/home/fd"; }

  std::string dir_;
  StorageConfig config_;
};

TEST(NormalizeRelativeTest, DropsEmptyAndDotPartsAndRefusesParents) {
  EXPECT_EQ(*NormalizeRelative("a/./b//c/", "x"), "a/b/c");
  EXPECT_EQ(*NormalizeRelative("/etc/passwd", "x"), "etc/passwd");
  EXPECT_EQ(*NormalizeRelative("", "x"), "");
  auto up = NormalizeRelative("a/../../b", "fd://a/../../b");
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(KindOf(up.status()), ErrorKind::kPermissionDenied);
  EXPECT_NE(up.status().message().find("fd://a/../../b"), std::string::npos);
  EXPECT_FALSE(NormalizeRelative("a\\..\\b", "x").ok());
  EXPECT_FALSE(NormalizeRelative(std::string_view("a\0b", 3), "x").ok());
}

TEST_F(StorageTest, FdResolvesUnderTheRootAndNamesTheUri) {
  Location location = Resolve("fd://demo/./ais.csv");
  EXPECT_TRUE(location.local);
  EXPECT_EQ(location.uri, "fd://demo/ais.csv");
  EXPECT_EQ(location.path, stdfs::weakly_canonical(Root()).string() + "/demo/ais.csv");
  // An absolute path after fd:// is still inside the root.
  EXPECT_EQ(Resolve("fd:///etc/passwd").path, stdfs::weakly_canonical(Root()).string() + "/etc/passwd");
  // Percent escapes are not decoded here: "%2e%2e" is a plain name inside the root.
  EXPECT_EQ(Resolve("fd://a/%2e%2e/b").uri, "fd://a/%2e%2e/b");
  // A configured root is used instead of <home>/fd.
  config_.fd_root = dir_ + "/elsewhere";
  EXPECT_EQ(Resolve("fd://x").path, stdfs::weakly_canonical(dir_ + "/elsewhere").string() + "/x");
}

TEST_F(StorageTest, RefusesTraversalAndSymlinkEscapes) {
  for (const char* uri : {"fd://../secret", "fd://a/../../secret", "fd://a/..", "s3://bucket/../other"}) {
    auto location = ResolveUri(uri, config_);
    ASSERT_FALSE(location.ok()) << uri;
    EXPECT_EQ(KindOf(location.status()), ErrorKind::kPermissionDenied) << uri;
  }
  Resolve("fd://");  // creates the root
  stdfs::create_directories(dir_ + "/outside");
  stdfs::create_symlink(dir_ + "/outside", Root() + "/evil");
  auto escaped = ResolveUri("fd://evil/x.csv", config_);
  ASSERT_FALSE(escaped.ok());
  EXPECT_EQ(KindOf(escaped.status()), ErrorKind::kPermissionDenied);
  EXPECT_NE(escaped.status().message().find("fd://evil/x.csv"), std::string::npos);
  EXPECT_EQ(escaped.status().message().find(dir_), std::string::npos) << "leaks the root";
  // A symlink that stays inside the root is fine.
  stdfs::create_directories(Root() + "/real");
  stdfs::create_symlink(Root() + "/real", Root() + "/alias");
  EXPECT_TRUE(ResolveUri("fd://alias/x.csv", config_).ok());
}

TEST_F(StorageTest, LocalPathsCanBeTurnedOffAndUnknownSchemesAreNamed) {
  config_.allow_local = false;
  for (const char* uri : {"/etc/passwd", "file:///etc/passwd", "relative.csv"}) {
    auto location = ResolveUri(uri, config_);
    ASSERT_FALSE(location.ok()) << uri;
    EXPECT_EQ(KindOf(location.status()), ErrorKind::kPermissionDenied) << uri;
  }
  auto unknown = ResolveUri("gopher://x/y", config_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'gopher://'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("fd://"), std::string::npos);
  config_.allow_local = true;
  EXPECT_EQ(Resolve("file:///tmp/a.csv").path, "/tmp/a.csv");
  EXPECT_FALSE(ResolveUri("file://relative", config_).ok());
}

TEST_F(StorageTest, MountPathsMapToTheSharedDirectory) {
  config_.shared_dir = dir_ + "/shared";
  stdfs::create_directories(dir_ + "/shared");
  const std::string shared = stdfs::weakly_canonical(dir_ + "/shared").string();
  EXPECT_EQ(Resolve("/mount/models/a.bin").path, shared + "/models/a.bin");
  EXPECT_EQ(Resolve("/mnt/cache/.env").path, shared + "/.env");
  EXPECT_FALSE(ResolveUri("/mount/../etc/passwd", config_).ok());
  EXPECT_EQ(Resolve("/mountain/x").path, "/mountain/x");  // not the prefix
  setenv("TERRAFUSE_SHARED_DIR", "/srv/shared", 1);
  EXPECT_EQ(StorageConfig::FromEnvironment("h").shared_dir, "/srv/shared");
  unsetenv("TERRAFUSE_SHARED_DIR");
}

TEST_F(StorageTest, AtomicWriterPublishesOnlyOnCommit) {
  Location target = Resolve("fd://up/data.bin");
  {
    auto writer = AtomicWriter::Open(target);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Write("abc", 3).ok());
    EXPECT_FALSE(stdfs::exists(target.path));
    EXPECT_TRUE((*List(Resolve("fd://up"), false)).empty()) << "the partial upload is listed";
    // Destroyed without Commit: nothing is left, not even the temp file.
  }
  EXPECT_TRUE(stdfs::is_empty(Root() + "/up"));
  Put("fd://up/data.bin", "hello");
  std::ifstream in(target.path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "hello");
  auto dir = AtomicWriter::Open(Resolve("fd://up"));
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("is a directory"), std::string::npos);
}

TEST_F(StorageTest, ReservedSpaceIsTrimmedToWhatCameAndAFullDiskIsRefusedUpFront) {
  Location target = Resolve("fd://res/data.bin");
  {
    auto writer = AtomicWriter::Open(target);
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ASSERT_TRUE((*writer)->Reserve(1 << 20).ok());
    ASSERT_TRUE((*writer)->Write("abc", 3).ok());
    ASSERT_TRUE((*writer)->Commit().ok());
  }
  EXPECT_EQ(stdfs::file_size(target.path), 3u);  // not the 1 MiB reserved
  {
    // A file over any disk (and under ext4's 16 TiB): refused before a byte is written,
    // naming the URI and not the local root; dropping the writer leaves nothing.
    auto writer = AtomicWriter::Open(Resolve("fd://res/huge.bin"));
    ASSERT_TRUE(writer.ok());
    Status reserved = (*writer)->Reserve(int64_t{15} << 40);
    ASSERT_FALSE(reserved.ok());
    EXPECT_NE(reserved.message().find("fd://res/huge.bin"), std::string::npos) << reserved.message();
    EXPECT_TRUE(reserved.message().find("disk is full") != std::string::npos ||
                reserved.message().find("file system allows") != std::string::npos)
        << reserved.message();
    EXPECT_EQ(reserved.message().find(Root()), std::string::npos) << reserved.message();
  }
  std::vector<std::string> left;
  for (const auto& entry : stdfs::directory_iterator(Root() + "/res")) left.push_back(entry.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"data.bin"});
}

TEST_F(StorageTest, StatListAndNotFoundNameTheUri) {
  Put("fd://demo/a.csv", "1,2\n");
  Put("fd://demo/sub/b.csv", "12345");
  auto entries = List(Resolve("fd://demo/"), false);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].uri, "fd://demo/a.csv");
  EXPECT_EQ((*entries)[0].size, 4);
  EXPECT_GT((*entries)[0].modified_ms, 1'600'000'000'000);
  EXPECT_TRUE((*entries)[1].is_dir);
  auto tree = List(Resolve("fd://demo"), true);
  ASSERT_EQ(tree->size(), 3u);
  EXPECT_EQ((*tree)[2].name, "sub/b.csv");
  EXPECT_EQ((*tree)[2].uri, "fd://demo/sub/b.csv");
  auto missing = Stat(Resolve("fd://demo/nope.csv"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(KindOf(missing.status()), ErrorKind::kNotFound);
  EXPECT_NE(missing.status().message().find("fd://demo/nope.csv"), std::string::npos);
  EXPECT_EQ(missing.status().message().find(dir_), std::string::npos);
  EXPECT_TRUE(List(Resolve("fd://"), false).ok());
}

TEST_F(StorageTest, DeleteHonoursTheDepthLimit) {
  Put("fd://t/a/b/c.txt", "x");
  Put("fd://t/top.txt", "x");
  auto refused = Delete(Resolve("fd://t"), 2);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("3 levels deep"), std::string::npos) << refused.message();
  EXPECT_TRUE(stdfs::exists(Root() + "/t/top.txt"));
  ASSERT_TRUE(Delete(Resolve("fd://t/top.txt"), 0).ok());
  ASSERT_TRUE(Delete(Resolve("fd://t"), 3).ok());
  EXPECT_FALSE(stdfs::exists(Root() + "/t"));
  EXPECT_EQ(KindOf(Delete(Resolve("fd://t"), -1)), ErrorKind::kNotFound);
  EXPECT_EQ(KindOf(Delete(Resolve("fd://"), -1)), ErrorKind::kPermissionDenied);
  // Deleting a symlink inside the root removes the link, not its target.
  Put("fd://keep/x.txt", "x");
  stdfs::create_directory_symlink(Root() + "/keep", Root() + "/link");
  ASSERT_TRUE(Delete(Resolve("fd://link"), -1).ok());
  EXPECT_TRUE(stdfs::exists(Root() + "/keep/x.txt"));
}

TEST_F(StorageTest, DescribeNamesTheUriForDiskErrors) {
  Location where = Resolve("fd://x/y.bin");
  Status full = Describe(arrow::internal::IOErrorFromErrno(ENOSPC, "Failed to write '", where.path, "'"), where,
                         "write");
  EXPECT_EQ(KindOf(full), ErrorKind::kIOError);
  EXPECT_EQ(full.message(), "Cannot write 'fd://x/y.bin': the disk is full");
  Status other = Describe(arrow::Status::IOError("boom at '", where.path, "'"), where, "read");
  EXPECT_NE(other.message().find("boom at 'fd://x/y.bin'"), std::string::npos) << other.message();
  EXPECT_EQ(other.message().find(dir_), std::string::npos) << other.message();
  EXPECT_EQ(KindOf(Describe(arrow::internal::IOErrorFromErrno(ENOENT, "x"), where, "read")), ErrorKind::kNotFound);
}

TEST_F(StorageTest, CopyFileAndZip) {
  Put("fd://z/a.txt", "alpha");
  Put("fd://z/d/b.txt", "beta");
  auto copied = CopyFile(Resolve("fd://z/a.txt"), Resolve(dir_ + "/copy.txt"));
  ASSERT_TRUE(copied.ok()) << copied.status().ToString();
  EXPECT_EQ(*copied, 5);
  auto sink = *arrow::io::BufferOutputStream::Create();
  ASSERT_TRUE(WriteZip(Resolve("fd://z"), sink.get()).ok());
  std::string zip = (*sink->Finish())->ToString();
  EXPECT_EQ(zip.substr(0, 4), std::string("PK\3\4"));
  EXPECT_NE(zip.find("alpha"), std::string::npos);
  EXPECT_NE(zip.find("d/b.txt"), std::string::npos);
  EXPECT_EQ(zip.substr(zip.size() - 22, 4), std::string("PK\5\6"));
  EXPECT_EQ(static_cast<unsigned char>(zip[zip.size() - 12]), 2);  // two members
}

TEST(SignedUrlTest, HmacMatchesRfc4231AndSignaturesVerify) {
  std::string mac = HmacSha256("Jefe", "what do ya want for nothing?");
  std::string hex;
  for (unsigned char c : mac) {
    char b[3];
    snprintf(b, sizeof(b), "%02x", c);
    hex += b;
  }
  EXPECT_EQ(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::string key = "k3y";
  std::string signature = SignPath(key, "fd://a.csv", 1000);
  EXPECT_TRUE(VerifySignedPath(key, "fd://a.csv", 1000, signature, 999).ok());
  EXPECT_NE(VerifySignedPath(key, "fd://a.csv", 1000, signature, 1001).message().find("expired"), std::string::npos);
  EXPECT_FALSE(VerifySignedPath(key, "fd://b.csv", 1000, signature, 999).ok());
  EXPECT_FALSE(VerifySignedPath(key, "fd://a.csv", 2000, signature, 999).ok());
  EXPECT_FALSE(VerifySignedPath("other", "fd://a.csv", 1000, signature, 999).ok());
}

TEST(SignedUrlTest, SigningKeyIsCreatedOnceWithOwnerOnlyMode) {
  char pattern[] = "/tmp/tf_signing_XXXXXX";
  std::string home = mkdtemp(pattern);
  auto first = LoadOrCreateSigningKey(home);
  ASSERT_TRUE(first.ok());
  EXPECT_GE(first->size(), 32u);
  EXPECT_EQ(*LoadOrCreateSigningKey(home), *first);
  EXPECT_EQ(stdfs::status(home + "/signing.key").permissions() & stdfs::perms::all,
            stdfs::perms::owner_read | stdfs::perms::owner_write);
  stdfs::remove_all(home);
}

}  // namespace
}  // namespace terrafuse::storage
