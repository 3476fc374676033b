#include "terrafuse/routes/udf_routes.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <mutex>
#include <optional>
#include <stop_token>
#include <unordered_map>

#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/table.h>
#include <nlohmann/json.hpp>

#include "terrafuse/cache/result_cache.h"
#include "terrafuse/common/hash.h"
#include "terrafuse/common/json_reader.h"
#include "terrafuse/encode/encoder.h"
#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/text_internal.h"
#include "terrafuse/http/error_response.h"
#include "terrafuse/routes/api_prefix.h"
#include "terrafuse/routes/services.h"
#include "terrafuse/tiles/tile_math.h"
#include "terrafuse/udf/registry.h"
#include "terrafuse/workers/worker_pool.h"

namespace terrafuse::routes {

namespace {

using http::Request;
using http::Response;
using json = nlohmann::json;

// Bump when the encoded bytes for the same inputs change, so old cache entries are not served.
constexpr std::string_view kResultFormatVersion = "terrafuse-http-1";
// Query parameters that steer the run and are not passed to the UDF.
constexpr std::string_view kReservedParams[] = {"dtype_out_vector", "dtype_out_raster", "cache_max_age",
                                                "format"};
// Captured output copied into the X-Fused-Metadata header keeps its end only.
constexpr size_t kMaxMetadataTextBytes = 2048;
// Replies larger than this are encoded on the handler pool, smaller ones on the I/O thread.
constexpr int64_t kLightReplyBytes = 64 * 1024;

std::string Route(std::string_view suffix) { return std::string(kApiPrefix) + std::string(suffix); }

std::string Tail(std::string_view text, size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  return "..." + std::string(text.substr(text.size() - max_bytes));
}

std::string Dump(const json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
}

Result<json> ParseBody(const Request& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return InvalidArgument("The request body must be a JSON object");
  }
  return body;
}

// The owner behind the request's Bearer API token.
Result<std::string> RequireOwner(const Request& request, Services& services) {
  auto header = request.headers.Find("Authorization");
  if (!header || header->empty()) {
    return Unauthenticated("This route needs an API token: send 'Authorization: Bearer <token>'");
  }
  return services.registry->Authenticate(*header);
}

// Cache entries are grouped per UDF, so purging a UDF (or a token of it) drops them all.
std::string UdfTag(std::string_view owner, std::string_view name) {
  return HashHex(std::string(owner) + "/" + std::string(name));
}

// Saved UDF versions never change (a version is a content hash): memoize them so the hot
// path does not read the registry's folder on every request.
Result<udf::UdfSpec> SpecOfVersion(Services& services, const std::string& owner, const std::string& name,
                                   const std::string& version) {
  static std::mutex mutex;
  static std::unordered_map<std::string, udf::UdfSpec>* memo = new std::unordered_map<std::string, udf::UdfSpec>;
  const std::string key = services.home + "\n" + owner + "\n" + name + "\n" + version;
  {
    std::lock_guard<std::mutex> guard(mutex);
    auto it = memo->find(key);
    if (it != memo->end()) return it->second;
  }
  ARROW_ASSIGN_OR_RAISE(udf::UdfEntry entry, services.registry->GetVersion(owner, name, version));
  std::lock_guard<std::mutex> guard(mutex);
  if (memo->size() > 4096) memo->clear();
  return (*memo)[key] = std::move(entry.spec);
}

struct Formats {
  std::string vector;
  std::string raster;
};

// dtype_out_* win; else the URL's extension (".mvt", ".png"); else the defaults: Parquet
// for files (what the Fused SDK transfers), MVT for vector tiles and PNG for raster tiles
// (what MapLibre, Leaflet and deck.gl draw from a bare tile URL).
Result<Formats> PickFormats(const Request& request, Services& services, bool tile) {
  Formats formats{tile ? "mvt" : "parquet", "png"};
  if (!request.extension.empty()) {
    const encode::EncoderInfo* info = services.encoders->Find(request.extension);
    if (info == nullptr) {
      return UnprocessableEntity("Unknown output extension '.", request.extension,
                                 "': use a format such as .geojson, .parquet, .csv or .png");
    }
    (info->kind == encode::EncoderKind::kVector ? formats.vector : formats.raster) = info->name;
  }
  if (auto legacy = request.Query("format")) formats.vector = std::string(*legacy);
  if (auto vector = request.Query("dtype_out_vector")) formats.vector = std::string(*vector);
  if (auto raster = request.Query("dtype_out_raster")) formats.raster = std::string(*raster);
  for (auto [name, kind] : {std::pair{&formats.vector, encode::EncoderKind::kVector},
                            std::pair{&formats.raster, encode::EncoderKind::kRaster}}) {
    const encode::EncoderInfo* info = services.encoders->Find(*name);
    if (info == nullptr || info->kind != kind) {
      std::string known;
      for (const std::string& n : services.encoders->Names(kind)) known += (known.empty() ? "" : ", ") + n;
      return UnprocessableEntity("Unsupported ", kind == encode::EncoderKind::kVector ? "dtype_out_vector" : "dtype_out_raster",
                                 " '", *name, "': use one of ", known);
    }
    *name = info->name;
  }
  return formats;
}

// The UDF's parameters from the query: reserved names dropped, and for a repeated name the
// first value wins (as for every other query parameter).
http::Params UdfParams(const Request& request) {
  http::Params params;
  for (const auto& [name, value] : request.query) {
    bool reserved = std::find(std::begin(kReservedParams), std::end(kReservedParams), name) != std::end(kReservedParams);
    bool seen = std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
    if (!reserved && !seen) params.emplace_back(name, value);
  }
  return params;
}

Result<tiles::Tile> TileFromPath(const Request& request) {
  auto number = [&](std::string_view name) -> Result<int64_t> {
    std::string_view text = *request.PathParam(name);
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      return InvalidArgument("Invalid tile ", name, " '", text, "': expected an integer");
    }
    return value;
  };
  tiles::Tile tile;
  ARROW_ASSIGN_OR_RAISE(tile.x, number("x"));
  ARROW_ASSIGN_OR_RAISE(tile.y, number("y"));
  ARROW_ASSIGN_OR_RAISE(int64_t z, number("z"));
  tile.z = static_cast<int>(std::clamp<int64_t>(z, -1, 1000));
  ARROW_RETURN_NOT_OK(tiles::ValidateTile(tile));
  return tile;
}

