#include "terrafuse/udf/meta_json.h"

#include <cstdint>
#include <unordered_map>
#include <utility>

namespace terrafuse::udf {

namespace {

// Writes JSON with 4-space indentation, the layout of Python's json.dumps(indent=4), so a
// folder written here reads like one written by `Udf.to_directory`.
class JsonWriter {
 public:
  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  void Key(std::string_view key) {
    NewEntry();
    AppendJsonString(&out_, key);
    out_ += ": ";
    after_key_ = true;
  }
  void String(std::string_view value) {
    BeforeValue();
    AppendJsonString(&out_, value);
  }
  void Null() { Raw("null"); }
  /// Writes a value that is already JSON text (minified by MinifyJson).
  void Raw(std::string_view json) {
    BeforeValue();
    out_ += json;
  }
  std::string Finish() { return std::move(out_) + "\n"; }

 private:
  void NewEntry() {
    if (counts_.empty()) return;
    if (counts_.back()++ > 0) out_ += ',';
    out_ += '\n';
    out_.append(4 * counts_.size(), ' ');
  }
  void BeforeValue() {
    if (after_key_) {
      after_key_ = false;
    } else {
      NewEntry();
    }
  }
  void Open(char bracket) {
    BeforeValue();
    out_ += bracket;
    counts_.push_back(0);
  }
  void Close(char bracket) {
    bool empty = counts_.back() == 0;
    counts_.pop_back();
    if (!empty) {
      out_ += '\n';
      out_.append(4 * counts_.size(), ' ');
    }
    out_ += bracket;
  }

