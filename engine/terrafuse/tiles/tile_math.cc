#include "terrafuse/tiles/tile_math.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>

// Every formula below mirrors mercantile 1.2 operation for operation (same constants, same
// evaluation order, same libm calls), so results are bit-identical to the Python peer. Keep
// it that way: do not "simplify" an expression, and do not build this file with
// -ffast-math or FMA contraction (-ffp-contract=fast with -mfma).

namespace terrafuse::tiles {
namespace {

constexpr double kPi = std::numbers::pi;  // == math.pi
constexpr double kEarthRadius = 6378137.0;
constexpr double kCircumference = 2 * kPi * kEarthRadius;  // (2 * pi) * RE, as in mercantile
constexpr double kDegToRad = kPi / 180.0;                  // math.radians multiplies by this
constexpr double kRadToDeg = 180.0 / kPi;                  // math.degrees multiplies by this
constexpr double kEpsilon = 1e-14;    // mercantile.EPSILON: tile-edge tolerance in world units
constexpr double kLngLatEpsilon = 1e-11;  // mercantile.LL_EPSILON, in degrees
// mercantile.bounding_tile works on zoom-32 tile indexes and stops at zoom 28.
constexpr int kBoundingTileIndexZoom = 32;
constexpr int kBoundingTileMaxZoom = 28;

// Shortest round-trip rendering of a double ("90", "0.1", "nan"), for messages.
std::string Num(double value) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "?";
  return std::string(buf, end);
}

// Two lowercase hex digits of a byte, for messages about unprintable characters.
std::string Hex(char c) {
  static constexpr char kDigits[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(c);
  return {kDigits[byte >> 4], kDigits[byte & 15]};
}

// 2^zoom as a double (math.pow(2, zoom) in mercantile; exact).
double ZoomScale(int zoom) { return std::ldexp(1.0, zoom); }

Status CheckFinite(const char* name, double value) {
  if (!std::isfinite(value)) {
    return InvalidArgument("Invalid ", name, "=", Num(value), ": must be a finite number");
  }
  return Status::OK();
}

Status CheckLatitude(const char* name, double value) {
  ARROW_RETURN_NOT_OK(CheckFinite(name, value));
  if (value < -90.0 || value > 90.0) {
    return InvalidArgument("Invalid ", name, "=", Num(value),
                           ": latitude must be between -90 and 90");
  }
  return Status::OK();
}

Status CheckBounds(const LngLatBounds& b) {
  ARROW_RETURN_NOT_OK(CheckFinite("west", b.west));
  ARROW_RETURN_NOT_OK(CheckFinite("east", b.east));
  ARROW_RETURN_NOT_OK(CheckLatitude("south", b.south));
  ARROW_RETURN_NOT_OK(CheckLatitude("north", b.north));
  if (b.south > b.north) {
    return InvalidArgument("Invalid bounds south=", Num(b.south), " north=", Num(b.north),
                           ": south must be less than or equal to north");
  }
  return Status::OK();
}

Status CheckMaxTiles(int64_t count, int64_t max_tiles, const std::string& what) {
  if (count > max_tiles) {
    return InvalidArgument("Too many tiles: ", what, " has ", count, " tiles, more than max_tiles=",
                           max_tiles, "; use a lower zoom or smaller bounds, or raise max_tiles");
  }
  return Status::OK();
}

// Tile indexes exactly as mercantile.tile computes them (before building the Tile). Unlike
// TileAt, an index may equal 2^zoom, and zoom may be up to 32 (bounding_tile uses 32).
struct RawIndex {
  int64_t x;
  int64_t y;
};

Result<RawIndex> RawTileIndex(double lng, double lat, int zoom) {
  // mercantile._xy
  double x = lng / 360.0 + 0.5;
  double sinlat = std::sin(lat * kDegToRad);
  double denominator = 1.0 - sinlat;
  double ratio = denominator == 0.0 ? 0.0 : (1.0 + sinlat) / denominator;
  if (denominator == 0.0 || !(ratio > 0.0)) {
    // mercantile raises InvalidLatitudeError("Y can not be computed") here.
    return InvalidArgument("Invalid latitude lat=", Num(lat),
                           ": web mercator y is infinite at the poles; latitude must be between -",
                           Num(kMaxSafeLatitude), " and ", Num(kMaxSafeLatitude));
  }
  double y = 0.5 - 0.25 * std::log(ratio) / kPi;
  // mercantile.tile
  double z2 = ZoomScale(zoom);
  RawIndex index;
  if (x <= 0) {
    index.x = 0;
  } else if (x >= 1) {
    index.x = static_cast<int64_t>(z2 - 1);
  } else {
    index.x = static_cast<int64_t>(std::floor((x + kEpsilon) * z2));
  }
  if (y <= 0) {
    index.y = 0;
  } else if (y >= 1) {
    index.y = static_cast<int64_t>(z2 - 1);
  } else {
    index.y = static_cast<int64_t>(std::floor((y + kEpsilon) * z2));
  }
  return index;
}

// One rectangle of tiles at one zoom; empty when max < min.
struct TileRange {
  int64_t min_x;
  int64_t min_y;
  int64_t max_x;
  int64_t max_y;
  int z;

  int64_t Count() const {
    if (max_x < min_x || max_y < min_y) return 0;
    return (max_x - min_x + 1) * (max_y - min_y + 1);
  }
};

// The ranges mercantile.tiles iterates, in its order (part outer, zoom inner).
Result<std::vector<TileRange>> CoverRanges(const LngLatBounds& bounds, std::span<const int> zooms) {
  ARROW_RETURN_NOT_OK(CheckBounds(bounds));
  for (int z : zooms) ARROW_RETURN_NOT_OK(ValidateZoom(z));
  LngLatBounds parts[2];
  int num_parts = 0;
  if (bounds.west > bounds.east) {
    parts[num_parts++] = {-180.0, bounds.south, bounds.east, bounds.north};
    parts[num_parts++] = {bounds.west, bounds.south, 180.0, bounds.north};
  } else {
    parts[num_parts++] = bounds;
  }
  std::vector<TileRange> ranges;
  ranges.reserve(static_cast<size_t>(num_parts) * zooms.size());
  for (int p = 0; p < num_parts; ++p) {
    // Clamp as mercantile does: max(-180.0, w), max(-85.051129, s), ...
    double w = std::max(-180.0, parts[p].west);
    double s = std::max(-kCoverMaxLatitude, parts[p].south);
    double e = std::min(180.0, parts[p].east);
    double n = std::min(kCoverMaxLatitude, parts[p].north);
    for (int z : zooms) {
      ARROW_ASSIGN_OR_RAISE(RawIndex ul, RawTileIndex(w, n, z));
      ARROW_ASSIGN_OR_RAISE(RawIndex lr, RawTileIndex(e - kLngLatEpsilon, s + kLngLatEpsilon, z));
      ranges.push_back({ul.x, ul.y, lr.x, lr.y, z});
    }
  }
  return ranges;
}

Result<int64_t> CountRanges(const std::vector<TileRange>& ranges) {
  int64_t total = 0;
  for (const TileRange& r : ranges) {
    // Each range has at most 2^60 tiles; a sum past 2^62 only happens with many zooms.
    int64_t count = r.Count();
    if (total > (int64_t{1} << 62) - count) {
      return InvalidArgument("Too many tiles: the bounds cover more than 2^62 tiles");
    }
    total += count;
  }
  return total;
}

std::string DescribeCover(const LngLatBounds& b, std::span<const int> zooms) {
  std::string text = "the cover of bounds (" + Num(b.west) + ", " + Num(b.south) + ", " +
                     Num(b.east) + ", " + Num(b.north) + ") at zoom";
  for (size_t i = 0; i < zooms.size(); ++i) {
    text += (i == 0 ? " " : ", ") + std::to_string(zooms[i]);
  }
  return text;
}

// Child offsets in mercantile's clockwise order: top-left, top-right, bottom-right, bottom-left.
constexpr int kChildDx[4] = {0, 1, 1, 0};
constexpr int kChildDy[4] = {0, 0, 1, 1};

}  // namespace

std::string ToString(const Tile& tile) {
  return std::to_string(tile.z) + "/" + std::to_string(tile.x) + "/" + std::to_string(tile.y);
}

Status ValidateZoom(int zoom) {
  if (zoom < 0 || zoom > kMaxZoom) {
    return InvalidArgument("Invalid zoom z=", zoom, ": zoom must be between 0 and ", kMaxZoom);
  }
  return Status::OK();
}

Status ValidateTile(const Tile& tile) {
  if (tile.z < 0 || tile.z > kMaxZoom) {
    return InvalidArgument("Invalid tile z=", tile.z, " x=", tile.x, " y=", tile.y,
                           ": zoom must be between 0 and ", kMaxZoom);
  }
  int64_t max_index = (int64_t{1} << tile.z) - 1;
  if (tile.x < 0 || tile.x > max_index) {
    return InvalidArgument("Invalid tile z=", tile.z, " x=", tile.x, " y=", tile.y,
                           ": x must be between 0 and ", max_index, " at zoom ", tile.z);
  }
  if (tile.y < 0 || tile.y > max_index) {
    return InvalidArgument("Invalid tile z=", tile.z, " x=", tile.x, " y=", tile.y,
                           ": y must be between 0 and ", max_index, " at zoom ", tile.z);
  }
  return Status::OK();
}

Result<LngLatBounds> Bounds(const Tile& tile) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  double z2 = ZoomScale(tile.z);
  double x = static_cast<double>(tile.x);
  double x1 = static_cast<double>(tile.x + 1);
  LngLatBounds b;
  b.west = x / z2 * 360.0 - 180.0;
  double y2 = static_cast<double>(2 * tile.y);
  double y2_next = static_cast<double>(2 * (tile.y + 1));
  b.north = std::atan(std::sinh(kPi * (1 - y2 / z2))) * kRadToDeg;
  b.east = x1 / z2 * 360.0 - 180.0;
  b.south = std::atan(std::sinh(kPi * (1 - y2_next / z2))) * kRadToDeg;
  return b;
}

