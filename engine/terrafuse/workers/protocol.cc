#include "terrafuse/workers/protocol.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <optional>

#include "terrafuse/common/json_reader.h"

namespace terrafuse::workers {

namespace {

constexpr size_t kScratchBytes = size_t{64} << 10;
// Payload remainders at least this large are read straight into the payload buffer.
constexpr int64_t kDirectReadBytes = int64_t{16} << 10;

void PutLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLittleEndian(const uint8_t* data, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | data[i];
  return value;
}

std::shared_ptr<arrow::Buffer> EmptyBuffer() {
  static const auto empty = std::make_shared<arrow::Buffer>(nullptr, 0);
  return empty;
}

std::string Printable(const uint8_t* data, size_t n) {
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    char c = static_cast<char>(data[i]);
    if (c >= 0x20 && c < 0x7f) {
      text.push_back(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", data[i]);
      text += hex;
    }
  }
  return text;
}

// Bytes per element of the dtypes a raster reply may carry; 0 for others.
int DtypeBytes(std::string_view dtype) {
  if (dtype == "bool" || dtype == "uint8" || dtype == "int8") return 1;
  if (dtype == "uint16" || dtype == "int16" || dtype == "float16") return 2;
  if (dtype == "uint32" || dtype == "int32" || dtype == "float32") return 4;
  if (dtype == "uint64" || dtype == "int64" || dtype == "float64") return 8;
  return 0;
}

// The string member `key` of `object`, or empty when it is missing or not a string.
std::string_view StringField(const JsonValue& object, std::string_view key) {
  const JsonValue* value = object.Find(key);
  return value && value->IsString() ? std::string_view(value->string) : std::string_view();
}

// Reads the raster fields of a reply and checks them against the payload's size.
Status ReadRaster(const JsonValue& header, int64_t payload_size, WorkerReply* reply) {
  const JsonValue* shape = header.Find("shape");
  if (!shape || shape->type != JsonValue::Type::kArray) {
    return Internal("Worker reply of kind 'raster' has no 'shape' array");
  }
  std::string_view dtype = StringField(header, "dtype");
  int item = DtypeBytes(dtype);
  if (item == 0) {
    return Internal("Worker reply of kind 'raster' has dtype '", dtype,
                    "': expected bool, (u)int8/16/32/64 or float16/32/64");
  }
  int64_t elements = 1;
  for (const JsonValue& dim : shape->items) {
    const double n = dim.number;
    if (dim.type != JsonValue::Type::kNumber || n < 0 || n != std::floor(n) || n > 0x1p53) {
      return Internal("Worker reply of kind 'raster' has shape ", shape->raw,
                      ": expected non-negative integers");
    }
    const auto d = static_cast<int64_t>(n);
    if (d != 0 && elements > (int64_t{1} << 40) / d) {
      return Internal("Worker reply of kind 'raster' has an impossible shape ", shape->raw);
    }
    elements *= d;
    reply->shape.push_back(d);
  }
  if (elements * item != payload_size) {
    return Internal("Worker reply of kind 'raster' has shape ", shape->raw, " and dtype '", dtype,
                    "' (", elements * item, " bytes) but a payload of ", payload_size, " bytes");
  }
  reply->dtype = dtype;
  const JsonValue* bounds = header.Find("bounds");
  if (bounds && bounds->items.size() == 4 &&
      std::all_of(bounds->items.begin(), bounds->items.end(), [](const JsonValue& v) {
        return v.type == JsonValue::Type::kNumber && std::isfinite(v.number);
      })) {
    reply->bounds = {bounds->items[0].number, bounds->items[1].number, bounds->items[2].number,
                     bounds->items[3].number};
  }
  return Status::OK();
}

void AppendDouble(double value, std::string* out) {
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof(text), value);
  out->append(text, end);
}

// A reply header of the common shape, read without building a JSON tree (DecodeReply runs
// on every call): a flat object whose values are strings without escapes, numbers, true,
// false or null. Anything else (a failure's "error" object, a raster's "shape", an escaped
// string in captured output) is left to ParseJson: Read returns false, having decided
// nothing, and the general path accepts or refuses it.
struct FlatValue {
  JsonValue::Type type = JsonValue::Type::kNull;
  std::string_view text;  // a string's contents
  double number = 0;
  bool boolean = false;
};

class FlatReply {
 public:
  using Value = FlatValue;

