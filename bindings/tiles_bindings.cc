// fused._core.tiles: web-mercator tile math (engine/terrafuse/tiles/tile_math.h), wrapped by
// python/fused/tiles.py. Tiles cross as (x, y, z) tuples, bounds as 4-tuples, and covers as
// (N, 3) int64 numpy arrays that own the engine's buffer (no copy, no per-tile objects) or
// as lists of the caller's Tile namedtuple built here.
#include <nanobind/ndarray.h>

#include "binding_core.h"
#include "terrafuse/tiles/tile_math.h"

namespace terrafuse::bindings {

namespace {

using tiles::LngLatBounds;
using tiles::Tile;
using tiles::TileArray;

using TileTuple = std::tuple<int64_t, int64_t, int>;
using BoundsTuple = std::tuple<double, double, double, double>;
using XyzArray = nb::ndarray<nb::numpy, int64_t, nb::shape<-1, 3>, nb::c_contig>;

TileTuple ToTuple(const Tile& t) { return {t.x, t.y, t.z}; }

// Hands the engine's buffer to numpy: the capsule frees it when the array dies.
XyzArray ToNumpy(TileArray array) {
  int64_t* data = array.xyz.release();
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<int64_t*>(p); });
  return XyzArray(data, {static_cast<size_t>(array.num_tiles), 3}, owner);
}

// Builds a list of `tile_type` (a tuple subclass with fields x, y, z, such as the namedtuple
// fused.tiles.Tile) straight from the engine's array: 5x faster than building tuples
// and converting them in Python. Allocating with tp_alloc and filling the items is what
// tuple.__new__ does for subclasses, minus the argument parsing.
nb::list ToTileList(const TileArray& array, nb::handle tile_type) {
  if (!PyType_Check(tile_type.ptr()) ||
      !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(tile_type.ptr()), &PyTuple_Type)) {
    throw nb::type_error("tile_type must be a subclass of tuple");
  }
  auto* type = reinterpret_cast<PyTypeObject*>(tile_type.ptr());
  nb::list list = nb::steal<nb::list>(PyList_New(static_cast<Py_ssize_t>(array.num_tiles)));
  if (!list.is_valid()) throw nb::python_error();
  nb::object x_obj;
  nb::object z_obj;
  int64_t x_value = -1;
  int64_t z_value = -1;
  const int64_t* row = array.xyz.get();
  for (int64_t i = 0; i < array.num_tiles; ++i, row += 3) {
    // Neighbouring rows share x and z: reuse those int objects.
    if (row[0] != x_value || !x_obj.is_valid()) {
      x_value = row[0];
      x_obj = nb::steal(PyLong_FromLongLong(x_value));
    }
    if (row[2] != z_value || !z_obj.is_valid()) {
      z_value = row[2];
      z_obj = nb::steal(PyLong_FromLongLong(z_value));
    }
    PyObject* y_obj = PyLong_FromLongLong(row[1]);
    if (!x_obj.is_valid() || !z_obj.is_valid() || y_obj == nullptr) throw nb::python_error();
    PyObject* tile = type->tp_alloc(type, 3);
    if (tile == nullptr) {
      Py_DECREF(y_obj);
      throw nb::python_error();
    }
    PyTuple_SET_ITEM(tile, 0, x_obj.inc_ref().ptr());
    PyTuple_SET_ITEM(tile, 1, y_obj);
    PyTuple_SET_ITEM(tile, 2, z_obj.inc_ref().ptr());
    PyList_SET_ITEM(list.ptr(), static_cast<Py_ssize_t>(i), tile);
  }
  return list;
}

TileArray ToTileArray(const std::vector<Tile>& tiles) {
  TileArray array;
  array.num_tiles = static_cast<int64_t>(tiles.size());
  array.xyz = std::make_unique_for_overwrite<int64_t[]>(tiles.size() * 3);
  for (size_t i = 0; i < tiles.size(); ++i) {
    array.xyz[3 * i] = tiles[i].x;
    array.xyz[3 * i + 1] = tiles[i].y;
    array.xyz[3 * i + 2] = tiles[i].z;
  }
  return array;
}

}  // namespace

