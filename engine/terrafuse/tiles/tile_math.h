// Web-mercator XYZ tile math: tile <-> bounds, covering, parents and children, quadkeys.
//
// Results equal those of the Python package `mercantile` 1.2 (the peer terrafuse is tested
// against), bit for bit: the same formulas are evaluated in the same order with the same
// libm. Where mercantile returns an invalid tile or a meaningless answer instead of an error,
// terrafuse returns an InvalidArgument error naming the value and the valid range, or a valid
// tile; each such difference is listed on the function concerned and in the docstring of
// python/fused/tiles.py.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::tiles {

/// The largest zoom level accepted anywhere (x and y then need 30 bits).
constexpr int kMaxZoom = 30;

/// The default cap on the number of tiles one call may generate (Tiles, TilesArray,
/// Children). 2^26 tiles are 1.5 GiB as an (N, 3) int64 array; a whole-world cover at zoom
/// 16 (2^32 tiles) is refused instead of exhausting memory.
constexpr int64_t kDefaultMaxTiles = int64_t{1} << 26;

/// The latitude range safe for every function: beyond it, within about 6e-7 degrees of a
/// pole, web mercator y overflows (mercantile raises InvalidLatitudeError there).
constexpr double kMaxSafeLatitude = 89.9999993;

/// The latitude at which mercantile clamps covering bounds (north edge of the map, rounded).
constexpr double kCoverMaxLatitude = 85.051129;

/// An XYZ tile: column x and row y (from the north-west corner) at zoom z.
struct Tile {
  int64_t x = 0;
  int64_t y = 0;
  int z = 0;

  friend bool operator==(const Tile&, const Tile&) = default;
};

/// A geographic bounding box in decimal degrees. west > east means the box crosses the
/// antimeridian.
struct LngLatBounds {
  double west = 0;
  double south = 0;
  double east = 0;
  double north = 0;
};

/// A web mercator (EPSG:3857) bounding box in meters.
struct MercatorBounds {
  double left = 0;
  double bottom = 0;
  double right = 0;
  double top = 0;
};

/// Tiles as a row-major (num_tiles, 3) array of int64 x, y, z: the layout numpy and Arrow
/// take over without a copy.
struct TileArray {
  std::unique_ptr<int64_t[]> xyz;
  int64_t num_tiles = 0;
};

/// \brief Render a tile as "z/x/y", the order of tile URLs.
std::string ToString(const Tile& tile);

/// \brief Check that 0 <= zoom <= kMaxZoom.
Status ValidateZoom(int zoom);

/// \brief Check the zoom and that 0 <= x, y < 2^z.
Status ValidateTile(const Tile& tile);

/// \brief Return the geographic bounds of a tile (mercantile.bounds).
Result<LngLatBounds> Bounds(const Tile& tile);

/// \brief Return the web mercator bounds of a tile in meters (mercantile.xy_bounds).
Result<MercatorBounds> XyBounds(const Tile& tile);

/// \brief Return the tile containing a point at a zoom (mercantile.tile).
///
/// Longitudes beyond +-180 fall in the first or last column, latitudes beyond the edge of the
/// map (+-85.0511) in the first or last row, as in mercantile. A point less than 1e-14 (in
/// units of the world width) west of a tile edge counts in the next tile, as in mercantile.
/// Differences: mercantile returns x or y = 2^z (an invalid tile) for points within that
/// epsilon of the east or south edge of the map; this returns 2^z - 1. A non-finite value or
/// a latitude outside [-90, 90] is an error (mercantile clamps infinite longitudes and
/// returns a meaningless tile for such latitudes). A latitude within about 6e-7 degrees of a
/// pole is an error in both (mercantile raises InvalidLatitudeError).
Result<Tile> TileAt(double lng, double lat, int zoom);

/// \brief Return the number of tiles Tiles() yields, without generating them.
Result<int64_t> CountTiles(const LngLatBounds& bounds, std::span<const int> zooms);