  bool Read(std::string_view json) {
    p_ = json.data();
    end_ = p_ + json.size();
    Space();
    if (!Take('{')) return false;
    Space();
    if (Take('}')) return Done();
    while (true) {
      if (size_ == kMaxMembers) return false;
      auto& [key, value] = members_[size_];
      Space();
      if (!String(&key)) return false;
      Space();
      if (!Take(':')) return false;
      Space();
      if (!Scalar(&value)) return false;
      ++size_;
      Space();
      if (Take('}')) return Done();
      if (!Take(',')) return false;
    }
  }

  // The first member called `key` (as JsonValue::Find), or null.
  const Value* Find(std::string_view key) const {
    for (size_t i = 0; i < size_; ++i) {
      if (members_[i].first == key) return &members_[i].second;
    }
    return nullptr;
  }
  std::string_view StringOf(std::string_view key) const {
    const Value* value = Find(key);
    return value && value->type == JsonValue::Type::kString ? value->text : std::string_view();
  }

 private:
  static constexpr size_t kMaxMembers = 16;

  bool Done() {
    Space();
    return p_ == end_;
  }
  void Space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool Take(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  bool String(std::string_view* out) {
    if (!Take('"')) return false;
    const char* start = p_;
    while (p_ < end_ && *p_ != '"') {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '\\' || c < 0x20) return false;  // escapes and control characters: ParseJson's
      ++p_;
    }
    if (p_ == end_) return false;
    *out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }
  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }
  bool Scalar(Value* out) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '"':
        out->type = JsonValue::Type::kString;
        return String(&out->text);
      case 't':
        out->type = JsonValue::Type::kBool;
        out->boolean = true;
        return Literal("true");
      case 'f':
        out->type = JsonValue::Type::kBool;
        out->boolean = false;
        return Literal("false");
      case 'n':
        out->type = JsonValue::Type::kNull;
        return Literal("null");
      default:
        out->type = JsonValue::Type::kNumber;
        return Number(&out->number);
    }
  }
  // RFC 8259's number grammar, then the value (a number beyond a double is ParseJson's).
  bool Number(double* out) {
    const char* start = p_;
    auto digits = [&] {
      const char* from = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ > from;
    };
    Take('-');
    if (Take('0')) {
    } else if (!digits()) {
      return false;
    }
    if (Take('.') && !digits()) return false;
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (!Take('+')) Take('-');
      if (!digits()) return false;
    }
    auto [stop, error] = std::from_chars(start, p_, *out);
    return error == std::errc() && stop == p_ && std::isfinite(*out);
  }

  const char* p_ = nullptr;
  const char* end_ = nullptr;
  std::array<std::pair<std::string_view, Value>, kMaxMembers> members_;
  size_t size_ = 0;
};

}  // namespace

// -- frames ------------------------------------------------------------------------------

void AppendFrame(std::string_view header, std::string_view payload, std::string* out) {
  out->reserve(out->size() + 16 + header.size() + payload.size());
  out->append(kFrameMagic);
  PutLittleEndian(header.size(), 4, out);
  out->append(header);
  PutLittleEndian(payload.size(), 8, out);
  out->append(payload);
}

FrameDecoder::FrameDecoder(int64_t max_payload_bytes)
    : max_payload_bytes_(max_payload_bytes), scratch_(kScratchBytes) {}

std::span<uint8_t> FrameDecoder::ReadTarget() {
  if (stage_ == Stage::kPayload && payload_size_ - payload_filled_ >= kDirectReadBytes) {
    direct_ = true;
    return {payload_->mutable_data() + payload_filled_,
            static_cast<size_t>(payload_size_ - payload_filled_)};
  }
  direct_ = false;
  return {scratch_.data(), scratch_.size()};
}

Status FrameDecoder::Consume(size_t n) {
  if (n == 0) return Status::OK();
  received_ += static_cast<int64_t>(n);
  if (direct_) {
    direct_ = false;
    payload_filled_ += static_cast<int64_t>(n);
    if (payload_filled_ == payload_size_) stage_ = Stage::kDone;
    return Status::OK();
  }
  return Feed(scratch_.data(), n);
}

