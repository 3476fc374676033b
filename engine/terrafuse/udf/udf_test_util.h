// Helpers shared by the udf_test sources: status assertions and a per-test temp directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "terrafuse/common/status.h"

#define TF_ASSERT_OK(expr)                         \
  do {                                             \
    ::arrow::Status _st = ::arrow::ToStatus(expr); \
    ASSERT_TRUE(_st.ok()) << _st.ToString();       \
  } while (false)

#define TF_CONCAT_INNER(a, b) a##b
#define TF_CONCAT(a, b) TF_CONCAT_INNER(a, b)
#define TF_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();   \
  lhs = std::move(tmp).ValueOrDie();
#define TF_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  TF_ASSERT_OK_AND_ASSIGN_IMPL(TF_CONCAT(_result_, __LINE__), lhs, rexpr)

// Asserts that `expr` (a Status or Result) failed with `kind` and a message containing `text`.
#define TF_ASSERT_RAISES(kind, text, expr)                                      \
  do {                                                                          \
    ::arrow::Status _st = ::arrow::ToStatus(expr);                              \
    ASSERT_FALSE(_st.ok()) << "expected an error containing: " << (text);       \
    EXPECT_EQ(::terrafuse::ErrorKindName(::terrafuse::KindOf(_st)),             \
              std::string(::terrafuse::ErrorKindName(kind)))                    \
        << _st.ToString();                                                      \
    EXPECT_NE(_st.message().find(text), std::string::npos)                      \
        << "message: " << _st.message() << "\nexpected to contain: " << (text); \
  } while (false)

namespace terrafuse::udf::testing {

// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tf_udf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
};

inline std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace terrafuse::udf::testing