Result<MercatorBounds> XyBounds(const Tile& tile) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  double tile_size = kCircumference / ZoomScale(tile.z);
  MercatorBounds b;
  b.left = static_cast<double>(tile.x) * tile_size - kCircumference / 2;
  b.right = b.left + tile_size;
  b.top = kCircumference / 2 - static_cast<double>(tile.y) * tile_size;
  b.bottom = b.top - tile_size;
  return b;
}

Result<Tile> TileAt(double lng, double lat, int zoom) {
  ARROW_RETURN_NOT_OK(ValidateZoom(zoom));
  ARROW_RETURN_NOT_OK(CheckFinite("lng", lng));
  ARROW_RETURN_NOT_OK(CheckLatitude("lat", lat));
  ARROW_ASSIGN_OR_RAISE(RawIndex index, RawTileIndex(lng, lat, zoom));
  int64_t max_index = (int64_t{1} << zoom) - 1;
  return Tile{std::min(index.x, max_index), std::min(index.y, max_index), zoom};
}

Result<int64_t> CountTiles(const LngLatBounds& bounds, std::span<const int> zooms) {
  ARROW_ASSIGN_OR_RAISE(std::vector<TileRange> ranges, CoverRanges(bounds, zooms));
  return CountRanges(ranges);
}

Result<std::vector<Tile>> Tiles(const LngLatBounds& bounds, std::span<const int> zooms,
                                int64_t max_tiles) {
  ARROW_ASSIGN_OR_RAISE(std::vector<TileRange> ranges, CoverRanges(bounds, zooms));
  ARROW_ASSIGN_OR_RAISE(int64_t total, CountRanges(ranges));
  ARROW_RETURN_NOT_OK(CheckMaxTiles(total, max_tiles, DescribeCover(bounds, zooms)));
  std::vector<Tile> tiles;
  tiles.reserve(static_cast<size_t>(total));
  for (const TileRange& r : ranges) {
    if (r.Count() == 0) continue;
    for (int64_t x = r.min_x; x <= r.max_x; ++x) {
      for (int64_t y = r.min_y; y <= r.max_y; ++y) tiles.push_back({x, y, r.z});
    }
  }
  return tiles;
}