Status FrameDecoder::Feed(const uint8_t* data, size_t n) {
  while (n > 0) {
    switch (stage_) {
      case Stage::kPrefix: {
        size_t take = std::min(n, small_.size() - small_filled_);
        std::memcpy(small_.data() + small_filled_, data, take);
        small_filled_ += take;
        data += take;
        n -= take;
        if (small_filled_ < small_.size()) break;
        if (std::memcmp(small_.data(), kFrameMagic.data(), 4) != 0) {
          return Internal("Malformed worker frame: bad magic '", Printable(small_.data(), 4),
                          "', expected 'TFW1'");
        }
        header_size_ = static_cast<size_t>(GetLittleEndian(small_.data() + 4, 4));
        if (static_cast<int64_t>(header_size_) > kMaxHeaderBytes) {
          return Internal("Malformed worker frame: header of ", header_size_,
                          " bytes is over the limit of ", kMaxHeaderBytes);
        }
        header_.clear();
        header_.reserve(header_size_);
        small_filled_ = 0;
        stage_ = Stage::kHeader;
        break;
      }
      case Stage::kHeader: {
        size_t take = std::min(n, header_size_ - header_.size());
        header_.append(reinterpret_cast<const char*>(data), take);
        data += take;
        n -= take;
        if (header_.size() == header_size_) stage_ = Stage::kPayloadLength;
        break;
      }
      case Stage::kPayloadLength: {
        size_t take = std::min(n, small_.size() - small_filled_);
        std::memcpy(small_.data() + small_filled_, data, take);
        small_filled_ += take;
        data += take;
        n -= take;
        if (small_filled_ < small_.size()) break;
        ARROW_RETURN_NOT_OK(StartPayload());
        break;
      }
      case Stage::kPayload: {
        size_t take = std::min(n, static_cast<size_t>(payload_size_ - payload_filled_));
        std::memcpy(payload_->mutable_data() + payload_filled_, data, take);
        payload_filled_ += static_cast<int64_t>(take);
        data += take;
        n -= take;
        if (payload_filled_ == payload_size_) stage_ = Stage::kDone;
        break;
      }
      case Stage::kDone:
        after_.append(reinterpret_cast<const char*>(data), n);
        return Status::OK();
    }
  }
  return Status::OK();
}

Status FrameDecoder::StartPayload() {
  uint64_t size = GetLittleEndian(small_.data(), 8);
  small_filled_ = 0;
  if (size > static_cast<uint64_t>(max_payload_bytes_)) {
    return Internal("Malformed worker frame: payload of ", size, " bytes is over the limit of ",
                    max_payload_bytes_);
  }
  payload_size_ = static_cast<int64_t>(size);
  payload_filled_ = 0;
  if (payload_size_ == 0) {
    stage_ = Stage::kDone;
    return Status::OK();
  }
  ARROW_ASSIGN_OR_RAISE(std::unique_ptr<arrow::Buffer> buffer,
                        arrow::AllocateBuffer(payload_size_));
  payload_ = std::move(buffer);
  stage_ = Stage::kPayload;
  return Status::OK();
}

Result<Frame> FrameDecoder::Take() {
  Frame frame{std::move(header_), payload_ ? std::move(payload_) : EmptyBuffer()};
  header_ = std::string();
  payload_.reset();
  payload_size_ = payload_filled_ = 0;
  small_filled_ = 0;
  received_ = 0;
  stage_ = Stage::kPrefix;
  if (!after_.empty()) {
    std::string rest = std::move(after_);
    after_.clear();
    received_ = static_cast<int64_t>(rest.size());
    ARROW_RETURN_NOT_OK(Feed(reinterpret_cast<const uint8_t*>(rest.data()), rest.size()));
  }
  return frame;
}

// -- messages ----------------------------------------------------------------------------

const char* ReplyKindName(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kTable: return "table";
    case ReplyKind::kRaster: return "raster";
    case ReplyKind::kJson: return "json";
    case ReplyKind::kHtml: return "html";
    case ReplyKind::kBytes: return "bytes";
    case ReplyKind::kNone: return "none";
    case ReplyKind::kPickle: return "pickle";
  }
  return "none";
}

Status ReplyStatus(const WorkerReply& reply) {
  if (reply.ok) return Status::OK();
  std::string_view kind = reply.error_kind();
  ErrorKind error_kind = ErrorKind::kUdfFailed;
  if (kind == "invalid_argument") error_kind = ErrorKind::kInvalidArgument;
  if (kind == "not_found") error_kind = ErrorKind::kNotFound;
  if (kind == "internal") error_kind = ErrorKind::kInternal;
  return MakeError(error_kind, std::string(reply.error_message()));
}