// A failed reply: parameter problems are the caller's (422), a raising UDF is a 500 that
// carries its traceback and output.
Status ReplyError(const workers::WorkerReply& reply) {
  std::string message(reply.error_message());
  std::string_view kind = reply.error_kind();
  if (kind == "invalid_argument") return UnprocessableEntity(message);
  if (kind == "not_found") return NotFound(message);
  if (kind == "udf_failed") {
    return Status(arrow::StatusCode::UnknownError, message,
                  std::make_shared<UdfFailureDetail>(std::string(reply.error_type()), std::string(reply.traceback()),
                                                     std::string(reply.captured_stdout()),
                                                     std::string(reply.captured_stderr())));
  }
  return Internal(message);
}

struct Run {
  udf::UdfSpec spec;
  std::string version;
  std::string tag;
  double max_age_seconds = kDefaultResultMaxAgeSeconds;
};

// The cache lifetime the UDF's own decorator asks for (`@fused.udf(cache_max_age="24h")`),
// read from its source: every use in the public catalog is a literal. A plain scan, not a
// regex: user code can be megabytes long, and backtracking regexes recurse per character.
std::optional<double> ScanDecoratorMaxAge(const udf::UdfSpec& spec) {
  const std::string& code = spec.code;
  for (size_t at = code.find('@'); at != std::string::npos; at = code.find('@', at + 1)) {
    size_t p = at + 1;
    if (code.compare(p, 6, "fused.") == 0) p += 6;
    if (code.compare(p, 3, "udf") != 0) continue;
    p += 3;
    while (p < code.size() && code[p] == ' ') ++p;
    if (p >= code.size() || code[p] != '(') continue;
    // The decorator's arguments, to the matching parenthesis.
    size_t open = p, depth = 0;
    for (; p < code.size(); ++p) {
      if (code[p] == '(') ++depth;
      if (code[p] == ')' && --depth == 0) break;
    }
    if (p >= code.size()) return std::nullopt;
    std::string_view arguments(code.data() + open + 1, p - open - 1);
    // It must decorate the entrypoint: skip other decorator lines to the `def`.
    size_t line = code.find('\n', p);
    while (line != std::string::npos) {
      size_t next = code.find_first_not_of(" \t\r\n", line);
      if (next == std::string::npos || code[next] != '@') break;
      line = code.find('\n', next);
    }
    if (line == std::string::npos) return std::nullopt;
    size_t def = code.find_first_not_of(" \t\r\n", line);
    if (def != std::string::npos && code.compare(def, 6, "async ") == 0) def = code.find_first_not_of(' ', def + 6);
    std::string expected = "def " + spec.entrypoint + "(";
    std::string expected_spaced = "def " + spec.entrypoint + " (";
    if (def == std::string::npos ||
        (code.compare(def, expected.size(), expected) != 0 && code.compare(def, expected_spaced.size(), expected_spaced) != 0)) {
      continue;
    }
    size_t key = arguments.find("cache_max_age");
    if (key == std::string_view::npos) return std::nullopt;
    std::string value;
    for (size_t i = key + 13; i < arguments.size(); ++i) {
      char c = arguments[i];
      if (c == ' ' || c == '=' || c == '"' || c == '\'') {
        if (!value.empty() && c != ' ') break;
        continue;
      }
      if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 's' || c == 'm' || c == 'h' || c == 'd')) break;
      value += c;
    }
    auto seconds = ParseDurationSeconds(value);
    return seconds.ok() ? std::optional<double>(*seconds) : std::nullopt;
  }
  return std::nullopt;
}

// Memoized per UDF version: the scan runs once, not on every cache hit.
std::optional<double> DecoratorMaxAge(const udf::UdfSpec& spec, const std::string& version) {
  static std::mutex mutex;
  static auto* memo = new std::unordered_map<std::string, std::optional<double>>;
  const std::string key = version + "\n" + spec.entrypoint;
  std::lock_guard<std::mutex> guard(mutex);
  auto it = memo->find(key);
  if (it != memo->end()) return it->second;
  if (memo->size() > 4096) memo->clear();
  return (*memo)[key] = ScanDecoratorMaxAge(spec);
}

// Lifetime precedence: the run's cache_max_age (query) > the token's > the decorator's > 90 days.
double DefaultMaxAge(const udf::UdfSpec& spec, const std::string& version) {
  return DecoratorMaxAge(spec, version).value_or(kDefaultResultMaxAgeSeconds);
}

// The worker call of a run.
workers::WorkerRequest CallOf(const Request& request, const Run& run, const std::optional<tiles::Tile>& tile,
                              http::Params params) {
  workers::WorkerRequest call;
  call.id = request.request_id;
  call.udf_name = run.spec.name;
  call.code = run.spec.code;
  call.entrypoint = run.spec.entrypoint;
  call.udf_hash = run.version;
  for (const auto& header : run.spec.headers) call.headers.push_back({header.module_name, header.source_code});
  call.params = std::move(params);
  if (tile) call.tile = std::array<int64_t, 3>{tile->x, tile->y, tile->z};
  // Sent by the SDK from inside a worker: a UDF's nested call must not wait for the workers
  // its callers hold.
  call.nested = request.headers.Find("X-Terrafuse-Nested").has_value();
  return call;
}