void InitTiles(nb::module_& m) {
  nb::module_ t = m.def_submodule("tiles", "Web-mercator XYZ tile math (see fused.tiles).");
  t.attr("MAX_ZOOM") = tiles::kMaxZoom;
  t.attr("DEFAULT_MAX_TILES") = tiles::kDefaultMaxTiles;

  t.def("validate_tile",
        [](int64_t x, int64_t y, int z) { ThrowIfError(tiles::ValidateTile({x, y, z})); },
        "x"_a, "y"_a, "z"_a);
  t.def(
      "bounds",
      [](int64_t x, int64_t y, int z) -> BoundsTuple {
        LngLatBounds b = ValueOrThrow(tiles::Bounds({x, y, z}));
        return {b.west, b.south, b.east, b.north};
      },
      "x"_a, "y"_a, "z"_a);
  t.def(
      "xy_bounds",
      [](int64_t x, int64_t y, int z) -> BoundsTuple {
        tiles::MercatorBounds b = ValueOrThrow(tiles::XyBounds({x, y, z}));
        return {b.left, b.bottom, b.right, b.top};
      },
      "x"_a, "y"_a, "z"_a);
  t.def(
      "tile",
      [](double lng, double lat, int zoom) {
        return ToTuple(ValueOrThrow(tiles::TileAt(lng, lat, zoom)));
      },
      "lng"_a, "lat"_a, "zoom"_a);
  t.def(
      "tiles_array",
      [](double west, double south, double east, double north, const std::vector<int>& zooms,
         int64_t max_tiles) {
        Result<TileArray> array;
        {
          nb::gil_scoped_release release;
          array = tiles::TilesArray({west, south, east, north}, zooms, max_tiles);
        }
        return ToNumpy(ValueOrThrow(std::move(array)));
      },
      "west"_a, "south"_a, "east"_a, "north"_a, "zooms"_a, "max_tiles"_a = tiles::kDefaultMaxTiles,
      "Return the tiles covering the bounds at each zoom, in mercantile.tiles order, as an (N, 3) "
      "int64 array of x, y, z.");
  t.def(
      "tiles_list",
      [](double west, double south, double east, double north, const std::vector<int>& zooms,
         int64_t max_tiles, nb::handle tile_type) {
        Result<TileArray> array;
        {
          nb::gil_scoped_release release;
          array = tiles::TilesArray({west, south, east, north}, zooms, max_tiles);
        }
        return ToTileList(ValueOrThrow(std::move(array)), tile_type);
      },
      "west"_a, "south"_a, "east"_a, "north"_a, "zooms"_a, "max_tiles"_a, "tile_type"_a,
      "Return the tiles of tiles_array as a list of tile_type(x, y, z).");
  t.def(
      "bounding_tile",
      [](double west, double south, double east, double north) {
        return ToTuple(ValueOrThrow(tiles::BoundingTile({west, south, east, north})));
      },
      "west"_a, "south"_a, "east"_a, "north"_a);
  t.def(
      "parent",
      [](int64_t x, int64_t y, int z, std::optional<int> zoom) {
        Tile tile{x, y, z};
        return ToTuple(ValueOrThrow(zoom ? tiles::Parent(tile, *zoom) : tiles::Parent(tile)));
      },
      "x"_a, "y"_a, "z"_a, "zoom"_a = nb::none());
  t.def(
      "children",
      [](int64_t x, int64_t y, int z, std::optional<int> zoom, int64_t max_tiles,
         nb::handle tile_type) {
        Result<std::vector<Tile>> children;
        {
          nb::gil_scoped_release release;
          Tile tile{x, y, z};
          children = zoom ? tiles::Children(tile, *zoom, max_tiles) : tiles::Children(tile);
        }
        return ToTileList(ToTileArray(ValueOrThrow(std::move(children))), tile_type);
      },
      "x"_a, "y"_a, "z"_a, "zoom"_a.none(), "max_tiles"_a, "tile_type"_a,
      "Return the descendants of a tile at a zoom, in mercantile order, as a list of "
      "tile_type(x, y, z).");
  t.def(
      "quadkey",
      [](int64_t x, int64_t y, int z) { return ValueOrThrow(tiles::Quadkey({x, y, z})); },
      "x"_a, "y"_a, "z"_a);
  t.def(
      "quadkey_to_tile",
      [](std::string_view quadkey) { return ToTuple(ValueOrThrow(tiles::QuadkeyToTile(quadkey))); },
      "quadkey"_a);
  t.def(
      "estimate_zoom",
      [](double west, double south, double east, double north, int64_t target_num_tiles) {
        return ValueOrThrow(tiles::EstimateZoom({west, south, east, north}, target_num_tiles));
      },
      "west"_a, "south"_a, "east"_a, "north"_a, "target_num_tiles"_a = 1);
}

}  // namespace terrafuse::bindings