  std::string out_;
  std::vector<int> counts_;  // entries written so far in each open container
  bool after_key_ = false;
};

const char* TypeName(const JsonValue& value) {
  switch (value.type) {
    case JsonValue::Type::kArray: return "an array";
    case JsonValue::Type::kObject: return "an object";
    case JsonValue::Type::kNumber: return "a number";
    case JsonValue::Type::kString: return "a string";
    case JsonValue::Type::kBool: return "a boolean";
    case JsonValue::Type::kNull: return "null";
  }
  return "a value";
}

// Parses `text` as a JSON document in UTF-8 (as Python's json.loads reads a file); the error
// says why it is not one, for the caller to name the document.
Result<JsonValue> ParseUtf8Json(std::string_view text) {
  if (!IsValidUtf8(text)) return InvalidArgument("not valid UTF-8");
  return ParseJson(text);
}

Result<JsonValue> ParseObject(std::string_view text, std::string_view what) {
  Result<JsonValue> root = ParseUtf8Json(text);
  if (!root.ok()) {
    return InvalidArgument("Invalid ", what, ": not valid JSON (", root.status().message(), ")");
  }
  if (!root->IsObject()) {
    return InvalidArgument("Invalid ", what, ": expected a JSON object, got ", TypeName(*root));
  }
  return root;
}

// Returns the members of a JSON object as (key, minified value) pairs, keeping the first
// position and the last value of a repeated key (as Python's json.loads does).
Result<std::vector<std::pair<std::string, std::string>>> ObjectMembers(std::string_view text,
                                                                       std::string_view what) {
  std::vector<std::pair<std::string, std::string>> members;
  if (text.empty()) return members;
  ARROW_ASSIGN_OR_RAISE(JsonValue root, ParseObject(text, what));
  std::unordered_map<std::string_view, size_t> index;  // views into root's keys
  for (const auto& [key, value] : root.members) {
    auto [it, inserted] = index.emplace(key, members.size());
    if (inserted) {
      members.emplace_back(key, MinifyJson(value));
    } else {
      members[it->second].second = MinifyJson(value);
    }
  }
  return members;
}

}  // namespace

Result<std::string> NormalizeJsonObject(std::string_view text, std::string_view what) {
  if (text.empty()) return std::string("{}");
  ARROW_ASSIGN_OR_RAISE(JsonValue root, ParseObject(text, what));
  return MinifyJson(root);
}

std::string JsonStringMember(std::string_view object_json, std::string_view key) {
  Result<JsonValue> root = ParseJson(object_json);
  const JsonValue* value = root.ok() ? root->Find(key) : nullptr;
  return value && value->IsString() ? value->string : "";
}

Result<std::string> WriteMetaJson(const UdfSpec& spec) {
  const std::string what = "metadata of UDF '" + spec.name + "'";
  ARROW_ASSIGN_OR_RAISE(auto user_metadata, ObjectMembers(spec.metadata_json, what));
  ARROW_ASSIGN_OR_RAISE(
      std::string parameters,
      NormalizeJsonObject(spec.parameters_json, "parameters of UDF '" + spec.name + "'"));
  std::string quoted_name;
  AppendJsonString(&quoted_name, spec.name);
  // Defaults first, then the UDF's own keys: Python's `{defaults}.update(metadata)`.
  std::vector<std::pair<std::string, std::string>> metadata = {
      {"fused:name", quoted_name},
      {"fused:slug", quoted_name},
      {"fused:udfType", "\"auto\""},
      {"fused:id", "null"},
  };
  for (auto& [key, value] : user_metadata) {
    bool replaced = false;
    for (auto& [default_key, default_value] : metadata) {
      if (default_key == key) {
        default_value = value;
        replaced = true;
      }
    }
    if (!replaced) metadata.emplace_back(key, value);
  }

  JsonWriter w;
  w.BeginObject();
  w.Key("version");
  w.String(kMetaJsonVersion);
  w.Key("job_config");
  w.BeginObject();
  w.Key("version");
  w.String(kMetaJsonVersion);
  w.Key("name");
  w.Null();
  w.Key("steps");
  w.BeginArray();
  w.BeginObject();
  w.Key("type");
  w.String("udf");
  w.Key("udf");
  w.BeginObject();
  w.Key("type");
  w.String(kUdfType);
  w.Key("name");
  w.String(spec.name);
  w.Key("entrypoint");
  w.String(spec.entrypoint);
  w.Key("parameters");
  w.Raw(parameters);
  w.Key("metadata");
  w.BeginObject();
  for (const auto& [key, value] : metadata) {
    w.Key(key);
    w.Raw(value);
  }
  w.EndObject();
  w.Key("source");
  w.String(spec.name + ".py");
  w.Key("headers");
  w.BeginArray();
  for (const UdfHeader& header : spec.headers) {
    w.BeginObject();
    w.Key("module_name");
    w.String(header.module_name);
    w.Key("source_file");
    w.String(header.module_name + ".py");
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();  // udf
  w.EndObject();  // step
  w.EndArray();   // steps
  w.Key("metadata");
  w.Null();
  w.EndObject();  // job_config
  w.EndObject();
  return w.Finish();
}

Result<MetaJsonUdf> ParseMetaJson(std::string_view text, std::string_view origin) {
  const std::string prefix = "Invalid meta.json in '" + std::string(origin) + "': ";
  Result<JsonValue> parsed = ParseUtf8Json(text);
  if (!parsed.ok()) return InvalidArgument(prefix, "not JSON (", parsed.status().message(), ")");
  const JsonValue& root = *parsed;
  const JsonValue* job_config = root.Find("job_config");
  if (!job_config || !job_config->IsObject()) {
    return InvalidArgument(prefix, "missing 'job_config'");
  }
  const JsonValue* steps = job_config->Find("steps");
  if (!steps || steps->type != JsonValue::Type::kArray) {
    return InvalidArgument(prefix, "job_config.steps must hold exactly 1 step, found none");
  }
  if (steps->items.size() != 1) {
    return InvalidArgument(prefix, "job_config.steps must hold exactly 1 step, found ",
                           steps->items.size());
  }
  const JsonValue& step = steps->items[0];
  if (!step.IsObject()) {
    return InvalidArgument(prefix, "the step must be an object, got ", TypeName(step));
  }
  const JsonValue* step_type = step.Find("type");
  if (!step_type) return InvalidArgument(prefix, "the step type must be 'udf', got none");
  if (!step_type->IsString() || step_type->string != "udf") {
    return InvalidArgument(prefix, "the step type must be 'udf', got ", MinifyJson(*step_type));
  }
  const JsonValue* udf = step.Find("udf");
  if (!udf || !udf->IsObject()) return InvalidArgument(prefix, "the step has no 'udf' object");

  // Optional string members: absent or null mean "not given".
  auto optional_string = [&](const JsonValue& object, std::string_view key,
                             std::string_view where) -> Result<std::optional<std::string>> {
    const JsonValue* value = object.Find(key);
    if (!value || value->type == JsonValue::Type::kNull) return std::nullopt;
    if (!value->IsString()) {
      return InvalidArgument(prefix, where, key, " must be a string, got ", TypeName(*value));
    }
    return value->string;
  };
  auto optional_object = [&](std::string_view key) -> Result<std::string> {
    const JsonValue* value = udf->Find(key);
    if (!value || value->type == JsonValue::Type::kNull) return std::string("{}");
    if (!value->IsObject()) {
      return InvalidArgument(prefix, "udf.", key, " must be an object, got ", TypeName(*value));
    }
    return MinifyJson(*value);
  };

  MetaJsonUdf out;
  ARROW_ASSIGN_OR_RAISE(auto type, optional_string(*udf, "type", "udf."));
  if (type && *type != kUdfType) {
    return InvalidArgument(prefix, "unsupported UDF type '", *type, "' (expected '", kUdfType,
                           "')");
  }
  ARROW_ASSIGN_OR_RAISE(auto name, optional_string(*udf, "name", "udf."));
  out.name = name.value_or("");
  ARROW_ASSIGN_OR_RAISE(auto entrypoint, optional_string(*udf, "entrypoint", "udf."));
  out.entrypoint = entrypoint.value_or("udf");
  ARROW_ASSIGN_OR_RAISE(out.code, optional_string(*udf, "code", "udf."));
  ARROW_ASSIGN_OR_RAISE(out.source, optional_string(*udf, "source", "udf."));
  if (!out.code && (!out.source || out.source->empty())) {
    return InvalidArgument(prefix, "the udf has neither 'source' nor 'code'");
  }
  ARROW_ASSIGN_OR_RAISE(out.metadata_json, optional_object("metadata"));
  ARROW_ASSIGN_OR_RAISE(out.parameters_json, optional_object("parameters"));

  const JsonValue* headers = udf->Find("headers");
  if (headers && headers->type != JsonValue::Type::kNull) {
    if (headers->type != JsonValue::Type::kArray) {
      return InvalidArgument(prefix, "udf.headers must be a list, got ", TypeName(*headers));
    }
    for (const JsonValue& item : headers->items) {
      const JsonValue* module_name = item.Find("module_name");
      if (!module_name || !module_name->IsString()) {
        return InvalidArgument(prefix, "each header needs a 'module_name'");
      }
      MetaJsonHeader h;
      h.module_name = module_name->string;
      ARROW_ASSIGN_OR_RAISE(h.source_code, optional_string(item, "source_code", "header."));
      ARROW_ASSIGN_OR_RAISE(h.source_file, optional_string(item, "source_file", "header."));
      out.headers.push_back(std::move(h));
    }
  }
  return out;
}

}  // namespace terrafuse::udf
