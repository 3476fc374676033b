#include "terrafuse/encode/zip_writer_internal.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace terrafuse::encode::internal {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfCentralDirectory = 0x06054b50;
constexpr uint16_t kVersion = 20;  // 2.0: deflate
constexpr uint16_t kDeflated = 8;
constexpr uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01
constexpr size_t kLocalHeaderSize = 30;
// zlib counts in 32-bit units: feed it at most this much at a time.
constexpr size_t kMaxPiece = size_t{1} << 30;
constexpr int64_t kOutputStep = 64 * 1024;

void Put16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}

void Put32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Patch32(uint8_t* at, uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<uint8_t>((v >> (8 * i)) & 0xff);
}

// The fields local and central headers share, from "version needed" to the name length.
void PutCommon(std::string* out, uint32_t crc, uint32_t compressed, uint32_t size,
               size_t name_length) {
  Put16(out, kVersion);
  Put16(out, 0);  // flags
  Put16(out, kDeflated);
  Put16(out, 0);  // time 00:00:00
  Put16(out, kDosDate);
  Put32(out, crc);
  Put32(out, compressed);
  Put32(out, size);
  Put16(out, static_cast<uint16_t>(name_length));
  Put16(out, 0);  // extra field length
}

constexpr uint64_t kMax32 = std::numeric_limits<uint32_t>::max();

Status TooLarge(std::string_view what) {
  return InvalidArgument("The ", what,
                         " is over 4 GiB, more than a ZIP container without ZIP64 holds");
}

}  // namespace

ZipWriter::ZipWriter(int level) : level_(level), stream_(std::make_unique<z_stream>()) {}

ZipWriter::~ZipWriter() {
  if (open_) deflateEnd(stream_.get());
}

Status ZipWriter::BeginMember(std::string_view name) {
  if (name.size() > 0xffff) return InvalidArgument("ZIP member name too long");
  if (!open_) {
    *stream_ = z_stream{};
    if (deflateInit2(stream_.get(), level_, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
      return Internal("ZIP writing failed: cannot start zlib at level ", level_);
    }
    open_ = true;
  } else if (deflateReset(stream_.get()) != Z_OK) {
    return Internal("ZIP writing failed: cannot reset zlib");
  }
  Member member;
  member.name = std::string(name);
  member.offset = static_cast<uint64_t>(out_.length());
  if (member.offset > kMax32) return TooLarge("archive");
  std::string header;
  Put32(&header, kLocalHeader);
  PutCommon(&header, 0, 0, 0, name.size());  // CRC and sizes patched by EndMember
  header.append(name);
  members_.push_back(std::move(member));
  return out_.Append(header.data(), static_cast<int64_t>(header.size()));
}

Status ZipWriter::Deflate(std::string_view data, bool finish) {
  z_stream* z = stream_.get();
  size_t pos = 0;
  while (true) {
    const size_t piece = std::min(data.size() - pos, kMaxPiece);
    const bool last = pos + piece == data.size();
    z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + pos));
    z->avail_in = static_cast<uInt>(piece);
    const int flush = finish && last ? Z_FINISH : Z_NO_FLUSH;
    int rc = Z_OK;
    do {
      ARROW_RETURN_NOT_OK(out_.Reserve(kOutputStep));
      z->next_out = out_.mutable_data() + out_.length();
      z->avail_out = static_cast<uInt>(kOutputStep);
      rc = deflate(z, flush);
      if (rc == Z_STREAM_ERROR) return Internal("ZIP writing failed: zlib stream error");
      out_.UnsafeAdvance(kOutputStep - z->avail_out);
    } while (z->avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    pos += piece;
    if (last) return Status::OK();
  }
}

Status ZipWriter::Write(std::string_view data) {
  Member& member = members_.back();
  for (size_t pos = 0; pos < data.size(); pos += kMaxPiece) {
    const size_t piece = std::min(data.size() - pos, kMaxPiece);
    member.crc = static_cast<uint32_t>(crc32(
        member.crc, reinterpret_cast<const Bytef*>(data.data() + pos), static_cast<uInt>(piece)));
  }
  member.size += data.size();
  return Deflate(data, false);
}

Status ZipWriter::EndMember() {
  ARROW_RETURN_NOT_OK(Deflate({}, true));
  Member& member = members_.back();
  const uint64_t data_start = member.offset + kLocalHeaderSize + member.name.size();
  member.compressed = static_cast<uint64_t>(out_.length()) - data_start;
  if (member.size > kMax32 || member.compressed > kMax32) {
    return TooLarge("part '" + member.name + "'");
  }
  uint8_t* header = out_.mutable_data() + member.offset;
  Patch32(header + 14, member.crc);
  Patch32(header + 18, static_cast<uint32_t>(member.compressed));
  Patch32(header + 22, static_cast<uint32_t>(member.size));
  return Status::OK();
}

Status ZipWriter::AddMember(std::string_view name, std::string_view data) {
  ARROW_RETURN_NOT_OK(BeginMember(name));
  ARROW_RETURN_NOT_OK(Write(data));
  return EndMember();
}

Result<std::shared_ptr<arrow::Buffer>> ZipWriter::Finish() {
  const uint64_t directory_offset = static_cast<uint64_t>(out_.length());
  std::string directory;
  for (const Member& m : members_) {
    Put32(&directory, kCentralHeader);
    Put16(&directory, kVersion);  // made by: MS-DOS, 2.0
    PutCommon(&directory, m.crc, static_cast<uint32_t>(m.compressed), static_cast<uint32_t>(m.size),
              m.name.size());
    Put16(&directory, 0);  // comment length
    Put16(&directory, 0);  // disk number
    Put16(&directory, 0);  // internal attributes
    Put32(&directory, 0);  // external attributes
    Put32(&directory, static_cast<uint32_t>(m.offset));
    directory.append(m.name);
  }
  if (directory_offset + directory.size() > kMax32 || members_.size() > 0xffff) {
    return TooLarge("archive");
  }
  const size_t directory_size = directory.size();
  Put32(&directory, kEndOfCentralDirectory);
  Put16(&directory, 0);  // this disk
  Put16(&directory, 0);  // disk of the directory
  Put16(&directory, static_cast<uint16_t>(members_.size()));
  Put16(&directory, static_cast<uint16_t>(members_.size()));
  Put32(&directory, static_cast<uint32_t>(directory_size));
  Put32(&directory, static_cast<uint32_t>(directory_offset));
  Put16(&directory, 0);  // comment length
  ARROW_RETURN_NOT_OK(out_.Append(directory.data(), static_cast<int64_t>(directory.size())));
  return out_.Finish(/*shrink_to_fit=*/true);
}

}  // namespace terrafuse::encode::internal