Result<std::string> EncodeRunHeader(const WorkerRequest& request, bool with_code) {
  std::string out;
  out.reserve(256 + request.code.size() + request.params.size() * 32);
  // `what` names the field in the error; `whose` (a parameter or module name) follows it in
  // quotes: no message is built unless the text is refused.
  auto field = [&](std::string_view what, std::string_view text, const std::string* whose = nullptr) -> Status {
    if (!IsValidUtf8(text)) {
      std::string name(what);
      if (whose) name += " '" + *whose + "'";
      return InvalidArgument("The ", name, " of UDF '", request.udf_name, "' is not valid UTF-8");
    }
    AppendJsonString(&out, text);
    return Status::OK();
  };
  out.append(R"({"op":"run","id":)");
  ARROW_RETURN_NOT_OK(field("request id", request.id));
  out.append(R"(,"udf":{"name":)");
  ARROW_RETURN_NOT_OK(field("name", request.udf_name));
  out.append(R"(,"entrypoint":)");
  ARROW_RETURN_NOT_OK(field("entrypoint", request.entrypoint));
  out.append(R"(,"hash":)");
  ARROW_RETURN_NOT_OK(field("hash", request.udf_hash));
  if (with_code || request.udf_hash.empty()) {
    out.append(R"(,"code":)");
    ARROW_RETURN_NOT_OK(field("code", request.code));
    out.append(R"(,"headers":[)");
    for (size_t i = 0; i < request.headers.size(); ++i) {
      const UdfHeaderModule& module = request.headers[i];
      out.append(i ? R"(,{"module_name":)" : R"({"module_name":)");
      ARROW_RETURN_NOT_OK(field("header module name", module.module_name));
      out.append(R"(,"source_code":)");
      ARROW_RETURN_NOT_OK(field("header module", module.source_code, &module.module_name));
      out.push_back('}');
    }
    out.push_back(']');
  }
  out.append(R"(},"params":{)");
  for (size_t i = 0; i < request.params.size(); ++i) {
    const auto& [name, value] = request.params[i];
    if (i) out.push_back(',');
    ARROW_RETURN_NOT_OK(field("parameter name", name, &name));
    out.push_back(':');
    ARROW_RETURN_NOT_OK(field("value of parameter", value, &name));
  }
  out.append(R"(},"tile":)");
  if (request.tile) {
    const auto& t = *request.tile;
    out.append("[" + std::to_string(t[0]) + "," + std::to_string(t[1]) + "," +
               std::to_string(t[2]) + "]");
  } else {
    out.append("null");
  }
  out.append(R"(,"bounds":)");
  if (request.bounds) {
    out.push_back('[');
    for (int i = 0; i < 4; ++i) {
      double v = (*request.bounds)[i];
      if (!std::isfinite(v)) {
        return InvalidArgument("Invalid bounds for UDF '", request.udf_name,
                               "': every bound must be a finite number");
      }
      if (i) out.push_back(',');
      AppendDouble(v, &out);
    }
    out.push_back(']');
  } else {
    out.append("null");
  }
  if (request.pickle) out.append(R"(,"pickle":true)");
  out.push_back('}');
  if (static_cast<int64_t>(out.size()) > kMaxHeaderBytes) {
    return TooLarge("The call of UDF '", request.udf_name, "' needs a frame header of ", out.size(),
                    " bytes, over the limit of ", kMaxHeaderBytes,
                    ": the code, header modules and parameters are too large");
  }
  return out;
}

std::string_view ExitHeader() { return R"({"op":"exit"})"; }

// The reply kind named `name` in a reply header, or nullopt for a name the protocol lacks.
static std::optional<ReplyKind> ReplyKindOf(std::string_view name) {
  if (name == "table") return ReplyKind::kTable;
  if (name == "raster") return ReplyKind::kRaster;
  if (name == "json") return ReplyKind::kJson;
  if (name == "html") return ReplyKind::kHtml;
  if (name == "bytes") return ReplyKind::kBytes;
  if (name == "none") return ReplyKind::kNone;
  if (name == "pickle") return ReplyKind::kPickle;
  return std::nullopt;
}

