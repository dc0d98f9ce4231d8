#include "core/storage.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "core/error.h"
#include "cuda/backend.h"

namespace joule {
namespace {

constexpr size_t kAlignment = 64;
// Blocks at least this large are kept for reuse when freed: fresh large blocks come from mmap
// and cost a page fault per 4 KiB on first touch, which halves the speed of big elementwise ops.
constexpr size_t kCacheMinBytes = size_t{1} << 20;
constexpr size_t kCacheMaxTotal = size_t{1} << 30;
// Blocks at least this large are mapped on their own, 2 MiB-aligned, and asked to be backed by
// transparent huge pages (numpy does the same for its arrays from 4 MiB). With 4 KiB pages a
// GEMM walking a 1024-float-wide matrix touches a new page every row; huge pages made the
// 1024^3 and 2048^3 products 5-7 % faster on 1 and 2 threads (same kernels, operands in huge
// vs small pages, alternated call by call).
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeMinBytes = kHugePage;

struct Counters {
  int64_t tensors = 0;
  int64_t bytes = 0;
};

struct CpuCache {
  std::multimap<size_t, void*> blocks;  // capacity -> block
  size_t total = 0;
};

// 64-byte aligned blocks from plain malloc: the block is allocated kAlignment bytes larger, the
// data start rounded up, and the pointer malloc returned kept just before it. Not aligned_alloc:
// glibc serves an aligned request by over-allocating and trimming, so a freed block is always a
// little smaller than the next request of the same size needs; with live small objects (the
// handles JavaScript has not yet collected) between the freed blocks, none of them was ever reused
// and a training loop's RSS grew by every small tensor it freed (2 MB per GPT step).
void* aligned_malloc(size_t bytes) {
  void* raw = std::malloc(bytes + kAlignment);
  if (raw == nullptr) return nullptr;
  // malloc's result is at least 16-byte aligned, so the gap is 16..64 bytes: room for the pointer.
  auto data = (reinterpret_cast<uintptr_t>(raw) + kAlignment) & ~static_cast<uintptr_t>(kAlignment - 1);
  reinterpret_cast<void**>(data)[-1] = raw;
  return reinterpret_cast<void*>(data);
}

void aligned_free(void* p) {
  if (p != nullptr) std::free(static_cast<void**>(p)[-1]);
}

// A block of at least kHugeMinBytes: an anonymous mapping whose start is 2 MiB-aligned (the head
// and tail of a larger mapping are unmapped) and whose length is `bytes` rounded to 4 KiB, so
// that a partial last huge page stays in small pages rather than costing up to 2 MiB of memory.
size_t mapped_length(size_t bytes) { return (bytes + 4095) / 4096 * 4096; }

void* map_huge(size_t bytes) {
  const size_t length = mapped_length(bytes), span = length + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t first = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (first + kHugePage - 1) & ~(kHugePage - 1);
  const size_t head = start - first, tail = span - head - length;
  if (head != 0) munmap(raw, head);
  if (tail != 0) munmap(reinterpret_cast<void*>(start + length), tail);
#ifdef MADV_HUGEPAGE  // Linux
  // Advice only: where transparent huge pages are off, the block simply stays in small pages.
  // JOULE_MADVISE_HUGEPAGE=0 withholds it (as NUMPY_MADVISE_HUGEPAGE=0 does for numpy).
  static const bool advise = [] {
    const char* v = std::getenv("JOULE_MADVISE_HUGEPAGE");
    return v == nullptr || std::string(v) != "0";
  }();
  if (advise) madvise(reinterpret_cast<void*>(start), length, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<void*>(start);
}

// Every CPU block comes from here and goes back through free_block with the same capacity.
void* allocate_block(size_t capacity) { return capacity >= kHugeMinBytes ? map_huge(capacity) : aligned_malloc(capacity); }

void free_block(void* p, size_t capacity) {
  if (p == nullptr) return;
  if (capacity >= kHugeMinBytes) {
    munmap(p, mapped_length(capacity));
  } else {
    aligned_free(p);
  }
}

std::mutex& stats_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::pair<int, int>, Counters>& counters() {
  static auto* c = new std::map<std::pair<int, int>, Counters>();
  return *c;
}
CpuCache& cpu_cache() {
  static auto* c = new CpuCache();
  return *c;
}
std::pair<int, int> key(Device d) { return {static_cast<int>(d.kind), d.index}; }

size_t round_capacity(size_t bytes) {
  if (bytes < kCacheMinBytes) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
  // Round big blocks up to a multiple of 1/8 of their power of two, so nearby sizes share blocks.
  size_t p = kCacheMinBytes;
  while (p * 2 <= bytes) p *= 2;
  size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

// Read once: sysconf(_SC_PHYS_PAGES) is a sysinfo() system call, and small allocations (every
// op's output) came here for each tensor.
size_t physical_memory() {
  static const size_t bytes = [] {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : SIZE_MAX;
  }();
  return bytes;
}

void* cpu_alloc(size_t bytes) {
  size_t capacity = round_capacity(bytes == 0 ? kAlignment : bytes);
  {
    std::lock_guard<std::mutex> lock(stats_mutex());
    auto& cache = cpu_cache();
    auto it = cache.blocks.find(capacity);
    if (it != cache.blocks.end()) {
      void* p = it->second;
      cache.blocks.erase(it);
      cache.total -= capacity;
      return p;
    }
  }
  // Refuse what the machine cannot hold: with overcommit, a huge malloc would succeed and the
  // process would be killed on first touch instead of getting an error.
  if (capacity > physical_memory()) {
    fail(Code::OutOfMemory, "cannot allocate ", bytes, " bytes on cpu: more than the machine's ",
         physical_memory(), " bytes of memory");
  }
  void* p = allocate_block(capacity);
  if (!p) {
    release_cached_memory();
    p = allocate_block(capacity);
  }
  if (!p) fail(Code::OutOfMemory, "cannot allocate ", bytes, " bytes on cpu");
  return p;
}

void cpu_free(void* p, size_t bytes) {
  size_t capacity = round_capacity(bytes == 0 ? kAlignment : bytes);
  if (capacity >= kCacheMinBytes) {
    std::lock_guard<std::mutex> lock(stats_mutex());
    auto& cache = cpu_cache();
    if (cache.total + capacity <= kCacheMaxTotal) {
      cache.blocks.emplace(capacity, p);
      cache.total += capacity;
      return;
    }
  }
  free_block(p, capacity);
}

}  // namespace

std::shared_ptr<Storage> Storage::allocate(size_t bytes, Device device) {
  void* p = device.is_cpu() ? cpu_alloc(bytes) : cuda::device_malloc(device.index, bytes);
  std::shared_ptr<Storage> s;
  try {
    s = std::make_shared<Storage>(p, bytes, device);
  } catch (...) {
    if (device.is_cpu()) cpu_free(p, bytes); else cuda::device_free(device.index, p, bytes);
    throw;
  }
  std::lock_guard<std::mutex> lock(stats_mutex());
  counters()[key(device)].bytes += static_cast<int64_t>(bytes);
  return s;
}

Storage::~Storage() {
  {
    std::lock_guard<std::mutex> lock(stats_mutex());
    counters()[key(device_)].bytes -= static_cast<int64_t>(bytes_);
  }
  if (device_.is_cpu()) {
    cpu_free(data_, bytes_);
  } else {
    cuda::device_free(device_.index, data_, bytes_);
  }
}

void count_tensor(Device device, int delta) {
  std::lock_guard<std::mutex> lock(stats_mutex());
  counters()[key(device)].tensors += delta;
}

std::vector<DeviceMemory> memory_stats() {
  std::vector<DeviceMemory> out;
  std::lock_guard<std::mutex> lock(stats_mutex());
  bool has_cpu = false;
  for (auto& [k, c] : counters()) {
    Device d{static_cast<Device::Kind>(k.first), k.second};
    DeviceMemory m{d.name(), c.tensors, c.bytes, 0};
    if (d.is_cpu()) {
      m.cached_bytes = static_cast<int64_t>(cpu_cache().total);
      has_cpu = true;
    } else {
      m.cached_bytes = static_cast<int64_t>(cuda::cached_bytes(d.index));
    }
    out.push_back(m);
  }
  if (!has_cpu) out.insert(out.begin(), DeviceMemory{"cpu", 0, 0, static_cast<int64_t>(cpu_cache().total)});
  return out;
}

void release_cached_memory() {
  std::multimap<size_t, void*> blocks;
  {
    std::lock_guard<std::mutex> lock(stats_mutex());
    blocks.swap(cpu_cache().blocks);
    cpu_cache().total = 0;
  }
  for (auto& [capacity, p] : blocks) free_block(p, capacity);
  cuda::release_cached();
}

}  // namespace joule
