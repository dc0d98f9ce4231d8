// Process groups: the collectives of one job, over Gloo (CPU tensors, TCP) or NCCL (CUDA
// tensors). Every collective of a group runs on the group's own communication thread, in the
// order the calls were made, so that the JavaScript thread stays free and all ranks issue the
// same sequence; synchronous calls simply wait for their turn. After a collective fails (a peer
// died or stalled past the timeout) the group is broken: later calls fail at once with the same
// error instead of hanging.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "dist/store.h"

namespace joule::dist {

enum class ReduceOp { Sum, Avg, Max, Min };
ReduceOp parse_reduce_op(const std::string& name);  // 'sum' | 'avg' | 'max' | 'min'

// What one rank asks of a collective call; every rank must ask the same (see ProcessGroup::agree).
enum class Collective { AllReduce, AllReduceCoalesced, Broadcast, AllGather, ReduceScatter, Barrier };
struct CallSignature {
  Collective kind;
  uint64_t count = 0;  // elements (the sum over the tensors of a coalesced all-reduce)
  DType dtype = DType::Float32;
  int detail = 0;  // the reduce op, or the broadcast's root
};

class ProcessGroup {
 public:
  ProcessGroup(int rank, int size, Millis timeout) : rank_(rank), size_(size), timeout_(timeout) {}
  virtual ~ProcessGroup() = default;

  int rank() const { return rank_; }
  int size() const { return size_; }
  Millis timeout() const { return timeout_; }
  virtual std::string backend() const = 0;
  // The most bytes an all-reduce sends in one blocking write (Gloo, two ranks); 0 when the
  // all-reduces go through the backend's own event loop.
  virtual size_t blocking_send_bytes() const { return 0; }
  // Checks a tensor before it is queued (device, dtype, layout), on the calling thread.
  virtual void check_tensor(const Tensor& t, const char* what) const = 0;

  // All run on the communication thread only, on contiguous memory of `dtype` on the group's
  // device; counts are in elements.
  virtual void allreduce(void* data, size_t count, DType dtype, ReduceOp op) = 0;  // in place
  virtual void broadcast(void* data, size_t count, DType dtype, int root) = 0;     // in place
  virtual void allgather(void* out, const void* in, size_t count, DType dtype) = 0;  // out: size x count
  virtual void reduce_scatter(void* out, const void* in, size_t count, DType dtype, ReduceOp op) = 0;  // in: size x count
  virtual void barrier() = 0;
  // Several tensors reduced as one flat buffer (DDP's gradient buckets), written back in place.
  virtual void allreduce_coalesced(const std::vector<Tensor>& ts, ReduceOp op);

  // Checks, before a collective, that every rank is making the same call (collective, element
  // count, dtype, op or root), with one small all-reduce of fixed size; when they differ it
  // throws DIST_MISMATCH on every rank alike, so the group stays usable. Without it Gloo aborts
  // the process when a peer's message is longer than the buffer posted for it (an enforce fails
  // on its I/O thread, where nothing can catch it), and other mismatches hang until the timeout
  // or mix up data. Returns whether the calls were compared (false where the backend does not
  // check), and then it was also a barrier: no rank returns before all have called it.
  bool agree(const char* what, const CallSignature& call);

 protected:
  // The element-wise maximum over all ranks of n int32 values in host memory, in place, for
  // agree(); false where the backend does not check calls (NCCL: its buffers live on the GPU, and
  // a mismatch there ends in DIST_TIMEOUT, not in an abort).
  virtual bool max_over_ranks(int32_t* /*values*/, size_t /*n*/) { return false; }

  int rank_;
  int size_;
  Millis timeout_;
  std::vector<char> flat_;  // the communication thread's staging buffer
};

// The communication thread of a group: runs jobs in submission order.
class CommThread {
 public:
  using Job = std::function<void()>;
  using Done = std::function<void(std::exception_ptr)>;
  CommThread();
  ~CommThread();
  // Queues job; done(nullptr or the error) runs on the communication thread afterwards.
  void submit(Job job, Done done);
  // Runs job after the queued ones and waits for it; rethrows its error. When nothing is queued
  // or running, it runs on the calling thread (no hand-off: the latency of small collectives).
  void run(Job job);
  // Stops after the queued jobs (which fail with a DIST_TIMEOUT-free 'destroyed' error).
  void stop();

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Job, Done>> queue_;
  bool stopping_ = false;
  bool running_ = false;  // a job is executing (on the thread, or inline in run())
  std::exception_ptr broken_;
  void execute(Job& job, std::exception_ptr& error);
  std::thread thread_;
};

// Backends. Each throws BACKEND_UNAVAILABLE (naming what to install) when it cannot be used.
bool gloo_compiled();
std::string gloo_unavailable_reason();  // "" when compiled in
std::unique_ptr<ProcessGroup> make_gloo_group(StoreClient& store, const std::string& prefix, int rank, int size,
                                              Millis timeout, const std::string& hostname);
std::string nccl_unavailable_reason();  // "" when libnccl.so.2 loads and a GPU is present
std::unique_ptr<ProcessGroup> make_nccl_group(StoreClient& store, const std::string& prefix, int rank, int size,
                                              Millis timeout, int device);

}  // namespace joule::dist
