// fused._core.encode: the engine's output encoders (engine/terrafuse/encode/), wrapped by
// python/fused/_encode.py. Tables arrive through the Arrow C stream interface (any object
// with __arrow_c_stream__: pyarrow tables, readers, ...), rasters as numpy arrays; encoding
// runs without the GIL and the result is a read-only memoryview over the engine's buffer.
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/record_batch.h>
#include <nanobind/ndarray.h>

#include "binding_core.h"
#include "terrafuse/encode/encoder.h"

namespace terrafuse::bindings {

namespace {

using encode::Encoded;
using encode::EncodeOptions;
using encode::EncoderKind;
using encode::EncoderRegistry;
using encode::RasterView;

// Filled once, on first use; read-only afterwards (safe from any thread).
const EncoderRegistry& Registry() {
  static const EncoderRegistry registry = [] {
    EncoderRegistry r;
    ThrowIfError(encode::RegisterBuiltins(r));
    return r;
  }();
  return registry;
}

// A read-only memoryview over `buffer`, kept alive by the view (no copy).
nb::object BufferView(std::shared_ptr<arrow::Buffer> buffer) {
  auto* owner = new std::shared_ptr<arrow::Buffer>(std::move(buffer));
  nb::capsule keep_alive(
      owner, [](void* p) noexcept { delete static_cast<std::shared_ptr<arrow::Buffer>*>(p); });
  using Bytes = nb::ndarray<nb::numpy, const uint8_t, nb::ndim<1>>;
  Bytes array((*owner)->data(), {static_cast<size_t>((*owner)->size())}, keep_alive);
  nb::object view = nb::cast(array);
  return nb::steal(PyMemoryView_FromObject(view.ptr()));
}

EncodeOptions MakeOptions(std::optional<std::string> compression,
                          std::optional<int> compression_level) {
  EncodeOptions options;
  if (compression) options.compression = std::move(*compression);
  options.compression_level = compression_level;
  return options;
}

// numpy's name of a DLPack dtype ("uint8", "float32", "bool").
std::string DtypeName(nb::dlpack::dtype dtype) {
  const char* kind = "void";
  switch (static_cast<nb::dlpack::dtype_code>(dtype.code)) {
    case nb::dlpack::dtype_code::Int:
      kind = "int";
      break;
    case nb::dlpack::dtype_code::UInt:
      kind = "uint";
      break;
    case nb::dlpack::dtype_code::Float:
      kind = "float";
      break;
    case nb::dlpack::dtype_code::Complex:
      kind = "complex";
      break;
    case nb::dlpack::dtype_code::Bool:
      return "bool";
    default:
      break;
  }
  return kind + std::to_string(dtype.bits);
}

nb::object EncodeTable(nb::handle data, std::string_view format,
                       std::optional<std::string> compression,
                       std::optional<int> compression_level,
                       std::optional<std::tuple<int64_t, int64_t, int>> tile) {
  if (!nb::hasattr(data, "__arrow_c_stream__")) {
    std::string type_name = nb::type_name(data.type()).c_str();
    throw StatusError(
        InvalidArgument("encode_table needs an Arrow table (an object with "
                        "__arrow_c_stream__), got '",
                        type_name, "'"));
  }
  nb::object capsule = data.attr("__arrow_c_stream__")();
  auto* stream =
      static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_array_stream"));
  if (!stream) throw nb::python_error();
  EncodeOptions options = MakeOptions(std::move(compression), compression_level);
  if (tile) options.tile = tiles::Tile{std::get<0>(*tile), std::get<1>(*tile), std::get<2>(*tile)};
  Result<Encoded> encoded;
  {
    nb::gil_scoped_release release;
    // Importing moves the stream out of the capsule; the capsule then frees an empty shell.
    encoded = [&]() -> Result<Encoded> {
      ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ImportRecordBatchReader(stream));
      ARROW_ASSIGN_OR_RAISE(auto table, reader->ToTable());
      return Registry().Encode(format, *table, options);
    }();
  }
  return BufferView(ValueOrThrow(std::move(encoded)).bytes);
}

using RasterArray = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;

nb::object EncodeRaster(RasterArray array, std::string_view format,
                        std::optional<int> compression_level) {
  RasterView raster;
  raster.data = array.data();
  for (size_t i = 0; i < array.ndim(); ++i) raster.shape.push_back(array.shape(i));
  raster.dtype = DtypeName(array.dtype());
  raster.size_bytes = static_cast<int64_t>(array.nbytes());
  EncodeOptions options = MakeOptions(std::nullopt, compression_level);
  Result<Encoded> encoded;
  {
    nb::gil_scoped_release release;
    encoded = Registry().EncodeRaster(format, raster, options);
  }
  return BufferView(ValueOrThrow(std::move(encoded)).bytes);
}

}  // namespace

void InitEncode(nb::module_& m) {
  nb::module_ e = m.def_submodule("encode", "Output encoders: tables and rasters to bytes.");
  e.def("encode_table", &EncodeTable, "data"_a, "format"_a, nb::kw_only(),
        "compression"_a = nb::none(), "compression_level"_a = nb::none(), "tile"_a = nb::none(),
        nb::sig("def encode_table(data: object, format: str, *, compression: str | None = None, "
                "compression_level: int | None = None, "
                "tile: tuple[int, int, int] | None = None) -> memoryview"),
        "Encode an Arrow table (any object with __arrow_c_stream__) as `format` "
        "(csv, json, geojson, parquet, feather, mvt); `tile` is (x, y, z), which mvt needs; "
        "returns a read-only memoryview.");
  e.def("encode_raster", &EncodeRaster, "array"_a, "format"_a = "png", nb::kw_only(),
        "compression_level"_a = nb::none(),
        nb::sig("def encode_raster(array: numpy.typing.ArrayLike, format: str = 'png', *, "
                "compression_level: int | None = None) -> memoryview"),
        "Encode a C-contiguous (bands, height, width) or (height, width) array as `format` "
        "(png: uint8, 1 to 4 bands); returns a read-only memoryview.");
  e.def(
      "formats",
      []() {
        nb::list out;
        for (const auto& info : Registry().List()) {
          nb::dict d;
          d["name"] = info.name;
          d["kind"] = info.kind == EncoderKind::kVector ? "vector" : "raster";
          d["media_type"] = info.media_type;
          d["description"] = info.description;
          out.append(d);
        }
        return out;
      },
      nb::sig("def formats() -> list[dict[str, str]]"),
      "List the output formats as dicts (name, kind, media_type, description).");
}

}  // namespace terrafuse::bindings