/// \brief Return the tiles overlapping bounds at each zoom (mercantile.tiles).
///
/// Semantics and order are mercantile's: bounds with west > east are split at the
/// antimeridian into [-180, east] and [west, 180], in that order; longitudes are clamped to
/// [-180, 180] and latitudes to [-85.051129, 85.051129]; east and south are moved inwards by
/// 1e-11 degrees so the bounds of a tile yield that one tile; for each part, for each zoom
/// (repeated zooms repeat), tiles are listed column by column (x outer, y inner).
/// Errors: a non-finite coordinate, a latitude outside [-90, 90], south > north, a bad zoom,
/// south within about 6e-7 degrees of the north pole (mercantile raises there too), or more
/// than max_tiles tiles in all.
Result<std::vector<Tile>> Tiles(const LngLatBounds& bounds, std::span<const int> zooms,
                                int64_t max_tiles = kDefaultMaxTiles);

/// \brief Return the same tiles as Tiles(), in the same order, as a flat x, y, z array.
Result<TileArray> TilesArray(const LngLatBounds& bounds, std::span<const int> zooms,
                             int64_t max_tiles = kDefaultMaxTiles);

/// \brief Return the smallest tile containing bounds (mercantile.bounding_tile).
///
/// As in mercantile, zoom is at most 28, bounds touching a pole give tile 0/0/0, and bounds
/// that straddle the equator or the prime meridian give 0/0/0 (no smaller tile contains
/// them). Differences: bounds with west > east cross the antimeridian, which no tile but
/// 0/0/0 contains, so this returns 0/0/0 (mercantile returns the tile spanning east..west).
/// A non-finite value, a latitude outside [-90, 90] or south > north is an error.
Result<Tile> BoundingTile(const LngLatBounds& bounds);

/// \brief Return the parent of a tile one zoom up (mercantile.parent).
///
/// Tile 0/0/0 has no parent: an error here (mercantile returns None).
Result<Tile> Parent(const Tile& tile);

/// \brief Return the ancestor of a tile at a zoom in [0, tile.z - 1].
Result<Tile> Parent(const Tile& tile, int zoom);

/// \brief Return the four children of a tile (mercantile.children): top-left, top-right,
/// bottom-right, bottom-left.
Result<std::vector<Tile>> Children(const Tile& tile);

/// \brief Return the descendants of a tile at a zoom in [tile.z, kMaxZoom], in mercantile's
/// depth-first clockwise order (zoom == tile.z gives the tile itself).
Result<std::vector<Tile>> Children(const Tile& tile, int zoom,
                                   int64_t max_tiles = kDefaultMaxTiles);

/// \brief Return the quadkey of a tile: z digits 0-3, "" for zoom 0 (mercantile.quadkey).
Result<std::string> Quadkey(const Tile& tile);

/// \brief Return the tile of a quadkey; "" is tile 0/0/0 (mercantile.quadkey_to_tile).
///
/// A digit other than 0-3, or more than kMaxZoom digits, is an error.
Result<Tile> QuadkeyToTile(std::string_view quadkey);

/// \brief Estimate the zoom at which bounds fill about target_num_tiles tiles.
///
/// This is the rule of `estimate_zoom` in the Fused public catalog (`common.py`):
/// - target_num_tiles == 1: from zoom 20 down to 1, the first zoom at which the tile
///   containing the bounds' center is at least as wide and as tall (in degrees) as the
///   bounds, less 1e-11; 1 if none is. The result is in [1, 20]: never 0.
/// - target_num_tiles > 1: zoom = floor(20 + log2(sqrt(n) / d)), where d is the larger of the
///   bounds' width and height in zoom-20 tiles (latitudes clamped to +-89.9999993); then
///   zoom + 1 if the bounds cover fewer than n tiles at zoom (counted as Tiles() does; Fused
///   counts the tiles that intersect the box, which is the same for a box). Clamped to
///   [0, kMaxZoom]. For west > east the width wraps across the antimeridian (Fused would
///   compute a negative width).
Result<int> EstimateZoom(const LngLatBounds& bounds, int64_t target_num_tiles = 1);

}  // namespace terrafuse::tiles