// A worker's reply encoded in the requested format, with its X-Fused-Metadata.
Result<cache::CachedResult> ResultOf(const workers::WorkerReply& reply, Services& services, const Run& run,
                                     const std::optional<tiles::Tile>& tile, const Formats& formats) {
  if (!reply.ok) return ReplyError(reply);

  // Built by hand: this runs on every uncached call.
  std::string metadata = "{\"udf\":";
  AppendAsciiJsonString(&metadata, run.spec.name);
  metadata += ",\"stdout\":";
  AppendAsciiJsonString(&metadata, Tail(reply.captured_stdout(), kMaxMetadataTextBytes));
  metadata += ",\"stderr\":";
  AppendAsciiJsonString(&metadata, Tail(reply.captured_stderr(), kMaxMetadataTextBytes));
  metadata += ",\"udf_seconds\":";
  encode::internal::AppendJsonDouble(&metadata, reply.seconds);
  cache::CachedResult result;
  auto fail_encoding = [](const Status& status) { return UnprocessableEntity(status.message()); };
  switch (reply.kind) {
    case workers::ReplyKind::kTable: {
      auto input = std::make_shared<arrow::io::BufferReader>(reply.payload);
      ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(input));
      ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::Table> table, reader->ToTable());
      encode::EncodeOptions options;
      options.tile = tile;  // MVT projects and clips to it
      auto encoded = services.encoders->Encode(formats.vector, *table, options);
      if (!encoded.ok()) return fail_encoding(encoded.status());
      result.body = encoded->bytes;
      result.media_type = encoded->media_type;
      metadata += ",\"rows\":" + std::to_string(table->num_rows());
      break;
    }
    case workers::ReplyKind::kRaster: {
      encode::RasterView raster;
      raster.data = reply.payload->data();
      raster.size_bytes = reply.payload->size();
      raster.dtype = reply.dtype;
      raster.shape = reply.shape;
      // GeoTIFF carries its georeference: the UDF's (array, bounds) in EPSG:4326, else the
      // tile's web-mercator box.
      auto encoded = [&]() -> Result<encode::Encoded> {
        if (formats.raster != "tiff" && formats.raster != "tif") {
          return services.encoders->EncodeRaster(formats.raster, raster);
        }
        std::optional<std::array<double, 4>> box = reply.bounds;
        int epsg = encode::kEpsgLngLat;
        if (!box && tile) {
          ARROW_ASSIGN_OR_RAISE(tiles::MercatorBounds m, tiles::XyBounds(*tile));
          box = std::array<double, 4>{m.left, m.bottom, m.right, m.top};
          epsg = encode::kEpsgWebMercator;
        }
        return encode::EncodeTiff(raster, box, {}, epsg);
      }();
      if (!encoded.ok()) return fail_encoding(encoded.status());
      result.body = encoded->bytes;
      result.media_type = encoded->media_type;
      if (reply.bounds) {
        metadata += ",\"bounds\":[";
        for (int i = 0; i < 4; ++i) {
          if (i) metadata += ',';
          encode::internal::AppendJsonDouble(&metadata, (*reply.bounds)[i]);
        }
        metadata += ']';
      }
      break;
    }
    case workers::ReplyKind::kJson:
      result.body = reply.payload;
      result.media_type = "application/json";
      break;
    case workers::ReplyKind::kHtml:
    case workers::ReplyKind::kBytes:
      result.body = reply.payload;
      result.media_type = !reply.media_type.empty() ? reply.media_type
                          : reply.kind == workers::ReplyKind::kHtml ? "text/html; charset=utf-8"
                                                                    : "application/octet-stream";
      break;
    case workers::ReplyKind::kNone:
      result.body = std::make_shared<arrow::Buffer>(nullptr, 0);
      break;
    case workers::ReplyKind::kPickle:  // only the SDK's local engine asks for pickles
      return Internal("Worker ", reply.worker_pid, " answered an HTTP call with a pickle");
  }
  result.metadata = std::move(metadata) + "}";
  return result;
}

Result<cache::CachedResult> Execute(const Request& request, Services& services, const Run& run,
                                    const std::optional<tiles::Tile>& tile, const http::Params& params,
                                    const Formats& formats, bool cacheable) {
  // The client going away cancels an uncached call (its worker is killed and replaced). A
  // call whose result will be cached runs to the end: map clients cancel tiles constantly
  // while panning, and the next pan back is then a hit instead of a worker restart.
  workers::CancelFlag cancel{false};
  std::stop_callback on_cancel(request.cancel, [&cancel] { cancel = true; });
  ARROW_ASSIGN_OR_RAISE(workers::WorkerReply reply,
                        services.pool->Run(CallOf(request, run, tile, params), cacheable ? nullptr : &cancel));
  return ResultOf(reply, services, run, tile, formats);
}

Result<double> MaxAgeOf(const Request& request, const Run& run) {
  if (auto text = request.Query("cache_max_age")) return ParseDurationSeconds(*text);
  return run.max_age_seconds;
}

// The result cache key: everything that changes the bytes (UDF version, parameters in any
// order, tile, formats and the engine's result format).
std::string ResultKey(const Run& run, http::Params params, const std::optional<tiles::Tile>& tile,
                      const Formats& formats) {
  std::sort(params.begin(), params.end());
  Hasher key;
  key.Update(kResultFormatVersion);
  key.Update(run.version);
  // The hash streams: pieces fed one by one hash as their concatenation, with no temporaries
  // (this runs on every cache hit).
  auto length_prefixed = [&key](std::string_view text) {
    char digits[24];
    key.Update(std::string_view(digits, std::to_chars(digits, digits + sizeof(digits), text.size()).ptr - digits));
    key.Update(":");
    key.Update(text);
  };
  for (const auto& [name, value] : params) {
    length_prefixed(name);
    length_prefixed(value);
  }
  if (tile) {
    key.Update("tile:");
    key.Update(tiles::ToString(*tile));
  }
  key.Update("|");
  key.Update(formats.vector);
  key.Update("|");
  key.Update(formats.raster);
  return key.HexDigest();
}

