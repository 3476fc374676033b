#include "terrafuse/udf/udf_folder.h"

#include <sys/stat.h>

#include <set>

#include <gtest/gtest.h>

#include "terrafuse/common/json_reader.h"
#include "terrafuse/udf/meta_json.h"
#include "terrafuse/udf/udf_test_util.h"

namespace terrafuse::udf {
namespace {

namespace fs = std::filesystem;
using testing::ReadText;
using testing::TempDirTest;
using testing::WriteText;

UdfSpec Sample() {
  UdfSpec spec;
  spec.name = "Sample_UDF";
  spec.code = "@fused.udf\ndef udf(n: int = 3):\n    import utils\n    return utils.double(n)\n";
  spec.headers = {{"utils", "def double(x):\n    return 2 * x\n"}};
  spec.metadata_json =
      R"({"fused:description": "Doubles \"n\"\nsecond line", "fused:udfType": "vector_single"})";
  return spec;
}

std::set<std::string> Keys(const JsonValue& object) {
  EXPECT_TRUE(object.IsObject()) << MinifyJson(object);
  std::set<std::string> keys;
  for (const auto& [key, value] : object.members) keys.insert(key);
  return keys;
}

// The member `key` of `object`; a missing one fails the test and reads as null.
const JsonValue& At(const JsonValue& object, std::string_view key) {
  static const JsonValue kMissing;
  const JsonValue* value = object.Find(key);
  EXPECT_NE(value, nullptr) << "no member '" << key << "' in " << MinifyJson(object);
  return value ? *value : kMissing;
}

// The only item of an array; anything else fails the test and reads as null.
const JsonValue& Only(const JsonValue& array) {
  static const JsonValue kMissing;
  EXPECT_EQ(array.items.size(), 1u) << MinifyJson(array);
  return array.items.size() == 1 ? array.items[0] : kMissing;
}

std::string Str(const JsonValue& e) {
  EXPECT_TRUE(e.IsString()) << MinifyJson(e);
  return e.string;
}

bool IsNull(const JsonValue& e) { return e.type == JsonValue::Type::kNull; }

class UdfFolderTest : public TempDirTest {};

TEST_F(UdfFolderTest, MetaJsonIsExactlyTheCatalogSchema) {
  TF_ASSERT_OK_AND_ASSIGN(std::string text, WriteMetaJson(Sample()));
  TF_ASSERT_OK_AND_ASSIGN(JsonValue root, ParseJson(text));

  EXPECT_EQ(Keys(root), (std::set<std::string>{"version", "job_config"}));
  EXPECT_EQ(Str(At(root, "version")), "0.0.3");
  const JsonValue& job = At(root, "job_config");
  EXPECT_EQ(Keys(job), (std::set<std::string>{"version", "name", "steps", "metadata"}));
  EXPECT_EQ(Str(At(job, "version")), "0.0.3");
  EXPECT_TRUE(IsNull(At(job, "name")));
  EXPECT_TRUE(IsNull(At(job, "metadata")));
  const JsonValue& step = Only(At(job, "steps"));
  EXPECT_EQ(Keys(step), (std::set<std::string>{"type", "udf"}));
  EXPECT_EQ(Str(At(step, "type")), "udf");

  const JsonValue& udf = At(step, "udf");
  EXPECT_EQ(Keys(udf), (std::set<std::string>{"type", "name", "entrypoint", "parameters",
                                              "metadata", "source", "headers"}));
  EXPECT_EQ(Str(At(udf, "type")), "geopandas_v2");
  EXPECT_EQ(Str(At(udf, "name")), "Sample_UDF");
  EXPECT_EQ(Str(At(udf, "entrypoint")), "udf");
  EXPECT_EQ(MinifyJson(At(udf, "parameters")), "{}");
  EXPECT_EQ(Str(At(udf, "source")), "Sample_UDF.py");
  const JsonValue& header = Only(At(udf, "headers"));
  EXPECT_EQ(Keys(header), (std::set<std::string>{"module_name", "source_file"}));
  EXPECT_EQ(Str(At(header, "module_name")), "utils");
  EXPECT_EQ(Str(At(header, "source_file")), "utils.py");

  // Defaults as Udf.meta_json() writes them, updated with the UDF's own metadata.
  const JsonValue& metadata = At(udf, "metadata");
  EXPECT_EQ(Keys(metadata), (std::set<std::string>{"fused:name", "fused:slug", "fused:udfType",
                                                   "fused:id", "fused:description"}));
  EXPECT_EQ(Str(At(metadata, "fused:name")), "Sample_UDF");
  EXPECT_EQ(Str(At(metadata, "fused:slug")), "Sample_UDF");
  EXPECT_EQ(Str(At(metadata, "fused:udfType")), "vector_single");
  EXPECT_TRUE(IsNull(At(metadata, "fused:id")));
  EXPECT_EQ(Str(At(metadata, "fused:description")), "Doubles \"n\"\nsecond line");
}

