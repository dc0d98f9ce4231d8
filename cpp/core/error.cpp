#include "core/error.h"

namespace joule {

const char* code_name(Code code) {
  switch (code) {
    case Code::ShapeMismatch: return "SHAPE_MISMATCH";
    case Code::Dtype: return "DTYPE";
    case Code::Device: return "DEVICE";
    case Code::Disposed: return "DISPOSED";
    case Code::OutOfMemory: return "OUT_OF_MEMORY";
    case Code::InvalidArgument: return "INVALID_ARGUMENT";
    case Code::BackendUnavailable: return "BACKEND_UNAVAILABLE";
    case Code::DistTimeout: return "DIST_TIMEOUT";
    case Code::DistMismatch: return "DIST_MISMATCH";
    case Code::CheckpointCorrupt: return "CHECKPOINT_CORRUPT";
    case Code::Internal: return "INTERNAL";
  }
  return "INTERNAL";
}

}  // namespace joule
