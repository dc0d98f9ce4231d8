#include "napi/handle.h"

#include "core/storage.h"
#include "napi/addon_data.h"

namespace joule::napi {

Napi::Function TensorHandle::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "TensorHandle", {});
  addon_data(env).tensor_class = Napi::Persistent(ctor);
  return ctor;
}

Napi::Value TensorHandle::wrap(Napi::Env env, Tensor tensor) {
  Napi::Object obj = addon_data(env).tensor_class.New({});
  TensorHandle* h = Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
  count_tensor(tensor.device(), +1);
  if (tensor.device().is_cpu()) {
    // Tell V8 how much memory the object keeps alive, so forgotten tensors get collected.
    h->external_bytes_ = static_cast<int64_t>(tensor.nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, h->external_bytes_);
  }
  h->tensor_ = std::move(tensor);
  return obj;
}

Napi::Value TensorHandle::wrap_all(Napi::Env env, const std::vector<Tensor>& tensors) {
  Napi::Array a = Napi::Array::New(env, tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) a.Set(static_cast<uint32_t>(k), wrap(env, tensors[k]));
  return a;
}

TensorHandle* TensorHandle::unwrap(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Env env = value.Env();
  if (!obj.InstanceOf(addon_data(env).tensor_class.Value())) return nullptr;
  return Napi::ObjectWrap<TensorHandle>::Unwrap(obj);
}

TensorHandle::TensorHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorHandle>(info), env_(info.Env()) {}

TensorHandle::~TensorHandle() { release(); }

void TensorHandle::release() {
  if (!tensor_) return;
  count_tensor(tensor_->device(), -1);
  tensor_.reset();
  if (external_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env_, -external_bytes_);
    external_bytes_ = 0;
  }
}

}  // namespace joule::napi