// An ok reply in FlatReply's shape, decoded exactly as DecodeReply's general path would;
// false when the reply needs that path (a failure, a raster, escapes, a mismatch to report).
static bool DecodeFlatReply(Frame& frame, std::string_view expected_id, WorkerReply* reply) {
  FlatReply h;
  if (!h.Read(frame.header)) return false;
  const FlatReply::Value* id = h.Find("id");
  const FlatReply::Value* ok = h.Find("ok");
  if (!id || id->type != JsonValue::Type::kString || id->text != expected_id || !ok ||
      ok->type != JsonValue::Type::kBool || !ok->boolean) {
    return false;
  }
  std::optional<ReplyKind> kind = ReplyKindOf(h.StringOf("kind"));
  if (!kind || *kind == ReplyKind::kRaster) return false;  // a raster's shape is an array
  reply->kind = *kind;
  reply->ok = true;
  reply->stdout_text = h.StringOf("stdout");
  reply->stderr_text = h.StringOf("stderr");
  if (const FlatReply::Value* s = h.Find("seconds"); s && s->type == JsonValue::Type::kNumber) {
    reply->seconds = s->number;
  }
  if (const FlatReply::Value* r = h.Find("recycle"); r && r->type == JsonValue::Type::kBool) {
    reply->recycle = r->boolean;
  }
  reply->media_type = h.StringOf("media_type");
  reply->payload = std::move(frame.payload);
  reply->header_json = std::move(frame.header);  // after h's last use: its views point into it
  return true;
}

Result<WorkerReply> DecodeReply(Frame frame, std::string_view expected_id) {
  WorkerReply reply;
  if (DecodeFlatReply(frame, expected_id, &reply)) return reply;  // else untouched
  reply.header_json = std::move(frame.header);
  Result<JsonValue> parsed = ParseJson(reply.header_json);
  if (!parsed.ok() || !parsed->IsObject()) {
    return Internal("Malformed worker reply: the header is not a JSON object: '",
                    std::string_view(reply.header_json).substr(0, 200), "'");
  }
  const JsonValue& h = *parsed;
  const JsonValue* id = h.Find("id");
  if (!id || !id->IsString() || id->string != expected_id) {
    return Internal("Malformed worker reply: id ", id ? id->raw : "missing",
                    " does not match the request id \"", expected_id, "\"");
  }
  const JsonValue* ok = h.Find("ok");
  if (!ok || ok->type != JsonValue::Type::kBool) {
    return Internal("Malformed worker reply: 'ok' must be true or false");
  }
  reply.ok = ok->boolean;
  reply.stdout_text = StringField(h, "stdout");
  reply.stderr_text = StringField(h, "stderr");
  if (const JsonValue* s = h.Find("seconds"); s && s->type == JsonValue::Type::kNumber) {
    reply.seconds = s->number;
  }
  if (const JsonValue* r = h.Find("recycle"); r && r->type == JsonValue::Type::kBool) {
    reply.recycle = r->boolean;
  }
  reply.payload = std::move(frame.payload);
  if (!reply.ok) {
    const JsonValue* error = h.Find("error");
    if (!error || !error->IsObject() || StringField(*error, "kind").empty() ||
        !error->Find("message") || !error->Find("message")->IsString()) {
      return Internal(
          "Malformed worker reply: a failed reply needs 'error' with 'kind' and "
          "'message'");
    }
    reply.error.kind = StringField(*error, "kind");
    reply.error.type = StringField(*error, "type");
    reply.error.message = StringField(*error, "message");
    reply.error.traceback = StringField(*error, "traceback");
    return reply;
  }
  std::string_view kind_name = StringField(h, "kind");
  std::optional<ReplyKind> kind = ReplyKindOf(kind_name);
  if (!kind) {
    return Internal("Malformed worker reply: unknown kind '", kind_name,
                    "', expected table, raster, json, html, bytes, none or pickle");
  }
  reply.kind = *kind;
  if (reply.kind == ReplyKind::kRaster) ARROW_RETURN_NOT_OK(ReadRaster(h, reply.payload->size(), &reply));
  reply.media_type = StringField(h, "media_type");
  return reply;
}

Result<int> DecodeReady(const Frame& frame) {
  Result<JsonValue> header = ParseJson(frame.header);
  if (!header.ok() || !header->IsObject() || StringField(*header, "op") != "ready") {
    return Internal("Malformed worker frame: expected the 'ready' frame, got '",
                    std::string_view(frame.header).substr(0, 200), "'");
  }
  const JsonValue* pid = header->Find("pid");
  return pid && pid->type == JsonValue::Type::kNumber ? static_cast<int>(pid->number) : 0;
}

}  // namespace terrafuse::workers
