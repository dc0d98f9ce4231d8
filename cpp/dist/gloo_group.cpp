// The Gloo process group: CPU tensors over TCP. Ranks meet through Joule's rendezvous store
// (adapted to gloo::rendezvous::Store) and connect a full mesh; every collective is given the
// group's timeout, so a dead or stalled peer ends it with DIST_TIMEOUT instead of a hang.
#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/allreduce_halving_doubling.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>

#include <algorithm>
#include <cstdlib>
#include <climits>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "dist/process_group.h"

namespace joule::dist {
namespace {

class StoreAdapter : public gloo::rendezvous::Store {
 public:
  StoreAdapter(StoreClient& store, std::string prefix) : store_(store), prefix_(std::move(prefix)) {}
  void set(const std::string& key, const std::vector<char>& data) override { store_.set(prefix_ + key, data); }
  std::vector<char> get(const std::string& key) override { return store_.get(prefix_ + key); }
  void wait(const std::vector<std::string>& keys) override { wait(keys, store_.timeout()); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override {
    std::vector<std::string> full;
    for (const auto& k : keys) full.push_back(prefix_ + k);
    store_.wait(full, timeout.count() > 0 ? timeout : store_.timeout());
  }

 private:
  StoreClient& store_;
  std::string prefix_;
};

template <typename T>
void reduce_sum(void* c, const void* a, const void* b, size_t n) {
  T* __restrict out = static_cast<T*>(c);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}
// The average of two ranks in the reduction itself: (x + y) * 0.5 is the sum halved, exactly (a
// halving is exact), so this equals sum-then-divide bit for bit and saves a pass over the buffer
// (0.7 ms of a 7.4 MB DDP bucket). Valid only because, with two ranks, both of Gloo's algorithms
// reduce each element exactly once, from the two ranks' values (bcube: one exchange of halves;
// ring: one reduce-scatter step); test/fixtures/dist/collectives.ts checks it bit for bit under
// each algorithm.
void reduce_mean_of_two(void* c, const void* a, const void* b, size_t n) {
  float* out = static_cast<float*>(c);
  const float* x = static_cast<const float*>(a);
  const float* y = static_cast<const float*>(b);
  for (size_t i = 0; i < n; i++) out[i] = (x[i] + y[i]) * 0.5f;
}
template <typename T>
void reduce_max(void* c, const void* a, const void* b, size_t n) {
  T* out = static_cast<T*>(c);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; i++) out[i] = x[i] > y[i] ? x[i] : y[i];
}
template <typename T>
void reduce_min(void* c, const void* a, const void* b, size_t n) {
  T* out = static_cast<T*>(c);
  const T* x = static_cast<const T*>(a);
  const T* y = static_cast<const T*>(b);
  for (size_t i = 0; i < n; i++) out[i] = x[i] < y[i] ? x[i] : y[i];
}

template <typename T>
gloo::AllreduceOptions::Func reduce_fn(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return &reduce_max<T>;
    case ReduceOp::Min: return &reduce_min<T>;
    default: return &reduce_sum<T>;
  }
}

// The reductions in the form of Gloo's older algorithms: x = x op y, in place.
void mean_of_two_in_place(float* x, const float* y, size_t n) { reduce_mean_of_two(x, x, y, n); }
const gloo::ReductionFunction<float> kMeanOfTwo(gloo::SUM, &mean_of_two_in_place);

template <typename T>
const gloo::ReductionFunction<T>* reduction_function(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return gloo::ReductionFunction<T>::max;
    case ReduceOp::Min: return gloo::ReductionFunction<T>::min;
    default: return gloo::ReductionFunction<T>::sum;
  }
}

// The most bytes a blocking send can always hand to the kernel while the peer, itself blocked in
// a send, reads nothing: Gloo sizes a pair's send buffer to the message (SO_SNDBUF), which Linux
// caps at net.core.wmem_max and then doubles; half of that doubled buffer is the margin. 0 where
// it cannot be read (no blocking sends then).
// JOULE_GLOO_BLOCKING_BYTES lowers it (0: no blocking sockets).
size_t blocking_send_limit() {
  std::ifstream f("/proc/sys/net/core/wmem_max");
  long long bytes = 0;
  if (!(f >> bytes) || bytes <= 0) return 0;
  if (const char* env = std::getenv("JOULE_GLOO_BLOCKING_BYTES")) bytes = std::min(bytes, std::max(0LL, std::atoll(env)));
  return static_cast<size_t>(std::min<long long>(bytes, INT32_MAX));
}