// The response for a result: its bytes, and X-Fused-Metadata = the stored metadata plus how
// the cache answered and the time taken (spliced in: no JSON parse on the hit path).
Response RespondWith(const cache::CachedResult& result, cache::CacheOutcome outcome,
                     std::chrono::steady_clock::time_point start) {
  Response response;
  // No features in a vector tile: 204, as tile servers answer (clients draw nothing).
  const bool empty_tile = result.media_type == encode::media_type::kMvt && result.body->size() == 0;
  if (result.media_type.empty() || empty_tile) {
    response.status = 204;
  } else {
    response.shared_body = result.body;
    response.headers.Add("Content-Type", result.media_type);
    // Computed once per cached entry (FinalizeResponse would hash the body on every hit).
    if (!result.etag.empty()) response.headers.Add("ETag", result.etag);
  }
  const std::string_view stored = result.metadata;
  const bool object = stored.size() >= 2 && stored.front() == '{' && stored.back() == '}';
  std::string metadata(object ? stored.substr(0, stored.size() - 1) : "{");
  if (metadata.size() > 1) metadata += ',';
  const char* outcome_name = cache::CacheOutcomeName(outcome);
  metadata += "\"cache\":\"";
  metadata += outcome_name;
  metadata += "\",\"ms\":";
  char ms[32];
  const double elapsed_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  metadata.append(ms, std::to_chars(ms, ms + sizeof(ms), elapsed_ms, std::chars_format::fixed, 3).ptr);
  metadata += '}';
  response.headers.Add("X-Fused-Metadata", std::move(metadata));
  response.headers.Add("X-Fused-Cache", outcome_name);
  return response;
}

// Runs (or answers from the cache) one UDF call and builds the response.
Result<Response> RunAndRespond(const Request& request, Services& services, const Run& run,
                               const std::optional<tiles::Tile>& tile) {
  const auto start = std::chrono::steady_clock::now();
  ARROW_ASSIGN_OR_RAISE(Formats formats, PickFormats(request, services, tile.has_value()));
  http::Params params = UdfParams(request);
  ARROW_ASSIGN_OR_RAISE(double max_age, MaxAgeOf(request, run));
  // A run that bypasses the cache (cache_max_age=0) needs no key.
  const std::string key = max_age > 0 ? ResultKey(run, params, tile, formats) : std::string();
  cache::CacheOutcome outcome;
  auto compute = [&]() { return Execute(request, services, run, tile, params, formats, max_age > 0); };
  ARROW_ASSIGN_OR_RAISE(cache::CachedResult result,
                        services.results->GetOrCompute(run.tag, key, max_age, compute, &outcome));
  return RespondWith(result, outcome, start);
}

// -- shared tokens and public names ---------------------------------------------------
// A shared token resolved to what it runs. Memoized under the registry's change stamp: any
// write to the registry (revocation, new version, new settings, from any process) changes
// the stamp, so a memo is never used stale, and a cached tile costs no SQLite query.
struct TokenRun {
  int64_t stamp = 0;
  std::string owner;
  bool team_only = false;  // the caller's API token must be its owner's: checked per request
  std::shared_ptr<const Run> run;
};

std::mutex token_runs_mutex;
auto* token_runs = new std::unordered_map<std::string, std::shared_ptr<const TokenRun>>;

std::shared_ptr<const TokenRun> FindTokenRun(const std::string& key, int64_t stamp) {
  std::lock_guard<std::mutex> guard(token_runs_mutex);
  auto it = token_runs->find(key);
  if (it == token_runs->end() || it->second->stamp != stamp) return nullptr;
  return it->second;
}

Result<std::shared_ptr<const TokenRun>> ResolveTokenRun(Services& services, const std::string& token) {
  const std::string key = services.home + "\n" + token;
  // Read before resolving: a write in between leaves a memo under the older stamp, unused.
  const std::optional<int64_t> stamp = services.registry->TryChangeStamp();
  if (stamp) {
    if (auto found = FindTokenRun(key, *stamp)) return found;
  }
  ARROW_ASSIGN_OR_RAISE(udf::ResolvedToken resolved, services.registry->ResolveSharedToken(token));
  auto run = std::make_shared<Run>();
  ARROW_ASSIGN_OR_RAISE(run->spec, SpecOfVersion(services, resolved.owner, resolved.udf_name, resolved.version));
  run->version = resolved.version;
  run->tag = UdfTag(resolved.owner, resolved.udf_name);
  run->max_age_seconds = DefaultMaxAge(run->spec, run->version);
  if (!resolved.settings.cache) {
    run->max_age_seconds = 0;
  } else if (resolved.settings.cache_max_age_seconds) {
    run->max_age_seconds = static_cast<double>(*resolved.settings.cache_max_age_seconds);
  }
  auto entry = std::make_shared<TokenRun>(TokenRun{stamp.value_or(-1), resolved.owner,
                                                   resolved.settings.scope == udf::TokenScope::kTeam, run});
  if (stamp) {
    std::lock_guard<std::mutex> guard(token_runs_mutex);
    if (token_runs->size() > 4096) token_runs->clear();
    (*token_runs)[key] = entry;
  }
  return entry;
}

Result<std::shared_ptr<const Run>> RunOfToken(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(auto entry, ResolveTokenRun(services, std::string(*request.PathParam("token"))));
  if (entry->team_only) {
    ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
    if (caller != entry->owner) {
      return PermissionDenied("This token is shared with its owner's team only");
    }
  }
  return entry->run;
}

Result<Response> RunShared(const Request& request, Services& services, bool as_tile) {
  std::optional<tiles::Tile> tile;
  if (as_tile) {
    ARROW_ASSIGN_OR_RAISE(tile, TileFromPath(request));
  }
  ARROW_ASSIGN_OR_RAISE(auto run, RunOfToken(request, services));
  return RunAndRespond(request, services, *run, tile);
}

// What the I/O thread needs to take on a shared-token run itself: the token resolved under
// the registry's current stamp (no SQLite), not a team token (its caller is checked on the
// pool), and a valid tile, lifetime and format. nullopt otherwise: the pool's handler then
// does the work and reports the errors.
struct QuickRun {
  std::shared_ptr<const TokenRun> token;  // token->run is the run
  std::optional<tiles::Tile> tile;
  double max_age = 0;
  Formats formats;
};

