// A tensor is a strided view of a Storage: shape, strides (in elements) and an offset.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/storage.h"

namespace joule {

using Shape = std::vector<int64_t>;

constexpr int kMaxDims = 16;
// Element counts above 2^53 cannot be indexed from JavaScript; refuse them outright.
constexpr int64_t kMaxElements = int64_t{1} << 53;

struct Tensor {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::Float32;

  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
  int64_t numel() const;
  Device device() const { return storage->device(); }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  void* raw() const { return static_cast<char*>(storage->data()) + offset * static_cast<int64_t>(dtype_size(dtype)); }
  template <typename T>
  T* data() const { return static_cast<T*>(raw()); }
};

Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);  // validates: non-negative dims, numel < 2^53
std::string shape_str(const Shape& shape);
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* what);  // negative counts from the end

// A new, uninitialised, contiguous tensor.
Tensor empty(const Shape& shape, DType dtype, Device device);

}  // namespace joule
