// Reference-counted device memory. A JavaScript tensor holds one reference; views share it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"

namespace joule {

class Storage {
 public:
  Storage(void* data, size_t bytes, Device device) : data_(data), bytes_(bytes), device_(device) {}
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Throws OUT_OF_MEMORY (never aborts) when the memory cannot be had.
  static std::shared_ptr<Storage> allocate(size_t bytes, Device device);

 private:
  void* data_;
  size_t bytes_;
  Device device_;
};

struct DeviceMemory {
  std::string device;
  int64_t tensors = 0;  // live tensors visible to JavaScript
  int64_t bytes = 0;    // bytes held by live storages
  int64_t cached_bytes = 0;  // freed blocks the allocator keeps for reuse
};

std::vector<DeviceMemory> memory_stats();
void count_tensor(Device device, int delta);  // called by the bindings as handles come and go
void release_cached_memory();

}  // namespace joule
