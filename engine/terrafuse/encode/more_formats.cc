#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

Status RegisterMoreFormats(EncoderRegistry&) { return Status::OK(); }

}  // namespace terrafuse::encode