Result<TileArray> TilesArray(const LngLatBounds& bounds, std::span<const int> zooms,
                             int64_t max_tiles) {
  ARROW_ASSIGN_OR_RAISE(std::vector<TileRange> ranges, CoverRanges(bounds, zooms));
  ARROW_ASSIGN_OR_RAISE(int64_t total, CountRanges(ranges));
  ARROW_RETURN_NOT_OK(CheckMaxTiles(total, max_tiles, DescribeCover(bounds, zooms)));
  TileArray array;
  array.num_tiles = total;
  array.xyz = std::make_unique_for_overwrite<int64_t[]>(static_cast<size_t>(total) * 3);
  int64_t* out = array.xyz.get();
  for (const TileRange& r : ranges) {
    if (r.Count() == 0) continue;
    const int64_t z = r.z;
    for (int64_t x = r.min_x; x <= r.max_x; ++x) {
      for (int64_t y = r.min_y; y <= r.max_y; ++y) {
        out[0] = x;
        out[1] = y;
        out[2] = z;
        out += 3;
      }
    }
  }
  return array;
}

Result<Tile> BoundingTile(const LngLatBounds& bounds) {
  ARROW_RETURN_NOT_OK(CheckBounds(bounds));
  // No tile but the root contains bounds that cross the antimeridian.
  if (bounds.west > bounds.east) return Tile{0, 0, 0};
  double e = bounds.east - kLngLatEpsilon;
  double s = bounds.south + kLngLatEpsilon;
  Result<RawIndex> top_left = RawTileIndex(bounds.west, bounds.north, kBoundingTileIndexZoom);
  Result<RawIndex> bottom_right = RawTileIndex(e, s, kBoundingTileIndexZoom);
  // mercantile catches InvalidLatitudeError (a pole) and answers the root tile.
  if (!top_left.ok() || !bottom_right.ok()) return Tile{0, 0, 0};
  // mercantile._getBboxZoom: the first zoom at which the corners fall in different tiles.
  const int64_t cell[4] = {top_left->x, top_left->y, bottom_right->x, bottom_right->y};
  int z = kBoundingTileMaxZoom;
  for (int level = 0; level < kBoundingTileMaxZoom; ++level) {
    int64_t mask = int64_t{1} << (kBoundingTileIndexZoom - (level + 1));
    if ((cell[0] & mask) != (cell[2] & mask) || (cell[1] & mask) != (cell[3] & mask)) {
      z = level;
      break;
    }
  }
  if (z == 0) return Tile{0, 0, 0};
  // mercantile.rshift: (val % 2^32) >> (32 - z)
  const int64_t wrap = int64_t{1} << kBoundingTileIndexZoom;
  int64_t x = (cell[0] % wrap) >> (kBoundingTileIndexZoom - z);
  int64_t y = (cell[1] % wrap) >> (kBoundingTileIndexZoom - z);
  return Tile{x, y, z};
}

