#include "terrafuse/udf/meta_json.h"

#include <cstdio>
#include <unordered_map>
#include <utility>

#include <simdjson.h>

namespace terrafuse::udf {

namespace dom = simdjson::dom;

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
  /// Writes a value that is already JSON text (minified by simdjson).
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

const char* TypeName(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY: return "an array";
    case dom::element_type::OBJECT: return "an object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE: return "a number";
    case dom::element_type::STRING: return "a string";
    case dom::element_type::BOOL: return "a boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "a value";
}

Result<dom::element> Parse(dom::parser& parser, const simdjson::padded_string& padded,
                           std::string_view what) {
  dom::element root;
  if (auto error = parser.parse(padded).get(root)) {
    return InvalidArgument("Invalid ", what, ": not valid JSON (", simdjson::error_message(error),
                           ")");
  }
  return root;
}

// Returns the members of a JSON object as (key, minified value) pairs, keeping the first
// position and the last value of a repeated key (as Python's json.loads does).
Result<std::vector<std::pair<std::string, std::string>>> ObjectMembers(std::string_view text,
                                                                       std::string_view what) {
  std::vector<std::pair<std::string, std::string>> members;
  if (text.empty()) return members;
  dom::parser parser;
  simdjson::padded_string padded(text);
  ARROW_ASSIGN_OR_RAISE(dom::element root, Parse(parser, padded, what));
  dom::object object;
  if (root.get_object().get(object)) {
    return InvalidArgument("Invalid ", what, ": expected a JSON object, got ",
                           TypeName(root.type()));
  }
  std::unordered_map<std::string_view, size_t> index;  // views into the parser's strings
  for (dom::key_value_pair field : object) {
    auto [it, inserted] = index.emplace(field.key, members.size());
    if (inserted) {
      members.emplace_back(std::string(field.key), simdjson::minify(field.value));
    } else {
      members[it->second].second = simdjson::minify(field.value);
    }
  }
  return members;
}

}  // namespace

bool IsValidUtf8(std::string_view text) {
  return simdjson::validate_utf8(text.data(), text.size());
}

void AppendJsonString(std::string* out, std::string_view value) {
  static const char* kHex = "0123456789abcdef";
  out->reserve(out->size() + value.size() + 2);
  *out += '"';
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          *out += "\\u00";
          *out += kHex[u >> 4];
          *out += kHex[u & 15];
        } else {
          *out += c;  // UTF-8 passes through: callers validate it
        }
    }
  }
  *out += '"';
}

Result<std::string> NormalizeJsonObject(std::string_view text, std::string_view what) {
  if (text.empty()) return std::string("{}");
  dom::parser parser;
  simdjson::padded_string padded(text);
  ARROW_ASSIGN_OR_RAISE(dom::element root, Parse(parser, padded, what));
  if (root.type() != dom::element_type::OBJECT) {
    return InvalidArgument("Invalid ", what, ": expected a JSON object, got ",
                           TypeName(root.type()));
  }
  return simdjson::minify(root);
}

std::string JsonStringMember(std::string_view object_json, std::string_view key) {
  dom::parser parser;
  simdjson::padded_string padded(object_json);
  dom::element root;
  std::string_view value;
  if (parser.parse(padded).get(root) || root[key].get_string().get(value)) return "";
  return std::string(value);
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
  dom::parser parser;
  simdjson::padded_string padded(text);
  dom::element root;
  if (auto error = parser.parse(padded).get(root)) {
    return InvalidArgument(prefix, "not JSON (", simdjson::error_message(error), ")");
  }
  dom::object job_config;
  if (root["job_config"].get_object().get(job_config)) {
    return InvalidArgument(prefix, "missing 'job_config'");
  }
  dom::array steps;
  if (job_config["steps"].get_array().get(steps)) {
    return InvalidArgument(prefix, "job_config.steps must hold exactly 1 step, found none");
  }
  if (steps.size() != 1) {
    return InvalidArgument(prefix, "job_config.steps must hold exactly 1 step, found ",
                           steps.size());
  }
  dom::object step;
  dom::element step_type;
  std::string_view step_type_name;
  if (steps.at(0).get_object().get(step)) {
    return InvalidArgument(prefix, "the step must be an object, got ",
                           TypeName(steps.at(0).value_unsafe().type()));
  }
  if (step["type"].get(step_type)) {
    return InvalidArgument(prefix, "the step type must be 'udf', got none");
  }
  if (step_type.get_string().get(step_type_name) || step_type_name != "udf") {
    return InvalidArgument(prefix, "the step type must be 'udf', got ",
                           simdjson::minify(step_type));
  }
  dom::object udf;
  if (step["udf"].get_object().get(udf)) {
    return InvalidArgument(prefix, "the step has no 'udf' object");
  }

  // Optional string members: absent or null mean "not given".
  auto optional_string = [&](dom::object object, std::string_view key,
                             std::string_view where) -> Result<std::optional<std::string>> {
    dom::element value;
    if (object[key].get(value) || value.is_null()) return std::nullopt;
    std::string_view s;
    if (value.get_string().get(s)) {
      return InvalidArgument(prefix, where, key, " must be a string, got ", TypeName(value.type()));
    }
    return std::string(s);
  };
  auto optional_object = [&](std::string_view key) -> Result<std::string> {
    dom::element value;
    if (udf[key].get(value) || value.is_null()) return std::string("{}");
    if (!value.is_object()) {
      return InvalidArgument(prefix, "udf.", key, " must be an object, got ",
                             TypeName(value.type()));
    }
    return simdjson::minify(value);
  };

  MetaJsonUdf out;
  ARROW_ASSIGN_OR_RAISE(auto type, optional_string(udf, "type", "udf."));
  if (type && *type != kUdfType) {
    return InvalidArgument(prefix, "unsupported UDF type '", *type, "' (expected '", kUdfType,
                           "')");
  }
  ARROW_ASSIGN_OR_RAISE(auto name, optional_string(udf, "name", "udf."));
  out.name = name.value_or("");
  ARROW_ASSIGN_OR_RAISE(auto entrypoint, optional_string(udf, "entrypoint", "udf."));
  out.entrypoint = entrypoint.value_or("udf");
  ARROW_ASSIGN_OR_RAISE(out.code, optional_string(udf, "code", "udf."));
  ARROW_ASSIGN_OR_RAISE(out.source, optional_string(udf, "source", "udf."));
  if (!out.code && (!out.source || out.source->empty())) {
    return InvalidArgument(prefix, "the udf has neither 'source' nor 'code'");
  }
  ARROW_ASSIGN_OR_RAISE(out.metadata_json, optional_object("metadata"));
  ARROW_ASSIGN_OR_RAISE(out.parameters_json, optional_object("parameters"));

  dom::element headers;
  if (!udf["headers"].get(headers) && !headers.is_null()) {
    dom::array list;
    if (headers.get_array().get(list)) {
      return InvalidArgument(prefix, "udf.headers must be a list, got ", TypeName(headers.type()));
    }
    for (dom::element item : list) {
      dom::object header;
      std::string_view module_name;
      if (item.get_object().get(header) || header["module_name"].get_string().get(module_name)) {
        return InvalidArgument(prefix, "each header needs a 'module_name'");
      }
      MetaJsonHeader h;
      h.module_name = std::string(module_name);
      ARROW_ASSIGN_OR_RAISE(h.source_code, optional_string(header, "source_code", "header."));
      ARROW_ASSIGN_OR_RAISE(h.source_file, optional_string(header, "source_file", "header."));
      out.headers.push_back(std::move(h));
    }
  }
  return out;
}

}  // namespace terrafuse::udf
