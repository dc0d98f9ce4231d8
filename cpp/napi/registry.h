// Each bindings file contributes a list of exported functions; addon.cpp exports them all.
#pragma once
#include <napi.h>

#include <utility>
#include <vector>

namespace joule::napi {

using Binding = std::pair<const char*, Napi::Value (*)(const Napi::CallbackInfo&)>;

std::vector<Binding> tensor_bindings();  // addon.cpp: tensors, ops, runtime
std::vector<Binding> nn_bindings();      // nn_bindings.cpp: fused layers, losses, optimizer steps
std::vector<Binding> quant_bindings();   // quant_bindings.cpp: int8 quantization and GEMM
std::vector<Binding> dist_bindings();    // dist_bindings.cpp: store, process groups, collectives
std::vector<Binding> energy_bindings();  // energy_bindings.cpp: peak, energy meters, FLOP count
std::vector<Binding> attention_bindings();  // attention_bindings.cpp: fused scaled-dot-product attention
std::vector<Binding> gemm_bindings();       // gemm_bindings.cpp: the float32 matmul precision
std::vector<Binding> decoder_bindings();    // decoder_bindings.cpp: the composed transformer decoder step

}  // namespace joule::napi
