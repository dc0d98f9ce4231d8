#pragma once
#include <string>

namespace joule {

struct Device {
  enum class Kind : uint8_t { Cpu = 0, Cuda = 1 } kind = Kind::Cpu;
  int index = 0;

  bool is_cpu() const { return kind == Kind::Cpu; }
  bool is_cuda() const { return kind == Kind::Cuda; }
  bool operator==(const Device& o) const { return kind == o.kind && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string name() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device cpu() { return Device{}; }
  static Device cuda(int i) { return Device{Kind::Cuda, i}; }
};

// 'cpu', 'cuda' (= cuda:0) or 'cuda:N'; throws DEVICE on anything else.
Device parse_device(const std::string& name);

}  // namespace joule