TEST_F(UdfFolderTest, MetaJsonIsIndentedLikePython) {
  UdfSpec spec;
  spec.name = "Tiny";
  spec.code = "x";
  TF_ASSERT_OK_AND_ASSIGN(std::string text, WriteMetaJson(spec));
  // json.dumps(Udf(name="Tiny", code="x").meta_json(), indent=4) + "\n"
  const char* expected = R"({
    "version": "0.0.3",
    "job_config": {
        "version": "0.0.3",
        "name": null,
        "steps": [
            {
                "type": "udf",
                "udf": {
                    "type": "geopandas_v2",
                    "name": "Tiny",
                    "entrypoint": "udf",
                    "parameters": {},
                    "metadata": {
                        "fused:name": "Tiny",
                        "fused:slug": "Tiny",
                        "fused:udfType": "auto",
                        "fused:id": null
                    },
                    "source": "Tiny.py",
                    "headers": []
                }
            }
        ],
        "metadata": null
    }
}
)";
  EXPECT_EQ(text, expected);
}

TEST_F(UdfFolderTest, EscapesEveryString) {
  UdfSpec spec = Sample();
  std::string nasty =
      std::string("q\"b\\s/\b\f\n\r\t") + '\x01' + '\x1f' + '\x7f' + "\xc3\xa9\xe2\x9c\x93";
  std::string key = "k\"\n" + nasty;
  std::string metadata = "{";
  AppendJsonString(&metadata, key);
  metadata += ": ";
  AppendJsonString(&metadata, nasty);
  metadata += ", \"list\": [1, 2.5, null, true, \"\\u2028\"]}";
  spec.metadata_json = metadata;
  TF_ASSERT_OK_AND_ASSIGN(std::string text, WriteMetaJson(spec));
  for (char c : text) {
    if (c != '\n') {
      EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character in meta.json";
    }
  }
  ASSERT_TRUE(IsValidUtf8(text));
  TF_ASSERT_OK_AND_ASSIGN(JsonValue root, ParseJson(text));
  const JsonValue& md = At(At(Only(At(At(root, "job_config"), "steps")), "udf"), "metadata");
  EXPECT_EQ(Str(At(md, key)), nasty);
  EXPECT_EQ(MinifyJson(At(md, "list")), "[1,2.5,null,true,\"\xe2\x80\xa8\"]");
}

TEST_F(UdfFolderTest, MetadataKeepsNumbersAsWrittenAndTheLastOfARepeatedKey) {
  // Numbers are copied, not reformatted, so every value round-trips exactly.
  TF_ASSERT_OK_AND_ASSIGN(
      std::string normal,
      NormalizeJsonObject(R"({ "a" : [1.0, 1e2, -0, 0.1, 12345678901234567890123] })", "x"));
  EXPECT_EQ(normal, R"({"a":[1.0,1e2,-0,0.1,12345678901234567890123]})");

  UdfSpec spec = Sample();
  spec.metadata_json = R"({"k": 1, "fused:udfType": "a", "k": 2.50})";
  TF_ASSERT_OK_AND_ASSIGN(std::string text, WriteMetaJson(spec));
  TF_ASSERT_OK_AND_ASSIGN(JsonValue root, ParseJson(text));
  const JsonValue& md = At(At(Only(At(At(root, "job_config"), "steps")), "udf"), "metadata");
  EXPECT_EQ(MinifyJson(md),
            R"({"fused:name":"Sample_UDF","fused:slug":"Sample_UDF","fused:udfType":"a",)"
            R"("fused:id":null,"k":2.50})");
}

