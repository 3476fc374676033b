#include "terrafuse/udf/udf_spec.h"

#include <gtest/gtest.h>

#include "terrafuse/udf/udf_test_util.h"

namespace terrafuse::udf {
namespace {

UdfSpec Sample() {
  UdfSpec spec;
  spec.name = "Sample";
  spec.code = "@fused.udf\ndef udf(n: int = 3):\n    return n\n";
  spec.headers = {{"utils", "def f():\n    return 1\n"}};
  return spec;
}

TEST(UdfVersionTest, IsA32HexContentHash) {
  std::string version = UdfVersion(Sample());
  EXPECT_EQ(version.size(), 32u);
  TF_ASSERT_OK(ValidateVersion(version));
  EXPECT_EQ(UdfVersion(Sample()), version);
}

TEST(UdfVersionTest, ChangesWithCodeEntrypointAndHeadersOnly) {
  const std::string base = UdfVersion(Sample());
  UdfSpec spec = Sample();
  spec.code += " ";  // whitespace is content
  EXPECT_NE(UdfVersion(spec), base);
  spec = Sample();
  spec.entrypoint = "other";
  EXPECT_NE(UdfVersion(spec), base);
  spec = Sample();
  spec.headers[0].source_code += "\n";
  EXPECT_NE(UdfVersion(spec), base);
  spec = Sample();
  spec.headers[0].module_name = "utils2";
  EXPECT_NE(UdfVersion(spec), base);
  spec = Sample();
  spec.headers.clear();
  EXPECT_NE(UdfVersion(spec), base);

  // Not part of the version: what the UDF is called and how it is presented.
  spec = Sample();
  spec.name = "Renamed";
  spec.metadata_json = R"({"fused:udfType": "vector_tile"})";
  spec.parameters_json = R"({"n": 4})";
  EXPECT_EQ(UdfVersion(spec), base);
}

TEST(UdfVersionTest, FieldsAreFramed) {
  UdfSpec a = Sample(), b = Sample();
  a.headers = {{"ab", "c"}};
  b.headers = {{"a", "bc"}};
  EXPECT_NE(UdfVersion(a), UdfVersion(b));
  a = Sample();
  b = Sample();
  a.headers = {{"x", ""}, {"y", ""}};
  b.headers = {{"x", ""}};
  b.code = a.code;
  EXPECT_NE(UdfVersion(a), UdfVersion(b));
}

TEST(ValidateUdfNameTest, AcceptsSlugs) {
  for (const std::string& name :
       std::vector<std::string>{"a", "DuckDB_CSV", "my-udf_2", std::string(100, 'x')}) {
    TF_ASSERT_OK(ValidateUdfName(name));
  }
}

TEST(ValidateUdfNameTest, RejectsOthersNamingThem) {
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid UDF name '': use 1 to 100 letters, digits, '_' or '-'",
                   ValidateUdfName(""));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name 'a b'", ValidateUdfName("a b"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name '../etc'",
                   ValidateUdfName("../etc"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name 'caf\xc3\xa9'",
                   ValidateUdfName("caf\xc3\xa9"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name '" + std::string(101, 'x'),
                   ValidateUdfName(std::string(101, 'x')));
  // Long values are cut in messages.
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, std::string(120, 'y') + "...'",
                   ValidateUdfName(std::string(500, 'y')));
}

TEST(ValidateOwnerTest, AcceptsEmailLikeNames) {
  for (const char* owner : {"local@terrafuse", "a.b+c_d@example-1.org", "x@y"}) {
    TF_ASSERT_OK(ValidateOwner(owner));
  }
}

TEST(ValidateOwnerTest, RejectsOthersNamingThem) {
  for (const std::string& owner :
       std::vector<std::string>{"", "nobody", "a@b@c", "@x", "x@", "a/b@c", "a@b/c", ".a@b", "a.@b",
                                "a@.b", "a b@c", "a@b_c", std::string(250, 'a') + "@host"}) {
    std::string quoted = QuoteForMessage(owner);
    TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                     "Invalid owner " + quoted + ": expected an e-mail-like name",
                     ValidateOwner(owner));
  }
}

TEST(ValidateVersionTest, WantsLowercaseHex) {
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid UDF version 'ABC': expected 32 lowercase hex characters",
                   ValidateVersion("ABC"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF version",
                   ValidateVersion(std::string(32, 'g')));
  TF_ASSERT_OK(ValidateVersion(std::string(32, 'f')));
}

TEST(ValidateUdfSpecTest, NamesTheFault) {
  TF_ASSERT_OK(ValidateUdfSpec(Sample()));
  UdfSpec spec = Sample();
  spec.entrypoint = "my udf";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid entrypoint 'my udf' of UDF 'Sample': expected a Python function name",
                   ValidateUdfSpec(spec));
  spec = Sample();
  spec.code = "";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "UDF 'Sample' has no code", ValidateUdfSpec(spec));
  spec = Sample();
  spec.code = "x = '\xff'";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Code of UDF 'Sample' is not valid UTF-8",
                   ValidateUdfSpec(spec));
  spec = Sample();
  spec.headers = {{"Sample", "x = 1"}};
  TF_ASSERT_RAISES(
      ErrorKind::kInvalidArgument,
      "Header module 'Sample' of UDF 'Sample' clashes with the UDF's own source file 'Sample.py'",
      ValidateUdfSpec(spec));
  spec = Sample();
  spec.headers = {{"utils", ""}, {"utils", ""}};
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Header module 'utils' appears twice in UDF 'Sample'", ValidateUdfSpec(spec));
  spec = Sample();
  spec.headers = {{"my.utils", ""}};
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid header module name 'my.utils' of UDF 'Sample'", ValidateUdfSpec(spec));
  spec = Sample();
  spec.headers = {{"utils", "\xc3"}};
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Source of header module 'utils' of UDF 'Sample' is not valid UTF-8",
                   ValidateUdfSpec(spec));
  spec = Sample();
  spec.metadata_json = "[1, 2]";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid metadata of UDF 'Sample': expected a JSON object, got an array",
                   ValidateUdfSpec(spec));
  spec = Sample();
  spec.parameters_json = "{\"n\": ";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid parameters of UDF 'Sample': not valid JSON", ValidateUdfSpec(spec));
  spec = Sample();
  spec.name = "bad name";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid UDF name 'bad name'",
                   ValidateUdfSpec(spec));
}

}  // namespace
}  // namespace terrafuse::udf