// A Gloo context whose slot counter can start over: Gloo's older algorithms take fresh slots at
// every construction and the counter is an int.
class BlockingContext : public gloo::rendezvous::Context {
 public:
  using gloo::rendezvous::Context::Context;
  // Safe between calls: a call returns only after all its receives, so no message addressed to
  // an old slot is left unread on the sockets.
  void restart_slots_when_high() {
    if (slot_ > (1 << 30)) slot_ = 0;
  }
};

void divide(void* data, size_t n, DType dtype, int by) {
  if (dtype == DType::Float32) {
    float* p = static_cast<float*>(data);
    float d = static_cast<float>(by);
    for (size_t i = 0; i < n; i++) p[i] /= d;
  } else {
    int32_t* p = static_cast<int32_t*>(data);
    for (size_t i = 0; i < n; i++) p[i] /= by;  // truncates toward zero
  }
}

[[noreturn]] void rethrow_gloo(const char* what, const std::exception& e, Millis timeout) {
  std::string msg = e.what();
  fail(Code::DistTimeout, "dist: ", what, " failed: a peer rank died, stalled or lost its connection (timeout ",
       timeout.count(), " ms): ", msg);
}

class GlooGroup : public ProcessGroup {
 public:
  GlooGroup(StoreClient& store, const std::string& prefix, int rank, int size, Millis timeout, const std::string& hostname)
      : ProcessGroup(rank, size, timeout) {
    gloo::transport::tcp::attr attr;
    attr.hostname = hostname;
    try {
      device_ = gloo::transport::tcp::CreateDevice(attr);
      auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
      ctx->setTimeout(timeout);
      StoreAdapter adapter(store, prefix);
      ctx->connectFullMesh(adapter, device_);
      ctx_ = ctx;
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("connecting the Gloo full mesh", e, timeout);
    }
    if (size == 2) connect_blocking(store, prefix, timeout);
  }

  ~GlooGroup() override {
    try {
      if (blocking_ctx_) blocking_ctx_->closeConnections();
      if (ctx_) ctx_->closeConnections();
    } catch (...) {
    }
  }

  std::string backend() const override { return "gloo"; }
  size_t blocking_send_bytes() const override { return blocking_ctx_ ? blocking_limit_ : 0; }

  void check_tensor(const Tensor& t, const char* what) const override {
    JOULE_CHECK(t.device().is_cpu(), Code::Device, what, ": the gloo backend takes CPU tensors, got one on ",
                t.device().name(), " (use the nccl backend for CUDA tensors)");
    JOULE_CHECK(t.dtype == DType::Float32 || t.dtype == DType::Int32, Code::Dtype, what,
                ": expected a float32 or int32 tensor, got ", dtype_name(t.dtype));
    JOULE_CHECK(t.is_contiguous(), Code::InvalidArgument, what, ": expected a contiguous tensor (call contiguous() first)");
  }

  // Gloo's ring all-reduce takes 2(n-1) dependent steps, each a round trip: measured here it cost
  // 2 ms for 4 KB where bcube took 0.4 ms, while ring moves large buffers faster. Below 1 MiB the
  // latency matters more than the bandwidth. With two ranks bcube is one exchange each way and
  // stays ahead much longer (alternating calls in one job, 2 ranks on this 2-core machine: 1 MB
  // 0.85-3.2 vs 1.1-3.7 ms, 7.4 MB 6.3-6.8 vs 7.8 ms, 16 MB 13.2-13.8 vs 14.2-14.7 ms, 20 MB 16.8
  // vs 18.0 ms; ring ahead from 32 MB: 27 vs 31 ms, 64 MB 52 vs 63-66 ms).
  gloo::AllreduceOptions::Algorithm allreduce_algorithm(size_t bytes) const {
    using Algorithm = gloo::AllreduceOptions::Algorithm;
    if (forced_algorithm_ && std::string(forced_algorithm_) == "bcube") return Algorithm::BCUBE;
    if (forced_algorithm_ && std::string(forced_algorithm_) == "ring") return Algorithm::RING;
    const size_t bcube_below = size_ == 2 ? (size_t{24} << 20) : (size_t{1} << 20);
    return bytes < bcube_below ? Algorithm::BCUBE : Algorithm::RING;
  }