std::optional<QuickRun> QuickRunOf(const Request& request, Services& services, bool as_tile) {
  const std::optional<int64_t> stamp = services.registry->TryChangeStamp();
  if (!stamp) return std::nullopt;
  auto entry = FindTokenRun(services.home + "\n" + std::string(*request.PathParam("token")), *stamp);
  if (!entry || entry->team_only) return std::nullopt;
  QuickRun quick;
  quick.token = std::move(entry);
  if (as_tile) {
    Result<tiles::Tile> parsed = TileFromPath(request);
    if (!parsed.ok()) return std::nullopt;
    quick.tile = *parsed;
  }
  Result<double> max_age = MaxAgeOf(request, *quick.token->run);
  if (!max_age.ok()) return std::nullopt;
  quick.max_age = *max_age;
  Result<Formats> formats = PickFormats(request, services, as_tile);
  if (!formats.ok()) return std::nullopt;
  quick.formats = std::move(*formats);
  return quick;
}

// The I/O thread's answer for a shared token whose result is in memory. Anything else
// (a miss, a team token, a busy registry, any error) goes to RunShared on the pool, which
// also reports the errors.
std::optional<Response> CachedShared(const Request& request, Services& services, bool as_tile) {
  const auto start = std::chrono::steady_clock::now();
  std::optional<QuickRun> quick = QuickRunOf(request, services, as_tile);
  if (!quick) return std::nullopt;
  if (quick->max_age <= 0) {  // a run that bypasses the cache: StartShared, next, takes it on
    request.route_state = std::make_shared<QuickRun>(std::move(*quick));
    return std::nullopt;
  }
  std::optional<cache::CachedResult> hit = services.results->PeekMemory(
      quick->token->run->tag, ResultKey(*quick->token->run, UdfParams(request), quick->tile, quick->formats),
      quick->max_age);
  if (!hit) return std::nullopt;
  return RespondWith(*hit, cache::CacheOutcome::kMemoryHit, start);
}

// Sets a call's cancel flag when its client goes away.
struct CancelOnStop {
  struct Set {
    workers::CancelFlag* flag;
    void operator()() const { *flag = true; }
  };
  workers::CancelFlag flag{false};
  std::optional<std::stop_callback<Set>> on_stop;
};

// A run started by StartShared, until its answer is built.
struct DeferredRun {
  CancelOnStop cancel;
  std::shared_ptr<const Run> run;
  std::optional<tiles::Tile> tile;
  Formats formats;
  std::chrono::steady_clock::time_point start;
  std::string request_id;
  std::optional<Result<workers::WorkerReply>> reply;
};

// The I/O thread's start of a shared-token run that bypasses the cache (cache_max_age=0, or
// a token with its cache off): the call waits in the worker pool's queue instead of on a
// handler thread (WorkerPool::RunAsync), and its answer is built when the reply arrives, on
// the I/O thread unless the reply is large. Declined (to RunShared on the pool): cacheable
// runs (their single-flight waits block), nested calls (a driver is not theirs to wait
// for), team tokens, tokens not yet resolved, and every error (RunShared reports them).
bool StartShared(const Request& request, Services& services, http::Respond respond, bool as_tile) {
  const auto start = std::chrono::steady_clock::now();
  if (request.headers.Find("X-Terrafuse-Nested")) return false;
  // CachedShared, just before on this thread, left what it resolved (else resolve it here).
  std::optional<QuickRun> quick;
  if (auto left = std::static_pointer_cast<QuickRun>(std::move(request.route_state))) {
    quick = std::move(*left);
  } else {
    quick = QuickRunOf(request, services, as_tile);
  }
  if (!quick || quick->max_age > 0) return false;
  auto call = std::make_shared<workers::WorkerRequest>(CallOf(request, *quick->token->run, quick->tile, UdfParams(request)));
  // One allocation for what the callbacks need: they pass a pointer around, not copies.
  auto state = std::make_shared<DeferredRun>();
  state->cancel.on_stop.emplace(request.cancel, CancelOnStop::Set{&state->cancel.flag});
  state->run = quick->token->run;
  state->tile = quick->tile;
  state->formats = std::move(quick->formats);
  state->start = start;
  state->request_id = request.request_id;
  std::shared_ptr<const workers::CancelFlag> cancel(state, &state->cancel.flag);
  services.pool->RunAsync(
      std::move(call), std::move(cancel),
      [&services, respond = std::move(respond), state = std::move(state)](Result<workers::WorkerReply> reply) mutable {
        state->cancel.on_stop.reset();  // before the request (and its stop source) can end
        const bool heavy = reply.ok() && reply->payload && reply->payload->size() > kLightReplyBytes;
        state->reply.emplace(std::move(reply));
        respond(
            [&services, state = std::move(state)]() -> Response {
              const Result<workers::WorkerReply>& reply = *state->reply;
              Result<cache::CachedResult> result =
                  reply.ok() ? ResultOf(*reply, services, *state->run, state->tile, state->formats) : reply.status();
              if (!result.ok()) return http::ErrorResponse(result.status(), state->request_id);
              return RespondWith(*result, cache::CacheOutcome::kBypassed, state->start);
            },
            heavy);
      });
  return true;
}

// The code of a token's UDF, when the owner shared it with `include_code` (what
// fused.load("fsh_...") reads); otherwise the token runs the UDF without revealing it.
Result<Response> TokenUdf(const Request& request, Services& services) {
  std::string token(*request.PathParam("token"));
  ARROW_ASSIGN_OR_RAISE(udf::ResolvedToken resolved, services.registry->ResolveSharedToken(token));
  if (!resolved.settings.include_code && !resolved.is_public_name) {
    return PermissionDenied("This token runs its UDF without sharing its code (include_code is off)");
  }
  ARROW_ASSIGN_OR_RAISE(udf::UdfSpec spec, SpecOfVersion(services, resolved.owner, resolved.udf_name, resolved.version));
  json doc = {{"owner", resolved.owner}, {"name", spec.name}, {"version", resolved.version},
              {"code", spec.code}, {"entrypoint", spec.entrypoint}, {"headers", json::array()},
              {"metadata", json::parse(spec.metadata_json, nullptr, false)}};
  for (const auto& h : spec.headers) doc["headers"].push_back({{"module_name", h.module_name}, {"source_code", h.source_code}});
  return Response::Json(Dump(doc));
}

