// The http(s) file system against a tiny in-process HTTP server on loopback (the HTTPS cases,
// with certificates, are in tests/storage/test_https.py).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <arrow/buffer.h>
#include <gtest/gtest.h>

#include "terrafuse/storage/file_system.h"
#include "terrafuse/storage/http_file_system.h"

namespace terrafuse::storage {
namespace {

constexpr std::string_view kBody = "hello, ranged world";

// Answers each request on one connection at a time: 206 for "Range: bytes=a-b" on /file,
// 404 otherwise, and closes after `requests` requests.
class TinyServer {
 public:
  explicit TinyServer(int requests) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    ::listen(listener_, 4);
    thread_ = std::thread([this, requests] { Serve(requests); });
  }
  ~TinyServer() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
  }
  std::string Url(std::string_view path) const { return "http://127.0.0.1:" + std::to_string(port_) + std::string(path); }

 private:
  void Serve(int requests) {
    int fd = -1;
    std::string pending;
    for (int i = 0; i < requests; ++i) {
      if (fd < 0 && (fd = ::accept(listener_, nullptr, nullptr)) < 0) return;
      size_t end;
      while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
        char buf[4096];
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
          ::close(fd);
          fd = -1;
          pending.clear();
          break;
        }
        pending.append(buf, static_cast<size_t>(n));
      }
      if (fd < 0) {
        --i;
        continue;
      }
      std::string request = pending.substr(0, end);
      pending.erase(0, end + 4);
      std::string response;
      size_t range = request.find("Range: bytes=");
      if (request.starts_with("GET /file ") && range != std::string::npos) {
        size_t first = std::stoul(request.substr(range + 13));
        size_t last = std::min(std::stoul(request.substr(request.find('-', range + 13) + 1)), kBody.size() - 1);
        std::string part(kBody.substr(first, last - first + 1));
        response = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes " + std::to_string(first) + "-" +
                   std::to_string(last) + "/" + std::to_string(kBody.size()) +
                   "\r\nContent-Length: " + std::to_string(part.size()) + "\r\n\r\n" + part;
      } else {
        response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      }
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
    }
    if (fd >= 0) ::close(fd);
  }

  int listener_;
  uint16_t port_ = 0;
  std::thread thread_;
};

TEST(HttpFileSystemTest, ReadsRangesOverOneKeptAliveConnection) {
  TinyServer server(3);  // the size probe and two ranges, all on one connection
  auto fs = MakeHttpFileSystem(HttpOptions{});
  auto file = fs->OpenInputFile(server.Url("/file"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*(*file)->GetSize(), static_cast<int64_t>(kBody.size()));
  EXPECT_EQ((*(*file)->ReadAt(7, 6))->ToString(), "ranged");
  EXPECT_EQ((*(*file)->ReadAt(14, 100))->ToString(), "world");
}

TEST(HttpFileSystemTest, MissingFileIsNotFoundNamingTheUrl) {
  TinyServer server(2);
  auto fs = MakeHttpFileSystem(HttpOptions{});
  auto info = fs->GetFileInfo(server.Url("/nope"));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->type(), arrow::fs::FileType::NotFound);
  auto file = fs->OpenInputFile(server.Url("/nope"));
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(KindOf(file.status()), ErrorKind::kNotFound);
  EXPECT_NE(file.status().message().find(server.Url("/nope")), std::string::npos);
}

TEST(HttpFileSystemTest, RefusesWritesListingsAndBadUrls) {
  auto fs = MakeHttpFileSystem(HttpOptions{});
  auto out = fs->OpenOutputStream("https://example.invalid/x.bin");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("read-only"), std::string::npos);
  EXPECT_FALSE(fs->DeleteFile("https://example.invalid/x.bin").ok());
  arrow::fs::FileSelector selector;
  selector.base_dir = "https://example.invalid/";
  EXPECT_FALSE(fs->GetFileInfo(selector).ok());
  for (const char* bad : {"https://", "https://host:99999/x", "https://user@host/x", "https://host/a b"}) {
    auto file = fs->OpenInputFile(bad);
    ASSERT_FALSE(file.ok()) << bad;
    EXPECT_EQ(KindOf(file.status()), ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(HttpFileSystemTest, ConnectionRefusedNamesTheUrl) {
  int port;
  {
    TinyServer server(0);
    port = std::stoi(server.Url("").substr(17));
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/x";
  auto file = MakeHttpFileSystem(HttpOptions{})->OpenInputFile(url);
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find(url), std::string::npos) << file.status().ToString();
}

TEST(HttpFileSystemTest, RegistryResolvesHttpsButNotInTheFilesApi) {
  StorageConfig config;
  auto where = ResolveUri("https://example.com/data/x.parquet?sig=1", config);
  ASSERT_TRUE(where.ok());
  EXPECT_EQ(where->fs->type_name(), "http");
  EXPECT_EQ(where->path, "https://example.com/data/x.parquet?sig=1");
  config.allow_local = false;
  auto refused = ResolveUri("https://example.com/x", config);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(KindOf(refused.status()), ErrorKind::kPermissionDenied);
}

}  // namespace
}  // namespace terrafuse::storage
