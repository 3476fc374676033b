// `jpeg` (and `jpg`): libjpeg-turbo over a band-major uint8 raster, one interleaved row at a
// time into a growing Arrow buffer. Alpha is dropped: JPEG has none.
#include <arrow/buffer.h>
// clang-format off
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <vector>

#include "terrafuse/encode/more_formats.h"
#include "terrafuse/encode/raster_internal.h"

namespace terrafuse::encode {

namespace {

constexpr int64_t kInitialOutputBytes = 16 * 1024;

// libjpeg reports errors through error_exit, which must not return: jump back to the
// setjmp in CompressJpeg with the message kept.
struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

[[noreturn]] void OnJpegError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// Warnings would go to stderr; the encoder's input cannot cause any worth reporting.
void OnJpegOutputMessage(j_common_ptr) {}

// A destination manager appending to an Arrow buffer that doubles when full.
struct BufferDestination {
  jpeg_destination_mgr pub;
  arrow::ResizableBuffer* buffer;
  int64_t used;  // bytes of `buffer` holding output before the current window
};

void InitDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<BufferDestination*>(cinfo->dest);
  dest->used = 0;
  dest->pub.next_output_byte = dest->buffer->mutable_data();
  dest->pub.free_in_buffer = static_cast<size_t>(dest->buffer->size());
}

boolean EmptyOutputBuffer(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<BufferDestination*>(cinfo->dest);
  // libjpeg calls this only when the whole window is full.
  const int64_t size = dest->buffer->size();
  if (!dest->buffer->Resize(size * 2, /*shrink_to_fit=*/false).ok()) {
    ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
  }
  dest->used = size;
  dest->pub.next_output_byte = dest->buffer->mutable_data() + size;
  dest->pub.free_in_buffer = static_cast<size_t>(dest->buffer->size() - size);
  return TRUE;
}

void TermDestination(j_compress_ptr cinfo) {
  auto* dest = reinterpret_cast<BufferDestination*>(cinfo->dest);
  dest->used = dest->buffer->size() - static_cast<int64_t>(dest->pub.free_in_buffer);
}

// Compresses `components` (1 or 3) bands of `data` into `dest`. Returns false with
// `message` set when libjpeg fails. Only trivially destructible objects live in this frame,
// so the longjmp from OnJpegError skips no destructor.
bool CompressJpeg(const uint8_t* data, const internal::RasterLayout& layout, int components,
                  int quality, uint8_t* row, BufferDestination* dest, char* message) {
  jpeg_compress_struct cinfo;
  JpegErrorManager err;
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = OnJpegError;
  err.pub.output_message = OnJpegOutputMessage;
  if (setjmp(err.jump)) {
    std::memcpy(message, err.message, JMSG_LENGTH_MAX);
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  dest->pub.init_destination = InitDestination;
  dest->pub.empty_output_buffer = EmptyOutputBuffer;
  dest->pub.term_destination = TermDestination;
  cinfo.dest = &dest->pub;
  cinfo.image_width = static_cast<JDIMENSION>(layout.width);
  cinfo.image_height = static_cast<JDIMENSION>(layout.height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  JSAMPROW rows[1] = {row};
  for (int64_t y = 0; y < layout.height; ++y) {
    internal::InterleaveRow(data, layout, y, 0, components, row);
    jpeg_write_scanlines(&cinfo, rows, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

Result<Encoded> EncodeJpeg(const RasterView& raster, const EncodeOptions&, int quality) {
  ARROW_ASSIGN_OR_RAISE(auto layout,
                        internal::CheckUint8Raster(raster, {"JPEG", 4, JPEG_MAX_DIMENSION}));
  if (quality < 1 || quality > 100) {
    return InvalidArgument("JPEG quality must be from 1 to 100, got ", quality);
  }
  // Gray (+alpha) stays gray; RGB(A) is RGB.
  const int components = layout.bands <= 2 ? 1 : 3;
  std::vector<uint8_t> row(static_cast<size_t>(layout.width * components));
  ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::ResizableBuffer> buffer,
                        arrow::AllocateResizableBuffer(
                            std::max(kInitialOutputBytes, layout.plane() * components / 8)));
  BufferDestination dest{};
  dest.buffer = buffer.get();
  char message[JMSG_LENGTH_MAX] = {};
  if (!CompressJpeg(static_cast<const uint8_t*>(raster.data), layout, components, quality,
                    row.data(), &dest, message)) {
    return Internal("JPEG encoding failed: ", message);
  }
  ARROW_RETURN_NOT_OK(buffer->Resize(dest.used, /*shrink_to_fit=*/true));
  return Encoded{std::move(buffer), media_type::kJpeg};
}

}  // namespace terrafuse::encode