Result<Response> TileJson(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(auto run, RunOfToken(request, services));
  std::string host(request.headers.Find("Host").value_or("127.0.0.1"));
  std::string token(*request.PathParam("token"));
  std::string base = "http://" + host + std::string(kApiPrefix) + "/realtime-shared/" + token;
  json doc = {{"tilejson", "3.0.0"},
              {"name", run->spec.name},
              {"tiles", {base + "/run/tiles/{z}/{x}/{y}?dtype_out_vector=mvt"}},
              {"minzoom", 0},
              {"maxzoom", 22},
              {"bounds", {-180, -85.051129, 180, 85.051129}}};
  return Response::Json(Dump(doc));
}

// -- saved UDFs and posted code (API token) -------------------------------------------
Result<Response> RunSaved(const Request& request, Services& services, bool as_tile) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  std::string owner(*request.PathParam("owner"));
  std::string name(*request.PathParam("name"));
  ARROW_ASSIGN_OR_RAISE(udf::UdfEntry entry, services.registry->Get(owner, name));
  if (caller != owner && !entry.saved.is_public) {
    return NotFound("UDF '", owner, "/", name, "' not found");  // no hint that it exists
  }
  std::optional<tiles::Tile> tile;
  if (as_tile) {
    ARROW_ASSIGN_OR_RAISE(tile, TileFromPath(request));
  }
  Run run{std::move(entry.spec), entry.saved.version, UdfTag(owner, name)};
  run.max_age_seconds = DefaultMaxAge(run.spec, run.version);
  return RunAndRespond(request, services, run, tile);
}

Result<udf::UdfSpec> SpecFromJson(const json& udf_json) {
  if (!udf_json.is_object() || !udf_json.contains("code") || !udf_json["code"].is_string()) {
    return InvalidArgument("The UDF needs its 'code' (a string)");
  }
  udf::UdfSpec spec;
  spec.name = udf_json.value("name", "udf");
  spec.code = udf_json["code"].get<std::string>();
  spec.entrypoint = udf_json.value("entrypoint", "udf");
  for (const auto& header : udf_json.value("headers", json::array())) {
    if (!header.is_object() || !header.contains("module_name")) {
      return InvalidArgument("Each header module needs a 'module_name' and 'source_code'");
    }
    spec.headers.push_back({header["module_name"].get<std::string>(), header.value("source_code", "")});
  }
  if (udf_json.contains("metadata")) spec.metadata_json = Dump(udf_json["metadata"]);
  ARROW_RETURN_NOT_OK(udf::ValidateUdfSpec(spec));
  return spec;
}

Result<Response> RunCode(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(json body, ParseBody(request));
  Run run;
  ARROW_ASSIGN_OR_RAISE(run.spec, SpecFromJson(body.value("udf", json())));
  run.version = udf::UdfVersion(run.spec);
  run.tag = UdfTag(caller, "code");
  run.max_age_seconds = DefaultMaxAge(run.spec, run.version);
  // The body carries what a query string would: parameters and output formats.
  Request call = request;
  call.query.clear();
  const json parameters = body.value("parameters", json::object());  // outlives the loop below
  if (!parameters.is_object()) return InvalidArgument("'parameters' must be a JSON object");
  for (const auto& [name, value] : parameters.items()) {
    call.query.emplace_back(name, value.is_string() ? value.get<std::string>() : Dump(value));
  }
  for (const char* field : {"dtype_out_vector", "dtype_out_raster"}) {
    if (body.contains(field) && body[field].is_string()) call.query.emplace_back(field, body[field].get<std::string>());
  }
  if (body.contains("cache_max_age") && !body["cache_max_age"].is_null()) {
    const json& age = body["cache_max_age"];
    call.query.emplace_back("cache_max_age", age.is_string() ? age.get<std::string>() : Dump(age));
  }
  std::optional<tiles::Tile> tile;
  if (body.contains("tile") && body["tile"].is_array() && body["tile"].size() == 3) {
    tile = tiles::Tile{body["tile"][0].get<int64_t>(), body["tile"][1].get<int64_t>(), body["tile"][2].get<int>()};
    ARROW_RETURN_NOT_OK(tiles::ValidateTile(*tile));
  }
  return RunAndRespond(call, services, run, tile);
}

// -- management ----------------------------------------------------------------------
json SavedJson(const udf::SavedUdf& saved) {
  return {{"owner", saved.owner},           {"name", saved.name},
          {"version", saved.version},       {"public", saved.is_public},
          {"created_at", saved.created_at}, {"updated_at", saved.updated_at}};
}

Result<Response> SaveUdf(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(json body, ParseBody(request));
  ARROW_ASSIGN_OR_RAISE(udf::UdfSpec spec, SpecFromJson(body));
  ARROW_ASSIGN_OR_RAISE(udf::SavedUdf saved, services.registry->Save(owner, spec));
  if (body.contains("public") && body["public"].is_boolean()) {
    ARROW_RETURN_NOT_OK(services.registry->SetPublic(owner, saved.name, body["public"].get<bool>()));
    saved.is_public = body["public"].get<bool>();
  }
  return Response::Json(Dump(SavedJson(saved)), 201);
}

// Run in a worker by ImportGithubUdf: the SDK's own GitHub fetch and folder reading (what
// fused.load(url) does), returning the UDF as POST /udfs takes it, never executed.
constexpr std::string_view kGithubImportCode = R"(@fused.udf
def udf(url: str):
    from fused._load import github_document
    return github_document(url)
)";