TEST_F(UdfFolderTest, MetadataMustBeUtf8Json) {
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid x: not valid JSON (not valid UTF-8)",
                   NormalizeJsonObject("{\"a\": \"\xc3\"}", "x"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid x: not valid JSON (invalid JSON at byte 6: bad number)",
                   NormalizeJsonObject(R"({"a": 01})", "x"));
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid x: not valid JSON (invalid JSON at byte 13: unpaired surrogate)",
                   NormalizeJsonObject(R"({"a": "\ud800"})", "x"));
  const std::string d = (dir_ / "U").string();
  WriteText(dir_ / "U" / "meta.json", "{\"job_config\": \"\xff\"}");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "Invalid meta.json in '" + d + "': not JSON (not valid UTF-8)",
                   ReadUdfFolder(d));
}

TEST_F(UdfFolderTest, WritesTheFolderFiles) {
  const std::string dir = (dir_ / "Sample_UDF").string();
  TF_ASSERT_OK(WriteUdfFolder(Sample(), dir));
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  EXPECT_EQ(names, (std::set<std::string>{"Sample_UDF.py", "utils.py", "meta.json", "README.MD"}));
  EXPECT_EQ(ReadText(dir + "/Sample_UDF.py"), Sample().code);
  EXPECT_EQ(ReadText(dir + "/utils.py"), Sample().headers[0].source_code);
  EXPECT_EQ(ReadText(dir + "/README.MD"), "<!--fused:readme-->\nDoubles \"n\"\nsecond line\n");
  // Nothing left beside it.
  size_t siblings = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++siblings;
  EXPECT_EQ(siblings, 1u);
}

TEST_F(UdfFolderTest, ReadsBackWhatItWrote) {
  const std::string dir = (dir_ / "Sample_UDF").string();
  UdfSpec spec = Sample();
  spec.parameters_json = R"({"n": 5})";
  TF_ASSERT_OK(WriteUdfFolder(spec, dir));
  TF_ASSERT_OK_AND_ASSIGN(UdfSpec back, ReadUdfFolder(dir));
  EXPECT_EQ(back.name, spec.name);
  EXPECT_EQ(back.code, spec.code);
  EXPECT_EQ(back.entrypoint, spec.entrypoint);
  EXPECT_EQ(back.headers, spec.headers);
  EXPECT_EQ(back.parameters_json, R"({"n":5})");
  EXPECT_EQ(JsonStringMember(back.metadata_json, "fused:udfType"), "vector_single");
  EXPECT_EQ(JsonStringMember(back.metadata_json, "fused:name"), "Sample_UDF");
  EXPECT_EQ(UdfVersion(back), UdfVersion(spec));
  // Reading the folder back and writing it again changes nothing.
  TF_ASSERT_OK_AND_ASSIGN(std::string again, WriteMetaJson(back));
  EXPECT_EQ(again, ReadText(dir + "/meta.json"));
}

TEST_F(UdfFolderTest, IdenticalFolderIsReusedAndChangedOneReplaced) {
  const std::string dir = (dir_ / "Sample_UDF").string();
  TF_ASSERT_OK(WriteUdfFolder(Sample(), dir));
  struct stat before, after;
  ASSERT_EQ(::stat((dir + "/meta.json").c_str(), &before), 0);
  TF_ASSERT_OK(WriteUdfFolder(Sample(), dir));
  ASSERT_EQ(::stat((dir + "/meta.json").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "an identical folder must not be rewritten";

  UdfSpec changed = Sample();
  changed.metadata_json = R"({"fused:description": "new"})";
  TF_ASSERT_OK(WriteUdfFolder(changed, dir));
  EXPECT_EQ(ReadText(dir + "/README.MD"), "<!--fused:readme-->\nnew\n");
  TF_ASSERT_OK_AND_ASSIGN(UdfSpec back, ReadUdfFolder(dir));
  EXPECT_EQ(JsonStringMember(back.metadata_json, "fused:description"), "new");
  size_t siblings = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_)) ++siblings;
  EXPECT_EQ(siblings, 1u) << "the temporary and the replaced folders are removed";
}

TEST_F(UdfFolderTest, InvalidSpecWritesNothing) {
  UdfSpec spec = Sample();
  spec.metadata_json = "[]";
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid metadata of UDF 'Sample_UDF'",
                   WriteUdfFolder(spec, (dir_ / "x").string()));
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

