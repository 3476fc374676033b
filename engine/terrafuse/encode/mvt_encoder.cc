#include "terrafuse/encode/encoder.h"

namespace terrafuse::encode {

Status RegisterMvt(EncoderRegistry&) { return Status::OK(); }

}  // namespace terrafuse::encode