// POST /udfs/github {"url", "name"?, "public"?}: fetches the UDF folder a GitHub URL names
// (the browser cannot: CORS) and saves it like POST /udfs.
Result<Response> ImportGithubUdf(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(json body, ParseBody(request));
  if (!body.contains("url") || !body["url"].is_string()) {
    return InvalidArgument("The body needs 'url': a GitHub URL such as "
                           "https://github.com/<owner>/<repo>/tree/<ref>/<folder>");
  }
  workers::WorkerRequest call;
  call.id = request.request_id;
  call.udf_name = "github_import";
  call.code = std::string(kGithubImportCode);
  call.udf_hash = HashHex(call.code);
  call.params = {{"url", body["url"].get<std::string>()}};
  workers::CancelFlag cancel{false};
  std::stop_callback on_cancel(request.cancel, [&cancel] { cancel = true; });
  ARROW_ASSIGN_OR_RAISE(workers::WorkerReply reply, services.pool->Run(call, &cancel));
  if (!reply.ok) {
    // The SDK's error classes say what went wrong: bad URL or folder, missing, or network.
    const std::string_view type = reply.error_type();
    std::string message(reply.error_message());
    if (auto colon = message.find(std::string(type) + ": "); !type.empty() && colon != std::string::npos) {
      message = message.substr(colon + type.size() + 2);
    }
    if (type == "NotFoundError") return NotFound(message);
    if (type == "InvalidArgumentError") return InvalidArgument(message);
    if (type == "EngineIOError") return Unavailable(message);
    return ReplyError(reply);
  }
  if (reply.kind != workers::ReplyKind::kJson) return Internal("The GitHub import answered no JSON");
  json doc = json::parse(reply.payload->ToString(), nullptr, /*allow_exceptions=*/false);
  if (body.contains("name") && body["name"].is_string() && !body["name"].get<std::string>().empty()) {
    doc["name"] = body["name"];
  }
  ARROW_ASSIGN_OR_RAISE(udf::UdfSpec spec, SpecFromJson(doc));
  ARROW_ASSIGN_OR_RAISE(udf::SavedUdf saved, services.registry->Save(owner, spec));
  if (body.contains("public") && body["public"].is_boolean()) {
    ARROW_RETURN_NOT_OK(services.registry->SetPublic(owner, saved.name, body["public"].get<bool>()));
    saved.is_public = body["public"].get<bool>();
  }
  return Response::Json(Dump(SavedJson(saved)), 201);
}

Result<Response> ListUdfs(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(auto saved, services.registry->List(owner));
  json list = json::array();
  for (const auto& s : saved) list.push_back(SavedJson(s));
  Response response = Response::Json(Dump(list));
  response.cacheable = false;
  return response;
}

Result<Response> GetUdf(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  std::string owner(*request.PathParam("owner"));
  std::string name(*request.PathParam("name"));
  ARROW_ASSIGN_OR_RAISE(udf::UdfEntry entry, services.registry->Get(owner, name));
  if (caller != owner && !entry.saved.is_public) return NotFound("UDF '", owner, "/", name, "' not found");
  json doc = SavedJson(entry.saved);
  doc["code"] = entry.spec.code;
  doc["entrypoint"] = entry.spec.entrypoint;
  doc["headers"] = json::array();
  for (const auto& h : entry.spec.headers) doc["headers"].push_back({{"module_name", h.module_name}, {"source_code", h.source_code}});
  doc["metadata"] = json::parse(entry.spec.metadata_json, nullptr, false);
  Response response = Response::Json(Dump(doc));
  response.cacheable = false;
  return response;
}

Result<Response> DeleteUdf(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  std::string owner(*request.PathParam("owner"));
  std::string name(*request.PathParam("name"));
  if (caller != owner) return PermissionDenied("Only the owner of '", owner, "/", name, "' can delete it");
  ARROW_RETURN_NOT_OK(services.registry->Delete(owner, name));
  ARROW_RETURN_NOT_OK(services.results->Purge(UdfTag(owner, name)));
  Response response;
  response.status = 204;
  return response;
}

Result<udf::TokenSettings> SettingsFromJson(const json& body, udf::TokenSettings settings) {
  if (body.contains("enabled")) settings.enabled = body["enabled"].get<bool>();
  if (body.contains("cache")) settings.cache = body["cache"].get<bool>();
  if (body.contains("cache_max_age") && !body["cache_max_age"].is_null()) {
    const json& age = body["cache_max_age"];
    ARROW_ASSIGN_OR_RAISE(double seconds, ParseDurationSeconds(age.is_string() ? age.get<std::string>() : Dump(age)));
    settings.cache_max_age_seconds = static_cast<int64_t>(seconds);
  }
  if (body.contains("scope")) {
    std::string scope = body["scope"].get<std::string>();
    if (scope != "public" && scope != "team") {
      return InvalidArgument("Invalid token scope '", scope, "': use 'public' or 'team'");
    }
    settings.scope = scope == "team" ? udf::TokenScope::kTeam : udf::TokenScope::kPublic;
  }
  if (body.contains("include_code")) settings.include_code = body["include_code"].get<bool>();
  if (body.contains("metadata")) settings.metadata_json = Dump(body["metadata"]);
  return settings;
}

json TokenJson(const std::string& token, const std::string& owner, const std::string& udf_name,
               const udf::TokenSettings& settings) {
  json doc = {{"token", token},
              {"owner", owner},
              {"udf", udf_name},
              {"enabled", settings.enabled},
              {"cache", settings.cache},
              {"scope", settings.scope == udf::TokenScope::kTeam ? "team" : "public"},
              {"include_code", settings.include_code},
              {"metadata", json::parse(settings.metadata_json, nullptr, false)}};
  doc["cache_max_age"] = settings.cache_max_age_seconds ? json(*settings.cache_max_age_seconds) : json(nullptr);
  return doc;
}

Result<Response> CreateToken(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(json body, ParseBody(request));
  if (!body.contains("udf") || !body["udf"].is_string()) {
    return InvalidArgument("A token needs the name of its UDF: {\"udf\": \"<name>\"}");
  }
  std::string name = body["udf"].get<std::string>();
  try {
    ARROW_ASSIGN_OR_RAISE(udf::TokenSettings settings, SettingsFromJson(body, {}));
    ARROW_ASSIGN_OR_RAISE(std::string token, services.registry->CreateSharedToken(owner, name, settings));
    return Response::Json(Dump(TokenJson(token, owner, name, settings)), 201);
  } catch (const json::exception& e) {
    return InvalidArgument("Invalid token settings: ", e.what());
  }
}

