#include <cstdlib>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace joule {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Int32: return "int32";
    case DType::Int8: return "int8";
    case DType::UInt8: return "uint8";
  }
  return "float32";
}

DType parse_dtype(const std::string& name) {
  if (name == "float32") return DType::Float32;
  if (name == "int32") return DType::Int32;
  if (name == "int8") return DType::Int8;
  if (name == "uint8") return DType::UInt8;
  fail(Code::Dtype, "expected a dtype 'float32', 'int32', 'int8' or 'uint8', got '", name, "'");
}

DType promote(DType a, DType b) {
  if (a == b) return a;
  if (is_floating(a) || is_floating(b)) return DType::Float32;
  return DType::Int32;
}

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  if (name.rfind("cuda:", 0) == 0 && name.size() > 5 && name.size() <= 8) {
    bool digits = true;
    for (size_t i = 5; i < name.size(); ++i) digits = digits && name[i] >= '0' && name[i] <= '9';
    if (digits) return Device::cuda(std::atoi(name.c_str() + 5));
  }
  fail(Code::Device, "expected a device 'cpu', 'cuda' or 'cuda:N', got '", name, "'");
}

}  // namespace joule
