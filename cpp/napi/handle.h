// The JavaScript object that owns one reference to a tensor. dispose() drops it at once; the
// garbage collector's finalizer is only a safety net.
#pragma once
#include <napi.h>

#include <optional>
#include <vector>

#include "core/tensor.h"

namespace joule::napi {

class TensorHandle : public Napi::ObjectWrap<TensorHandle> {
 public:
  static Napi::Function define(Napi::Env env);
  static Napi::Value wrap(Napi::Env env, Tensor tensor);
  static Napi::Value wrap_all(Napi::Env env, const std::vector<Tensor>& tensors);  // a JS array of handles
  static TensorHandle* unwrap(Napi::Value value);  // nullptr when value is not a handle

  explicit TensorHandle(const Napi::CallbackInfo& info);
  ~TensorHandle() override;

  const std::optional<Tensor>& tensor() const { return tensor_; }
  void release();

 private:
  std::optional<Tensor> tensor_;
  int64_t external_bytes_ = 0;
  Napi::Env env_;
};

}  // namespace joule::napi