Result<Response> ListTokens(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(auto tokens, services.registry->ListSharedTokens(owner));
  json list = json::array();
  for (const auto& t : tokens) list.push_back(TokenJson(t.token, t.owner, t.udf_name, t.settings));
  Response response = Response::Json(Dump(list));
  response.cacheable = false;
  return response;
}

Result<Response> UpdateToken(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(json body, ParseBody(request));
  std::string token(*request.PathParam("token"));
  ARROW_ASSIGN_OR_RAISE(auto tokens, services.registry->ListSharedTokens(owner));
  auto it = std::find_if(tokens.begin(), tokens.end(), [&](const auto& t) { return t.token == token; });
  if (it == tokens.end()) return NotFound("Shared token '", token.substr(0, 8), "...' not found");
  try {
    ARROW_ASSIGN_OR_RAISE(udf::TokenSettings settings, SettingsFromJson(body, it->settings));
    ARROW_RETURN_NOT_OK(services.registry->UpdateSharedToken(owner, token, settings));
    return Response::Json(Dump(TokenJson(token, owner, it->udf_name, settings)));
  } catch (const json::exception& e) {
    return InvalidArgument("Invalid token settings: ", e.what());
  }
}

Result<Response> RevokeToken(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string owner, RequireOwner(request, services));
  ARROW_RETURN_NOT_OK(services.registry->RevokeSharedToken(owner, *request.PathParam("token")));
  Response response;
  response.status = 204;
  return response;
}

Result<Response> PurgeUdfCache(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  std::string owner(*request.PathParam("owner"));
  if (caller != owner) return PermissionDenied("Only the owner can purge the cache of its UDFs");
  ARROW_RETURN_NOT_OK(services.results->Purge(UdfTag(owner, *request.PathParam("name"))));
  Response response;
  response.status = 204;
  return response;
}

Result<Response> PurgeTokenCache(const Request& request, Services& services) {
  ARROW_ASSIGN_OR_RAISE(std::string caller, RequireOwner(request, services));
  ARROW_ASSIGN_OR_RAISE(udf::ResolvedToken resolved,
                        services.registry->ResolveSharedToken(*request.PathParam("token")));
  if (caller != resolved.owner) return PermissionDenied("Only the token's owner can purge its cache");
  ARROW_RETURN_NOT_OK(services.results->Purge(UdfTag(resolved.owner, resolved.udf_name)));
  Response response;
  response.status = 204;
  return response;
}

}  // namespace

Result<double> ParseDurationSeconds(std::string_view text) {
  std::string_view number = text;
  double unit = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's': unit = 1; number.remove_suffix(1); break;
      case 'm': unit = 60; number.remove_suffix(1); break;
      case 'h': unit = 3600; number.remove_suffix(1); break;
      case 'd': unit = 86400; number.remove_suffix(1); break;
      default: break;
    }
  }
  double value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (number.empty() || ec != std::errc() || end != number.data() + number.size() || value < 0 ||
      !std::isfinite(value)) {
    return InvalidArgument("Invalid cache_max_age '", text, "': use seconds or e.g. '30s', '12h', '90d'");
  }
  return value * unit;
}

Status RegisterUdfRoutes(http::Router& router) {
  ARROW_RETURN_NOT_OK(router.Add(
      "GET", Route("/realtime-shared/{token}/run/file"),
      [](const Request& r, Services& s) { return RunShared(r, s, false); },
      [](const Request& r, Services& s) { return CachedShared(r, s, false); },
      [](const Request& r, Services& s, http::Respond respond) { return StartShared(r, s, std::move(respond), false); }));
  ARROW_RETURN_NOT_OK(router.Add(
      "GET", Route("/realtime-shared/{token}/run/tiles/{z}/{x}/{y}[.ext]"),
      [](const Request& r, Services& s) { return RunShared(r, s, true); },
      [](const Request& r, Services& s) { return CachedShared(r, s, true); },
      [](const Request& r, Services& s, http::Respond respond) { return StartShared(r, s, std::move(respond), true); }));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/realtime-shared/{token}/tilejson"), TileJson));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/realtime-shared/{token}/udf"), TokenUdf));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/realtime/fused/api/v1/run/udf/saved/{owner}/{name}"),
                                 [](const Request& r, Services& s) { return RunSaved(r, s, false); }));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/realtime/fused/api/v1/run/udf/saved/{owner}/{name}/tiles/{z}/{x}/{y}[.ext]"),
                                 [](const Request& r, Services& s) { return RunSaved(r, s, true); }));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/realtime/fused/api/v1/run/udf/code"), RunCode));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/udfs"), SaveUdf));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/udfs/github"), ImportGithubUdf));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/udfs"), ListUdfs));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/udfs/{owner}/{name}"), GetUdf));
  ARROW_RETURN_NOT_OK(router.Add("DELETE", Route("/udfs/{owner}/{name}"), DeleteUdf));
  ARROW_RETURN_NOT_OK(router.Add("POST", Route("/tokens"), CreateToken));
  ARROW_RETURN_NOT_OK(router.Add("GET", Route("/tokens"), ListTokens));
  ARROW_RETURN_NOT_OK(router.Add("PATCH", Route("/tokens/{token}"), UpdateToken));
  ARROW_RETURN_NOT_OK(router.Add("DELETE", Route("/tokens/{token}"), RevokeToken));
  ARROW_RETURN_NOT_OK(router.Add("DELETE", Route("/cache/udfs/{owner}/{name}"), PurgeUdfCache));
  ARROW_RETURN_NOT_OK(router.Add("DELETE", Route("/cache/tokens/{token}"), PurgeTokenCache));
  return Status::OK();
}

}  // namespace terrafuse::routes