// A folder as the public catalog has them, written by hand.
void WriteMeta(const fs::path& dir, const std::string& udf_members,
               const std::string& steps_extra = "") {
  WriteText(dir / "meta.json",
            R"({"version": "0.0.3", "job_config": {"version": "0.0.3", "name": null,
      "steps": [{"type": "udf", "udf": {"type": "geopandas_v2", )" +
                udf_members + "}}" + steps_extra + "], \"metadata\": null}}");
}

TEST_F(UdfFolderTest, ReadFollowsTheLoaderRules) {
  // Inline code and inline header source; the name falls back to the folder's.
  fs::path a = dir_ / "Inline";
  WriteMeta(
      a,
      R"("code": "def udf():\n    return 1\n", "headers": [{"module_name": "h", "source_code": "x = 1"}])");
  TF_ASSERT_OK_AND_ASSIGN(UdfSpec spec, ReadUdfFolder(a.string()));
  EXPECT_EQ(spec.name, "Inline");
  EXPECT_EQ(spec.code, "def udf():\n    return 1\n");
  EXPECT_EQ(spec.entrypoint, "udf");
  EXPECT_EQ(spec.headers, (std::vector<UdfHeader>{{"h", "x = 1"}}));
  EXPECT_EQ(spec.metadata_json, "{}");

  // source, and a header whose file name defaults to <module>.py.
  fs::path b = dir_ / "B";
  WriteMeta(
      b,
      R"("name": "Named", "source": "Named.py", "metadata": {"a": 1}, "headers": [{"module_name": "utils"}])");
  WriteText(b / "Named.py", "code");
  WriteText(b / "utils.py", "helpers");
  TF_ASSERT_OK_AND_ASSIGN(spec, ReadUdfFolder(b.string()));
  EXPECT_EQ(spec.name, "Named");
  EXPECT_EQ(spec.code, "code");
  EXPECT_EQ(spec.headers, (std::vector<UdfHeader>{{"utils", "helpers"}}));
  EXPECT_EQ(spec.metadata_json, R"({"a":1})");
}

TEST_F(UdfFolderTest, ReadErrorsNameTheFolderAndFault) {
  const std::string d = (dir_ / "U").string();
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "Cannot load UDF from '" + d + "': no meta.json",
                   ReadUdfFolder(d));

  WriteText(dir_ / "U" / "meta.json", "{not json");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "Invalid meta.json in '" + d + "': not JSON",
                   ReadUdfFolder(d));
  WriteText(dir_ / "U" / "meta.json", "{}");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "missing 'job_config'", ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("code": "x")", R"(, {"type": "udf", "udf": {}})");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "job_config.steps must hold exactly 1 step, found 2", ReadUdfFolder(d));
  WriteText(dir_ / "U" / "meta.json", R"({"job_config": {"steps": [{"type": "map", "udf": {}}]}})");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "the step type must be 'udf', got \"map\"",
                   ReadUdfFolder(d));
  WriteText(dir_ / "U" / "meta.json", R"({"job_config": {"steps": [{"type": "udf"}]}})");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "the step has no 'udf' object", ReadUdfFolder(d));
  WriteText(
      dir_ / "U" / "meta.json",
      R"({"job_config": {"steps": [{"type": "udf", "udf": {"type": "vector", "code": "x"}}]}})");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "unsupported UDF type 'vector' (expected 'geopandas_v2')", ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U")");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "the udf has neither 'source' nor 'code'",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U", "source": "U.py")");
  TF_ASSERT_RAISES(ErrorKind::kNotFound,
                   "Cannot load UDF 'U' from '" + d + "': its source file 'U.py' is missing",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U", "source": "../../etc/passwd")");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument,
                   "source file '../../etc/passwd' must be a file name inside the folder",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U", "code": "x", "headers": [{"module_name": "utils"}])");
  TF_ASSERT_RAISES(ErrorKind::kNotFound, "its header module file 'utils.py' is missing",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U", "code": "x", "headers": [{"source_file": "utils.py"}])");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "each header needs a 'module_name'",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": "U", "code": "x", "metadata": [1])");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "udf.metadata must be an object, got an array",
                   ReadUdfFolder(d));
  WriteMeta(dir_ / "U", R"("name": 7, "code": "x")");
  TF_ASSERT_RAISES(ErrorKind::kInvalidArgument, "udf.name must be a string, got a number",
                   ReadUdfFolder(d));
}

}  // namespace
}  // namespace terrafuse::udf
