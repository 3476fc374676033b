#include "terrafuse/common/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace terrafuse {

TEST(StatusTest, KindSurvivesPropagation) {
  auto fails = []() -> Status { return NotFound("UDF '", "x", "' not found"); };
  auto outer = [&]() -> Status {
    ARROW_RETURN_NOT_OK(fails());
    return Status::OK();
  };
  Status st = outer();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(KindOf(st), ErrorKind::kNotFound);
  EXPECT_EQ(st.message(), "UDF 'x' not found");
}

TEST(StatusTest, ArrowCodesMapToKinds) {
  EXPECT_EQ(KindOf(Status::Invalid("bad")), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf(Status::IOError("disk")), ErrorKind::kIOError);
  EXPECT_EQ(KindOf(Status::UnknownError("?")), ErrorKind::kInternal);
}

TEST(StatusTest, ErrnoErrorNamesPathAndReason) {
  Status st = ErrnoError(ENOENT, "cannot open", "/nope");
  EXPECT_EQ(KindOf(st), ErrorKind::kNotFound);
  EXPECT_NE(st.message().find("'/nope'"), std::string::npos);
  EXPECT_EQ(KindOf(ErrnoError(EACCES, "x", "y")), ErrorKind::kPermissionDenied);
  EXPECT_STREQ(ErrorKindName(ErrorKind::kUdfFailed), "udf_failed");
}

}  // namespace terrafuse