Result<Tile> Parent(const Tile& tile) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  if (tile.z == 0) {
    return InvalidArgument("Invalid tile z=0 x=0 y=0: the root tile has no parent");
  }
  return Parent(tile, tile.z - 1);
}

Result<Tile> Parent(const Tile& tile, int zoom) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  if (zoom < 0 || zoom >= tile.z) {
    if (tile.z == 0) {
      return InvalidArgument("Invalid parent zoom=", zoom, " for tile ", ToString(tile),
                             ": the root tile has no parent");
    }
    return InvalidArgument("Invalid parent zoom=", zoom, " for tile ", ToString(tile),
                           ": zoom must be between 0 and ", tile.z - 1);
  }
  int shift = tile.z - zoom;
  return Tile{tile.x >> shift, tile.y >> shift, zoom};
}

Result<std::vector<Tile>> Children(const Tile& tile) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  if (tile.z == kMaxZoom) {
    return InvalidArgument("Invalid tile ", ToString(tile), ": tiles at zoom ", kMaxZoom,
                           " have no children (the maximum zoom is ", kMaxZoom, ")");
  }
  return Children(tile, tile.z + 1);
}

Result<std::vector<Tile>> Children(const Tile& tile, int zoom, int64_t max_tiles) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  if (zoom < tile.z || zoom > kMaxZoom) {
    return InvalidArgument("Invalid children zoom=", zoom, " for tile ", ToString(tile),
                           ": zoom must be between ", tile.z, " and ", kMaxZoom);
  }
  const int depth = zoom - tile.z;
  if (depth >= 31 || (int64_t{1} << (2 * depth)) > max_tiles) {
    return InvalidArgument("Too many tiles: the children of tile ", ToString(tile), " at zoom ",
                           zoom, " are 4^", depth, " tiles, more than max_tiles=", max_tiles,
                           "; use a lower zoom or raise max_tiles");
  }
  const int64_t count = int64_t{1} << (2 * depth);
  std::vector<Tile> children;
  children.reserve(static_cast<size_t>(count));
  // The i-th child in mercantile's order reads i in base 4, most significant digit first,
  // each digit picking a quadrant of the tile above.
  for (int64_t i = 0; i < count; ++i) {
    int64_t x = tile.x;
    int64_t y = tile.y;
    for (int level = depth - 1; level >= 0; --level) {
      int digit = static_cast<int>((i >> (2 * level)) & 3);
      x = 2 * x + kChildDx[digit];
      y = 2 * y + kChildDy[digit];
    }
    children.push_back({x, y, zoom});
  }
  return children;
}

