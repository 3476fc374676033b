// Frames and messages of the worker protocol (docs/design/server.md, "Worker protocol"):
// the server and each `python -m fused._worker` exchange frames over a Unix stream socket.
// A frame is "TFW1", a u32 little-endian header length, a UTF-8 JSON header, a u64
// little-endian payload length and the payload. Nothing here does I/O.
#pragma once

#include <arrow/buffer.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "terrafuse/common/status.h"

namespace terrafuse::workers {

inline constexpr std::string_view kFrameMagic = "TFW1";
inline constexpr int64_t kFramePrefixBytes = 8;  // magic + u32 header length
inline constexpr int64_t kMaxHeaderBytes = int64_t{16} << 20;
inline constexpr int64_t kDefaultMaxPayloadBytes = int64_t{1} << 30;

/// One frame: a JSON header (text) and a payload of raw bytes (never null).
struct Frame {
  std::string header;
  std::shared_ptr<arrow::Buffer> payload;
};

/// Appends the encoded frame of `header` and `payload` to `*out`.
void AppendFrame(std::string_view header, std::string_view payload, std::string* out);

/// Decodes frames from a byte stream fed in pieces, checking every length against its limit.
/// Usage: read from the stream into ReadTarget(), Consume() what was read, and Take() the
/// frame once HasFrame(). Large payloads are read straight into their own buffer (no copy).
class FrameDecoder {
 public:
  explicit FrameDecoder(int64_t max_payload_bytes = kDefaultMaxPayloadBytes);

  /// Returns where the next read should store bytes; never empty.
  std::span<uint8_t> ReadTarget();

  /// Records that the last read stored `n` bytes at ReadTarget(). Fails, naming the problem,
  /// on a bad magic or a length over its limit. Bytes after a complete frame (the next
  /// replies of a batch) are kept for the frames after it.
  Status Consume(size_t n);

  /// True once a whole frame has been decoded.
  bool HasFrame() const { return stage_ == Stage::kDone; }

  /// Returns the decoded frame and starts decoding the bytes kept after it. Fails like
  /// Consume when those bytes are not a valid start of a frame.
  Result<Frame> Take();

  /// Bytes of an incomplete frame received so far (0 between frames).
  int64_t partial_bytes() const { return received_; }

 private:
  enum class Stage { kPrefix, kHeader, kPayloadLength, kPayload, kDone };
  Status Feed(const uint8_t* data, size_t n);
  Status StartPayload();

