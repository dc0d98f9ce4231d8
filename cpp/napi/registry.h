// Each bindings file contributes a list of exported functions; addon.cpp exports them all.
#pragma once
#include <napi.h>

#include <utility>
#include <vector>

namespace joule::napi {

using Binding = std::pair<const char*, Napi::Value (*)(const Napi::CallbackInfo&)>;

std::vector<Binding> tensor_bindings();  // addon.cpp: tensors, ops, runtime
std::vector<Binding> nn_bindings();      // nn_bindings.cpp: fused layers, losses, optimizer steps

}  // namespace joule::napi
