#include "terrafuse/encode/raster_internal.h"

#include <cstring>

namespace terrafuse::encode::internal {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

int DtypeSize(std::string_view dtype) {
  if (dtype == "uint8" || dtype == "int8" || dtype == "bool") return 1;
  if (dtype == "uint16" || dtype == "int16" || dtype == "float16") return 2;
  if (dtype == "uint32" || dtype == "int32" || dtype == "float32") return 4;
  if (dtype == "uint64" || dtype == "int64" || dtype == "float64") return 8;
  return 0;
}

Result<RasterLayout> CheckRasterShape(const RasterView& raster, const RasterLimits& limits) {
  const auto& shape = raster.shape;
  if (shape.size() != 2 && shape.size() != 3) {
    return InvalidArgument(limits.format,
                           " needs a raster of shape (bands, height, width) or (height, width), "
                           "got shape ",
                           ShapeText(shape));
  }
  RasterLayout layout;
  layout.bands = shape.size() == 3 ? shape[0] : 1;
  layout.height = shape[shape.size() - 2];
  layout.width = shape[shape.size() - 1];
  layout.element_size = DtypeSize(raster.dtype);
  if (layout.bands < 1 || layout.bands > limits.max_bands) {
    std::string hint = shape.size() == 3 && shape[2] >= 1 && shape[2] <= limits.max_bands
                           ? ": it looks band-last, transpose it to (bands, height, width)"
                           : "";
    if (limits.max_bands == 4) {
      return InvalidArgument(limits.format,
                             " needs 1 to 4 bands (gray, gray+alpha, RGB, RGBA), got ",
                             layout.bands, " in shape ", ShapeText(shape), hint);
    }
    return InvalidArgument(limits.format, " needs 1 to ", limits.max_bands, " bands, got ",
                           layout.bands, " in shape ", ShapeText(shape), hint);
  }
  if (layout.height < 1 || layout.width < 1 || layout.height > limits.max_side ||
      layout.width > limits.max_side) {
    return InvalidArgument(limits.format, " needs a height and width from 1 to ", limits.max_side,
                           ", got shape ", ShapeText(shape));
  }
  if (layout.element_size == 0) {
    return InvalidArgument(limits.format, " cannot encode dtype '", raster.dtype, "'");
  }
  const int64_t pixels = layout.plane();
  if (pixels > limits.max_bytes / layout.bands / layout.element_size) {
    return InvalidArgument("Raster of shape ", ShapeText(shape), " is too large for ",
                           limits.format, ": at most ", limits.max_bytes, " bytes of pixels");
  }
  const int64_t expected = pixels * layout.bands * layout.element_size;
  if (raster.size_bytes >= 0 && raster.size_bytes != expected) {
    return InvalidArgument("Raster of shape ", ShapeText(shape), " and dtype ", raster.dtype,
                           " needs ", expected, " bytes, got ", raster.size_bytes);
  }
  if (raster.data == nullptr) {
    return InvalidArgument("Raster of shape ", ShapeText(shape), " has no data");
  }
  return layout;
}

Result<RasterLayout> CheckUint8Raster(const RasterView& raster, const RasterLimits& limits) {
  if (raster.dtype != "uint8") {
    return InvalidArgument(limits.format, " encodes uint8 rasters, got dtype '", raster.dtype,
                           "': scale the values to 0-255 and cast to uint8 first");
  }
  return CheckRasterShape(raster, limits);
}

namespace {

template <int kCount>
void InterleaveN(const uint8_t* const* src, int64_t width, uint8_t* out) {
  for (int64_t x = 0; x < width; ++x) {
    for (int b = 0; b < kCount; ++b) out[x * kCount + b] = src[b][x];
  }
}

// Copies `count` elements of kSize bytes to every `stride` bytes of `dst`.
template <int kSize>
void ScatterElements(const uint8_t* src, int64_t count, int64_t stride, uint8_t* dst) {
  for (int64_t x = 0; x < count; ++x) std::memcpy(dst + x * stride, src + x * kSize, kSize);
}

}  // namespace

void InterleaveRow(const uint8_t* data, const RasterLayout& layout, int64_t y, int first_band,
                   int count, uint8_t* out) {
  const int64_t plane = layout.plane();
  const uint8_t* src[4];
  for (int b = 0; b < count && b < 4; ++b) {
    src[b] = data + (first_band + b) * plane + y * layout.width;
  }
  switch (count) {
    case 1:
      std::memcpy(out, src[0], static_cast<size_t>(layout.width));
      return;
    case 2:
      return InterleaveN<2>(src, layout.width, out);
    case 3:
      return InterleaveN<3>(src, layout.width, out);
    case 4:
      return InterleaveN<4>(src, layout.width, out);
    default:
      for (int64_t x = 0; x < layout.width; ++x) {
        for (int b = 0; b < count; ++b) {
          out[x * count + b] = data[(first_band + b) * plane + y * layout.width + x];
        }
      }
  }
}

void InterleaveRowBytes(const uint8_t* data, const RasterLayout& layout, int64_t y, uint8_t* out) {
  const int64_t size = layout.element_size;
  if (size == 1) {
    InterleaveRow(data, layout, y, 0, static_cast<int>(layout.bands), out);
    return;
  }
  const int64_t plane_bytes = layout.plane() * size;
  const int64_t pixel_bytes = layout.bands * size;
  if (layout.bands == 1) {
    std::memcpy(out, data + y * layout.width * size, static_cast<size_t>(layout.width * size));
    return;
  }
  for (int64_t b = 0; b < layout.bands; ++b) {
    const uint8_t* src = data + b * plane_bytes + y * layout.width * size;
    uint8_t* dst = out + b * size;
    switch (size) {
      case 2:
        ScatterElements<2>(src, layout.width, pixel_bytes, dst);
        break;
      case 4:
        ScatterElements<4>(src, layout.width, pixel_bytes, dst);
        break;
      default:
        ScatterElements<8>(src, layout.width, pixel_bytes, dst);
        break;
    }
  }
}

}  // namespace terrafuse::encode::internal
