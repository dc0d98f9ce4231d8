#include "core/tensor.h"

#include <sstream>

#include "core/error.h"

namespace joule {

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape[i] == 1) continue;
    if (shape[i] == 0) return true;
    if (strides[i] != expected) return false;
    expected *= shape[i];
  }
  return true;
}

Shape contiguous_strides(const Shape& shape) {
  Shape s(shape.size());
  int64_t stride = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    s[i] = stride;
    stride *= shape[i] > 0 ? shape[i] : 1;
  }
  return s;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& shape) {
  JOULE_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), Code::InvalidArgument, "expected at most ", kMaxDims,
        " dimensions, got ", shape.size());
  int64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    JOULE_CHECK(d >= 0, Code::InvalidArgument, "expected non-negative dimensions, got shape ", shape_str(shape));
    if (d == 0) zero = true;
  }
  if (zero) return 0;
  for (int64_t d : shape) {
    JOULE_CHECK(d <= kMaxElements && n <= kMaxElements / d, Code::InvalidArgument, "shape ", shape_str(shape),
          " has more than 2^53 elements");
    n *= d;
  }
  return n;
}

int64_t normalize_axis(int64_t axis, int64_t ndim, const char* what) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  JOULE_CHECK(axis >= lo && axis <= hi, Code::InvalidArgument, what, ": axis ", axis, " is out of range for a tensor of ",
        ndim, " dimension(s) (expected ", lo, "..", hi, ")");
  return axis < 0 ? axis + (ndim == 0 ? 1 : ndim) : axis;
}

Tensor empty(const Shape& shape, DType dtype, Device device) {
  int64_t n = shape_numel(shape);
  Tensor t;
  t.storage = Storage::allocate(static_cast<size_t>(n) * dtype_size(dtype), device);
  t.shape = shape;
  t.strides = contiguous_strides(shape);
  t.dtype = dtype;
  return t;
}

}  // namespace joule