  void allreduce(void* data, size_t count, DType dtype, ReduceOp op) override {
    if (count == 0) return;
    const bool averaged_in_reduction = op == ReduceOp::Avg && dtype == DType::Float32 && size_ == 2;
    if (blocking_ctx_) {
      // In pieces that each fit the limit: each piece is a complete all-reduce of its elements.
      const size_t piece = blocking_piece(dtype);
      char* bytes = static_cast<char*>(data);
      for (size_t done = 0; done < count; done += piece) {
        allreduce_blocking(bytes + done * dtype_size(dtype), std::min(piece, count - done), dtype, op, averaged_in_reduction);
      }
      if (op == ReduceOp::Avg && !averaged_in_reduction) divide(data, count, dtype, size_);
      return;
    }
    try {
      gloo::AllreduceOptions opts(ctx_);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      const auto algorithm = allreduce_algorithm(count * dtype_size(dtype));
      opts.setAlgorithm(algorithm);
      // The ring's pipeline segments: Gloo's default is 1 MiB; 2 MiB moved 64 MB in 47.6-48.8 ms
      // against 53.4-53.9 (4 MiB: 49-50, 8 MiB: 51-52, 256 KiB: 70; alternating calls, 2 ranks).
      if (algorithm == gloo::AllreduceOptions::Algorithm::RING) opts.setMaxSegmentSize(size_t{2} << 20);
      if (dtype == DType::Float32) {
        opts.setOutput(static_cast<float*>(data), count);
        opts.setReduceFunction(averaged_in_reduction ? &reduce_mean_of_two : reduce_fn<float>(op));
      } else {
        opts.setOutput(static_cast<int32_t*>(data), count);
        opts.setReduceFunction(reduce_fn<int32_t>(op));
      }
      gloo::allreduce(opts);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("allReduce", e, timeout_);
    }
    if (op == ReduceOp::Avg && !averaged_in_reduction) divide(data, count, dtype, size_);
  }

  void broadcast(void* data, size_t count, DType dtype, int root) override {
    if (count == 0) return;
    try {
      gloo::BroadcastOptions opts(ctx_);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      opts.setRoot(root);
      if (dtype == DType::Float32) opts.setOutput(static_cast<float*>(data), count);
      else opts.setOutput(static_cast<int32_t*>(data), count);
      gloo::broadcast(opts);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("broadcast", e, timeout_);
    }
  }

  void allgather(void* out, const void* in, size_t count, DType dtype) override {
    if (count == 0) return;
    try {
      gloo::AllgatherOptions opts(ctx_);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      if (dtype == DType::Float32) {
        opts.setInput(const_cast<float*>(static_cast<const float*>(in)), count);
        opts.setOutput(static_cast<float*>(out), count * static_cast<size_t>(size_));
      } else {
        opts.setInput(const_cast<int32_t*>(static_cast<const int32_t*>(in)), count);
        opts.setOutput(static_cast<int32_t*>(out), count * static_cast<size_t>(size_));
      }
      gloo::allgather(opts);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("allGather", e, timeout_);
    }
  }

  // Gloo's engine does the reduction: an all-reduce of the whole input, of which this rank keeps
  // its chunk. (Twice the traffic of a dedicated reduce-scatter, but no home-made collective.)
  void reduce_scatter(void* out, const void* in, size_t count, DType dtype, ReduceOp op) override {
    size_t chunk = count * dtype_size(dtype);
    if (count == 0) return;
    work_.resize(chunk * static_cast<size_t>(size_));
    std::memcpy(work_.data(), in, work_.size());
    allreduce(work_.data(), count * static_cast<size_t>(size_), dtype, op);
    std::memcpy(out, work_.data() + static_cast<size_t>(rank_) * chunk, chunk);
  }

  void barrier() override {
    try {
      gloo::BarrierOptions opts(ctx_);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("barrier", e, timeout_);
    }
  }