Result<std::string> Quadkey(const Tile& tile) {
  ARROW_RETURN_NOT_OK(ValidateTile(tile));
  std::string key(static_cast<size_t>(tile.z), '0');
  for (int z = tile.z; z > 0; --z) {
    int64_t mask = int64_t{1} << (z - 1);
    int digit = ((tile.x & mask) ? 1 : 0) + ((tile.y & mask) ? 2 : 0);
    key[static_cast<size_t>(tile.z - z)] = static_cast<char>('0' + digit);
  }
  return key;
}

Result<Tile> QuadkeyToTile(std::string_view quadkey) {
  if (quadkey.size() > static_cast<size_t>(kMaxZoom)) {
    return InvalidArgument("Invalid quadkey '", quadkey, "': it has ", quadkey.size(),
                           " digits, more than the maximum zoom ", kMaxZoom);
  }
  Tile tile{0, 0, static_cast<int>(quadkey.size())};
  for (size_t i = 0; i < quadkey.size(); ++i) {
    char c = quadkey[i];
    if (c < '0' || c > '3') {
      std::string shown = (c >= 0x20 && c < 0x7f) ? std::string(1, c) : "\\x" + Hex(c);
      return InvalidArgument("Invalid quadkey '", quadkey, "': character '", shown,
                             "' at position ", i, " is not a quadkey digit (0, 1, 2 or 3)");
    }
    int digit = c - '0';
    tile.x = 2 * tile.x + (digit & 1);
    tile.y = 2 * tile.y + (digit >> 1);
  }
  return tile;
}

Result<int> EstimateZoom(const LngLatBounds& bounds, int64_t target_num_tiles) {
  ARROW_RETURN_NOT_OK(CheckBounds(bounds));
  if (target_num_tiles < 1) {
    return InvalidArgument("Invalid target_num_tiles=", target_num_tiles, ": must be at least 1");
  }
  const double minx = bounds.west;
  const double miny = bounds.south;
  const double maxx = bounds.east;
  const double maxy = bounds.north;
  constexpr int kEstimateMaxZoom = 20;
  if (target_num_tiles == 1) {
    const double center_lng = (minx + maxx) / 2;
    const double center_lat = (miny + maxy) / 2;
    const double width = (maxx - minx) - 1e-11;
    const double height = (maxy - miny) - 1e-11;
    int z = kEstimateMaxZoom;
    for (; z > 0; --z) {
      ARROW_ASSIGN_OR_RAISE(Tile tile, TileAt(center_lng, center_lat, z));
      ARROW_ASSIGN_OR_RAISE(LngLatBounds tb, Bounds(tile));
      if (width <= (tb.east - tb.west) && height <= (tb.north - tb.south)) break;
    }
    return std::max(z, 1);  // Fused's loop leaves z at 1 when no zoom fits
  }
  const double s = std::max(miny, -kMaxSafeLatitude);
  const double n = std::min(maxy, kMaxSafeLatitude);
  ARROW_ASSIGN_OR_RAISE(RawIndex top_left, RawTileIndex(minx, n, kEstimateMaxZoom));
  ARROW_ASSIGN_OR_RAISE(RawIndex bottom_right, RawTileIndex(maxx, s, kEstimateMaxZoom));
  int64_t delta_x = bottom_right.x - top_left.x + 1;
  if (minx > maxx) delta_x += int64_t{1} << kEstimateMaxZoom;  // wraps the antimeridian
  const int64_t delta_y = bottom_right.y - top_left.y + 1;
  const double extent = static_cast<double>(std::max(delta_x, delta_y));
  double estimate = std::log2(std::sqrt(static_cast<double>(target_num_tiles)) / extent) +
                    kEstimateMaxZoom;
  int zoom = static_cast<int>(std::clamp(std::floor(estimate), 0.0, double{kMaxZoom}));
  const int zooms[1] = {zoom};
  ARROW_ASSIGN_OR_RAISE(int64_t count, CountTiles(bounds, zooms));
  if (count < target_num_tiles && zoom < kMaxZoom) ++zoom;
  return zoom;
}

}  // namespace terrafuse::tiles
