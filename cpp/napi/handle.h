// The JavaScript value that owns one reference to a tensor: an External (cheaper to create than
// a wrapped class instance — the per-op cost is mostly this) carrying a type tag, so that no
// other external can pass for a tensor. dispose() drops the reference at once; the garbage
// collector's finalizer is only a safety net.
#pragma once
#include <napi.h>

#include <optional>
#include <vector>

#include "core/tensor.h"

namespace joule::napi {

class TensorHandle {
 public:
  static Napi::Value wrap(Napi::Env env, Tensor tensor);
  static Napi::Value wrap_all(Napi::Env env, const std::vector<Tensor>& tensors);  // a JS array of handles
  static TensorHandle* unwrap(Napi::Value value);  // nullptr when value is not a handle

  const std::optional<Tensor>& tensor() const { return tensor_; }
  void release(Napi::Env env);

 private:
  std::optional<Tensor> tensor_;
  int64_t external_bytes_ = 0;
};

}  // namespace joule::napi
