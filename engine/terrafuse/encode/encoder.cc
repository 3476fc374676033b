#include "terrafuse/encode/encoder.h"

#include <algorithm>
#include <cctype>

namespace terrafuse::encode {

namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

const char* KindNoun(EncoderKind kind) {
  return kind == EncoderKind::kVector ? "tables" : "rasters";
}

}  // namespace

Status EncoderRegistry::Add(Entry entry) {
  std::string key = Lower(entry.info.name);
  if (key.empty()) return InvalidArgument("Encoder name must not be empty");
  if (entries_.count(key)) {
    return AlreadyExists("Output format '", entry.info.name, "' is registered twice");
  }
  entry.info.name = key;
  entries_.emplace(std::move(key), std::move(entry));
  return Status::OK();
}

Status EncoderRegistry::AddVector(EncoderInfo info, VectorEncodeFn fn) {
  info.kind = EncoderKind::kVector;
  return Add(Entry{std::move(info), std::move(fn), nullptr});
}

Status EncoderRegistry::AddRaster(EncoderInfo info, RasterEncodeFn fn) {
  info.kind = EncoderKind::kRaster;
  return Add(Entry{std::move(info), nullptr, std::move(fn)});
}

const EncoderRegistry::Entry* EncoderRegistry::FindEntry(std::string_view name) const {
  auto it = entries_.find(Lower(name));
  return it == entries_.end() ? nullptr : &it->second;
}

const EncoderInfo* EncoderRegistry::Find(std::string_view name) const {
  const Entry* entry = FindEntry(name);
  return entry ? &entry->info : nullptr;
}

Result<const EncoderInfo*> EncoderRegistry::Get(std::string_view name) const {
  if (const EncoderInfo* info = Find(name)) return info;
  std::vector<std::string> names;
  for (const auto& [key, _] : entries_) names.push_back(key);
  return InvalidArgument("Unknown output format '", name, "': known formats are ",
                         JoinNames(names));
}

Result<const EncoderRegistry::Entry*> EncoderRegistry::GetEntry(std::string_view name,
                                                                EncoderKind kind) const {
  const Entry* entry = FindEntry(name);
  if (entry && entry->info.kind == kind) return entry;
  std::string known = JoinNames(Names(kind));
  if (entry) {
    return InvalidArgument("Output format '", name, "' encodes ", KindNoun(entry->info.kind),
                           ", not ", KindNoun(kind), ": formats for ", KindNoun(kind), " are ",
                           known);
  }
  return InvalidArgument("Unknown output format '", name, "': formats for ", KindNoun(kind),
                         " are ", known);
}

Result<Encoded> EncoderRegistry::Encode(std::string_view format, const arrow::Table& table,
                                        const EncodeOptions& options) const {
  ARROW_ASSIGN_OR_RAISE(const Entry* entry, GetEntry(format, EncoderKind::kVector));
  return entry->vector(table, options);
}

Result<Encoded> EncoderRegistry::EncodeRaster(std::string_view format, const RasterView& raster,
                                              const EncodeOptions& options) const {
  ARROW_ASSIGN_OR_RAISE(const Entry* entry, GetEntry(format, EncoderKind::kRaster));
  return entry->raster(raster, options);
}

std::vector<EncoderInfo> EncoderRegistry::List() const {
  std::vector<EncoderInfo> out;
  for (const auto& [_, entry] : entries_) out.push_back(entry.info);
  return out;
}

std::vector<std::string> EncoderRegistry::Names(EncoderKind kind) const {
  std::vector<std::string> out;
  for (const auto& [key, entry] : entries_) {
    if (entry.info.kind == kind) out.push_back(key);
  }
  return out;
}

Status RegisterBuiltins(EncoderRegistry& registry) {
  ARROW_RETURN_NOT_OK(
      registry.AddVector({"csv", EncoderKind::kVector, media_type::kCsv,
                          "Comma-separated values with a header row; geometry as WKT"},
                         EncodeCsv));
  ARROW_RETURN_NOT_OK(
      registry.AddVector({"json", EncoderKind::kVector, media_type::kJson,
                          "A JSON array of row objects; geometry as WKT, timestamps as ISO 8601"},
                         EncodeJson));
  ARROW_RETURN_NOT_OK(registry.AddVector(
      {"geojson", EncoderKind::kVector, media_type::kGeoJson,
       "A GeoJSON FeatureCollection of the primary geometry column; other columns as properties"},
      EncodeGeoJson));
  ARROW_RETURN_NOT_OK(
      registry.AddVector({"parquet", EncoderKind::kVector, media_type::kParquet,
                          "Parquet (zstd) keeping the schema metadata, GeoParquet `geo` included"},
                         EncodeParquet));
  ARROW_RETURN_NOT_OK(registry.AddVector({"feather", EncoderKind::kVector, media_type::kFeather,
                                          "Feather v2: the Arrow IPC file format (lz4)"},
                                         EncodeFeather));
  ARROW_RETURN_NOT_OK(
      registry.AddRaster({"png", EncoderKind::kRaster, media_type::kPng,
                          "PNG of a uint8 raster: 1 band gray, 2 gray+alpha, 3 RGB, 4 RGBA"},
                         EncodePng));
  ARROW_RETURN_NOT_OK(
      registry.AddRaster({"npy", EncoderKind::kRaster, media_type::kNpy,
                          "NumPy .npy of any bool, integer or float raster (exact dtype and shape)"},
                         EncodeNpy));
  ARROW_RETURN_NOT_OK(RegisterMvt(registry));
  ARROW_RETURN_NOT_OK(RegisterMoreFormats(registry));
  return Status::OK();
}

}  // namespace terrafuse::encode
