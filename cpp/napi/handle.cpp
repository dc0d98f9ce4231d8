#include "napi/handle.h"

#include <memory>

#include "core/storage.h"

namespace joule::napi {
namespace {

// "joulet" "nsr-hndl": marks the externals this addon made as tensor handles.
constexpr napi_type_tag kTensorTag = {0x6a6f756c65740000ULL, 0x6e73722d686e646cULL};

}  // namespace

Napi::Value TensorHandle::wrap(Napi::Env env, Tensor tensor) {
  // Owned here until the external exists: creating it fails in a terminating worker, and the
  // tensor must then be freed, not leaked.
  auto owned = std::make_unique<TensorHandle>();
  owned->tensor_ = std::move(tensor);
  Napi::External<TensorHandle> ext = Napi::External<TensorHandle>::New(env, owned.get(), [](Napi::Env e, TensorHandle* handle) {
    handle->release(e);
    delete handle;
  });
  TensorHandle* h = owned.release();  // the external's finalizer deletes it from here on
  count_tensor(h->tensor_->device(), +1);
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, ext, &kTensorTag), Napi::Value());
  if (h->tensor_->device().is_cpu()) {
    // Tell V8 how much memory the handle keeps alive, so forgotten tensors get collected.
    const auto bytes = static_cast<int64_t>(h->tensor_->nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
    h->external_bytes_ = bytes;
  }
  return ext;
}

Napi::Value TensorHandle::wrap_all(Napi::Env env, const std::vector<Tensor>& tensors) {
  Napi::Array a = Napi::Array::New(env, tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) a.Set(static_cast<uint32_t>(k), wrap(env, tensors[k]));
  return a;
}

TensorHandle* TensorHandle::unwrap(Napi::Value value) {
  if (!value.IsExternal()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(value.Env(), value, &kTensorTag, &tagged) != napi_ok || !tagged) return nullptr;
  return value.As<Napi::External<TensorHandle>>().Data();
}

void TensorHandle::release(Napi::Env env) {
  if (!tensor_) return;
  count_tensor(tensor_->device(), -1);
  tensor_.reset();
  if (external_bytes_) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -external_bytes_);
    external_bytes_ = 0;
  }
}

}  // namespace joule::napi