  int64_t max_payload_bytes_;
  Stage stage_ = Stage::kPrefix;
  std::array<uint8_t, 8> small_{};  // the prefix, then the payload length
  size_t small_filled_ = 0;
  std::string header_;
  size_t header_size_ = 0;
  std::shared_ptr<arrow::Buffer> payload_;
  int64_t payload_size_ = 0;
  int64_t payload_filled_ = 0;
  bool direct_ = false;  // the last ReadTarget() was the payload itself
  int64_t received_ = 0;
  std::vector<uint8_t> scratch_;
  std::string after_;  // bytes received after the complete frame, not decoded yet
};

/// A header module of a UDF (`import utils` inside the UDF).
struct UdfHeaderModule {
  std::string module_name;
  std::string source_code;
};

/// One call of a UDF, as the HTTP layer hands it to the pool.
struct WorkerRequest {
  /// Echoed in the reply; the request id of the HTTP request.
  std::string id;
  std::string udf_name;
  std::string code;
  std::string entrypoint = "udf";
  /// Identity of code + entrypoint + header modules: the key of the worker's compiled-code
  /// cache. Empty: the worker hashes the code itself.
  std::string udf_hash;
  std::vector<UdfHeaderModule> headers;
  /// Query-string values, coerced by the worker exactly as the local engine does.
  std::vector<std::pair<std::string, std::string>> params;
  /// Map tile [x, y, z], or bounds [west, south, east, north] in EPSG:4326.
  std::optional<std::array<int64_t, 3>> tile;
  std::optional<std::array<double, 4>> bounds;
  /// Per-call limit in seconds; <= 0 uses the pool's call timeout.
  double timeout_seconds = 0;
  /// The local engine of fused.submit (never the HTTP layer): the frame's payload holds the
  /// pickled calls and the worker answers with a reply of kind `pickle`. Both processes
  /// belong to the same user, so unpickling is no trust boundary.
  bool pickle = false;
  /// Bytes sent as the frame's payload (the pickled calls); empty for HTTP calls.
  std::string payload;
  /// A call made by a UDF running on this pool (fused.run/submit inside a UDF): when no
  /// worker is free it gets an extra, temporary worker instead of waiting, so UDFs waiting
  /// on their nested calls can never hold every worker (a deadlock). Not part of the frame.
  bool nested = false;
};

/// What a successful reply carries; the payload's layout depends on it.
enum class ReplyKind { kTable, kRaster, kJson, kHtml, kBytes, kNone, kPickle };

/// Returns the protocol name of a kind ("table").
const char* ReplyKindName(ReplyKind kind);

/// A worker's answer. UDF failures are replies with ok == false (the traceback and captured
/// output are data for the caller); failures of the pool itself are Status errors.
struct WorkerReply {
  bool ok = false;
  /// Meaningful when ok.
  ReplyKind kind = ReplyKind::kNone;
  /// The reply header as the worker sent it (JSON text); the fields below are parsed from it.
  std::string header_json;
  /// The worker's own time for the call (binding, the UDF, conversion), from "seconds".
  double seconds = 0;
  /// The worker asks to be replaced after this call (e.g. after a MemoryError).
  bool recycle = false;
  /// Raster replies: element type, shape (C order) and, when the UDF gave them, its bounds.
  std::string dtype;
  std::vector<int64_t> shape;
  std::optional<std::array<double, 4>> bounds;
  /// html/bytes replies: the media type the worker chose; empty when it gave none.
  std::string media_type;
  /// table: Arrow IPC stream; raster: array bytes in C order; json/html/bytes: the bytes;
  /// pickle: the pickled (value, stdout, stderr); none and failures: empty. Never null.
  std::shared_ptr<arrow::Buffer> payload;
  /// The worker that answered.
  int worker_pid = 0;
  /// Time waiting for a free worker, and time from sending the call to the reply.
  double queue_seconds = 0;
  double call_seconds = 0;

  /// Captured output of the UDF.
  std::string_view captured_stdout() const { return stdout_text; }
  std::string_view captured_stderr() const { return stderr_text; }
  /// For failures: the error's kind ("udf_failed", "invalid_argument", "not_found",
  /// "internal"), exception type, message and the UDF's traceback; empty for ok replies.
  std::string_view error_kind() const { return error.kind; }
  std::string_view error_type() const { return error.type; }
  std::string_view error_message() const { return error.message; }
  std::string_view traceback() const { return error.traceback; }

  std::string stdout_text;
  std::string stderr_text;
  struct {
    std::string kind, type, message, traceback;
  } error;
};

/// Returns OK for an ok reply, else an error of the reply's kind with its message.
Status ReplyStatus(const WorkerReply& reply);

/// Returns the header of the run frame of `request`. Fails with InvalidArgument when a text
/// field is not valid UTF-8 or a bound is not finite, and TooLarge when the header would be
/// over kMaxHeaderBytes.
///
/// Without `with_code` the UDF is named by its hash only (no code, no header modules): for a
/// worker that was sent that version before. A worker that no longer has it answers an error
/// of kind "code_needed" (kCodeNeeded), and the call is sent again with the code.
Result<std::string> EncodeRunHeader(const WorkerRequest& request, bool with_code = true);

/// The error kind of a reply from a worker that lacks the code of the UDF version it was
/// asked to run by hash.
inline constexpr std::string_view kCodeNeeded = "code_needed";

/// The header of the frame asking a worker to exit.
std::string_view ExitHeader();

/// Parses a reply frame to the request `expected_id` and checks it; a failure names what is
/// wrong with the frame (the worker is then not trusted any more).
Result<WorkerReply> DecodeReply(Frame frame, std::string_view expected_id);

/// Parses the `ready` frame a worker sends first; returns the pid it reports.
Result<int> DecodeReady(const Frame& frame);

}  // namespace terrafuse::workers
