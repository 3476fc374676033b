// NumPy's .npy format (version 1.0): what the SDK's remote engine asks for, so arrays come
// back with their exact dtype and shape (PNG/TIFF are for browsers and GIS clients).
#include <cstring>
#include <map>

#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

namespace {

const std::map<std::string, std::pair<std::string, int>>& Descriptors() {
  static const auto* kDescr = new std::map<std::string, std::pair<std::string, int>>{
      {"bool", {"|b1", 1}},     {"uint8", {"|u1", 1}},    {"int8", {"|i1", 1}},
      {"uint16", {"<u2", 2}},   {"int16", {"<i2", 2}},    {"uint32", {"<u4", 4}},
      {"int32", {"<i4", 4}},    {"uint64", {"<u8", 8}},   {"int64", {"<i8", 8}},
      {"float16", {"<f2", 2}},  {"float32", {"<f4", 4}},  {"float64", {"<f8", 8}},
  };
  return *kDescr;
}

}  // namespace

Result<Encoded> EncodeNpy(const RasterView& raster, const EncodeOptions&) {
  auto it = Descriptors().find(raster.dtype);
  if (it == Descriptors().end()) {
    return InvalidArgument("npy cannot encode dtype '", raster.dtype,
                           "': use a bool, integer or float array");
  }
  int64_t count = 1;
  std::string shape = "(";
  for (int64_t dim : raster.shape) {
    if (dim < 0) return InvalidArgument("Raster dimension must not be negative, got ", dim);
    count *= dim;
    shape += std::to_string(dim) + ", ";
  }
  if (raster.shape.size() > 1) shape.resize(shape.size() - 2);
  else if (raster.shape.size() == 1) shape.resize(shape.size() - 1);
  shape += ")";
  const int64_t data_bytes = count * it->second.second;
  if (raster.size_bytes >= 0 && raster.size_bytes != data_bytes) {
    return InvalidArgument("Raster of shape ", shape, " and dtype ", raster.dtype, " needs ",
                           data_bytes, " bytes, got ", raster.size_bytes);
  }
  std::string header = "{'descr': '" + it->second.first + "', 'fortran_order': False, 'shape': " +
                       shape + ", }";
  // The magic, version and length (10 bytes) plus the header end on a 64-byte boundary.
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> out,
                        arrow::AllocateResizableBuffer(10 + static_cast<int64_t>(header.size()) + data_bytes));
  uint8_t* p = out->mutable_data();
  std::memcpy(p, "\x93NUMPY\x01\x00", 8);
  const uint16_t header_len = static_cast<uint16_t>(header.size());
  std::memcpy(p + 8, &header_len, 2);
  std::memcpy(p + 10, header.data(), header.size());
  if (data_bytes > 0) std::memcpy(p + 10 + header.size(), raster.data, static_cast<size_t>(data_bytes));
  return Encoded{std::move(out), media_type::kNpy};
}

}  // namespace terrafuse::encode