 protected:
  bool max_over_ranks(int32_t* values, size_t n) override {
    allreduce(values, n, DType::Int32, ReduceOp::Max);
    return true;
  }

 private:
  // Two ranks also get a second connection on blocking sockets, for all-reduces small enough that
  // both ranks' sends complete without the other reading (see blocking_send_limit). There Gloo's
  // halving-doubling all-reduce reads and writes on the calling thread itself, where the default
  // sockets hand every message over through Gloo's event-loop thread and a condition variable.
  // In a test program of Gloo alone (2 ranks on this 2-vCPU machine, medians of 100 calls): 4 KB
  // 0.04 vs 0.16 ms, 1 MB 0.32 vs 0.85, 7.4 MB 4.7 vs 8.1. A blocking socket serves only Gloo's
  // older algorithms (its newer collectives need the event loop), hence the separate connection;
  // the ranks agree on the limit first, so that all of them take the same path.
  void connect_blocking(StoreClient& store, const std::string& prefix, Millis timeout) {
    const bool forced = forced_algorithm_ && (std::string(forced_algorithm_) == "ring" || std::string(forced_algorithm_) == "bcube");
    int32_t negated_limit = forced ? 0 : -static_cast<int32_t>(blocking_send_limit());
    allreduce(&negated_limit, 1, DType::Int32, ReduceOp::Max);  // the smallest limit of all ranks
    if (-static_cast<int64_t>(negated_limit) < 4096) return;
    try {
      auto ctx = std::make_shared<BlockingContext>(rank_, size_);
      ctx->setTimeout(timeout);
      StoreAdapter adapter(store, prefix + "blocking/");
      ctx->connectFullMesh(adapter, device_);
      ctx->getPair(1 - rank_)->setSync(true, false);
      blocking_ctx_ = ctx;
      blocking_limit_ = static_cast<size_t>(-static_cast<int64_t>(negated_limit));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("connecting the Gloo full mesh", e, timeout);
    }
  }

  // The elements of one piece: 1 MiB, or less where the limit is lower (each rank sends half a
  // piece, and a small header, in one blocking write). Pieces of 0.5-1.5 MiB moved 7.4-64 MB
  // fastest here (64 MB: 30-44 ms; 8 MiB pieces 44-76, 128 KiB 111; medians of 5 x 5 calls).
  size_t blocking_piece(DType dtype) const {
    return std::min(size_t{1} << 20, (blocking_limit_ - 64) * 2) / dtype_size(dtype);
  }

  void allreduce_blocking(void* data, size_t count, DType dtype, ReduceOp op, bool mean_of_two) {
    try {
      blocking_ctx_->restart_slots_when_high();
      const int n = static_cast<int>(count);
      if (dtype == DType::Float32) {
        float* p = static_cast<float*>(data);
        gloo::AllreduceHalvingDoubling<float> run(blocking_ctx_, {p}, n, mean_of_two ? &kMeanOfTwo : reduction_function<float>(op));
        run.run();
      } else {
        int32_t* p = static_cast<int32_t*>(data);
        gloo::AllreduceHalvingDoubling<int32_t> run(blocking_ctx_, {p}, n, reduction_function<int32_t>(op));
        run.run();
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      rethrow_gloo("allReduce", e, timeout_);
    }
  }

  uint32_t next_tag() { return tag_++ & 0xffffff; }
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> ctx_;
  std::shared_ptr<BlockingContext> blocking_ctx_;  // two ranks only; null when not connected
  size_t blocking_limit_ = 0;
  uint32_t tag_ = 1;
  // JOULE_GLOO_ALGORITHM=ring|bcube forces one of Gloo's all-reduce algorithms on the default
  // sockets; by default the size decides (see allreduce_algorithm and connect_blocking).
  const char* forced_algorithm_ = std::getenv("JOULE_GLOO_ALGORITHM");
  std::vector<char> work_;
};

}  // namespace

bool gloo_compiled() { return true; }
std::string gloo_unavailable_reason() { return ""; }

std::unique_ptr<ProcessGroup> make_gloo_group(StoreClient& store, const std::string& prefix, int rank, int size,
                                              Millis timeout, const std::string& hostname) {
  return std::make_unique<GlooGroup>(store, prefix, rank, size, timeout, hostname);
}

}  // namespace joule::dist
