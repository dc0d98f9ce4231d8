// The NCCL process group: CUDA tensors, one process per GPU. NCCL is opened with dlopen at
// first use (see nccl_api.h); the unique id travels through Joule's rendezvous store. Every
// collective is launched on the device's legacy default stream and polled until it completes,
// so a dead or stalled peer ends it with DIST_TIMEOUT (the communicator is aborted) instead of
// a hang.
#include <dlfcn.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/dynlib.h"
#include "core/error.h"
#include "cuda/backend.h"
#include "dist/nccl_api.h"
#include "dist/process_group.h"

namespace joule::dist {
namespace {

struct NcclApi {
  bool loaded = false;
  std::string error;
  ncclGetUniqueId_t getUniqueId = nullptr;
  ncclCommInitRank_t commInitRank = nullptr;
  ncclAllReduce_t allReduce = nullptr;
  ncclBroadcast_t broadcast = nullptr;
  ncclAllGather_t allGather = nullptr;
  ncclReduceScatter_t reduceScatter = nullptr;
  ncclCommDestroy_t commDestroy = nullptr;
  ncclCommAbort_t commAbort = nullptr;
  ncclCommGetAsyncError_t commGetAsyncError = nullptr;
  ncclGetErrorString_t getErrorString = nullptr;
  cuInit_t cuInit = nullptr;
  cuDeviceGet_t cuDeviceGet = nullptr;
  cuDevicePrimaryCtxRetain_t cuDevicePrimaryCtxRetain = nullptr;
  cuCtxSetCurrent_t cuCtxSetCurrent = nullptr;
  cuStreamQuery_t cuStreamQuery = nullptr;
};

template <typename F>
bool sym(void* lib, const char* name, F& out, std::string& error) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (!out && error.empty()) error = std::string("symbol ") + name + " is missing";
  return out != nullptr;
}

const NcclApi& api() {
  static NcclApi a;
  static std::once_flag once;
  std::call_once(once, [] {
    void* nccl = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!nccl) {
      const char* why = dlerror();
      a.error = std::string("libnccl.so.2 could not be loaded (") + (why ? why : "dlopen failed") +
                "): install NCCL (e.g. the libnccl2 package from NVIDIA's CUDA repository) or put it on LD_LIBRARY_PATH";
      return;
    }
    void* cu = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!cu) {
      a.error = "libcuda.so.1 (the NVIDIA driver) could not be loaded";
      return;
    }
    std::string& e = a.error;
    sym(nccl, "ncclGetUniqueId", a.getUniqueId, e);
    sym(nccl, "ncclCommInitRank", a.commInitRank, e);
    sym(nccl, "ncclAllReduce", a.allReduce, e);
    sym(nccl, "ncclBroadcast", a.broadcast, e);
    sym(nccl, "ncclAllGather", a.allGather, e);
    sym(nccl, "ncclReduceScatter", a.reduceScatter, e);
    sym(nccl, "ncclCommDestroy", a.commDestroy, e);
    sym(nccl, "ncclCommAbort", a.commAbort, e);
    sym(nccl, "ncclCommGetAsyncError", a.commGetAsyncError, e);
    sym(nccl, "ncclGetErrorString", a.getErrorString, e);
    sym(cu, "cuInit", a.cuInit, e);
    sym(cu, "cuDeviceGet", a.cuDeviceGet, e);
    sym(cu, "cuDevicePrimaryCtxRetain", a.cuDevicePrimaryCtxRetain, e);
    sym(cu, "cuCtxSetCurrent", a.cuCtxSetCurrent, e);
    sym(cu, "cuStreamQuery", a.cuStreamQuery, e);
    if (e.empty() && a.cuInit(0) != 0) e = "cuInit failed: no usable GPU";
    a.loaded = e.empty();
  });
  return a;
}

ncclDataType_t nccl_dtype(DType d) { return d == DType::Float32 ? ncclFloat32 : ncclInt32; }
ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Avg: return ncclAvg;
    case ReduceOp::Max: return ncclMax;
    default: return ncclMin;
  }
}

class NcclGroup : public ProcessGroup {
 public:
  NcclGroup(StoreClient& store, const std::string& prefix, int rank, int size, Millis timeout, int device)
      : ProcessGroup(rank, size, timeout), device_(device) {
    const NcclApi& a = api();
    cuda::check_device(device);
    make_current();
    ncclUniqueId id;
    std::memset(&id, 0, sizeof(id));
    if (rank == 0) {
      check(a.getUniqueId(&id), "ncclGetUniqueId");
      store.set(prefix + "nccl_unique_id", Bytes(id.internal, id.internal + sizeof(id.internal)));
    } else {
      Bytes b = store.get(prefix + "nccl_unique_id");
      JOULE_CHECK(b.size() == sizeof(id.internal), Code::Internal, "dist: malformed NCCL unique id in the store");
      std::memcpy(id.internal, b.data(), b.size());
    }
    // Everyone present before the (blocking) communicator set-up.
    store.set(prefix + "nccl_arrived/" + std::to_string(rank), Bytes{'1'});
    std::vector<std::string> keys;
    for (int r = 0; r < size; r++) keys.push_back(prefix + "nccl_arrived/" + std::to_string(r));
    store.wait(keys, timeout);
    check(a.commInitRank(&comm_, size, id, rank), "ncclCommInitRank");
    // barrier()'s buffer, allocated here (the caller's thread), not on the communication thread.
    Tensor t = empty({1}, DType::Float32, Device::cuda(device_));
    barrier_keep_ = t.storage;
    barrier_buf_ = t.raw();
  }

  ~NcclGroup() override {
    if (comm_) api().commDestroy(comm_);
  }

  std::string backend() const override { return "nccl"; }

  void check_tensor(const Tensor& t, const char* what) const override {
    JOULE_CHECK(t.device().is_cuda() && t.device().index == device_, Code::Device, what,
                ": the nccl backend takes tensors on this rank's GPU cuda:", device_, ", got one on ", t.device().name(),
                " (use the gloo backend for CPU tensors)");
    JOULE_CHECK(t.dtype == DType::Float32 || t.dtype == DType::Int32, Code::Dtype, what,
                ": expected a float32 or int32 tensor, got ", dtype_name(t.dtype));
    JOULE_CHECK(t.is_contiguous(), Code::InvalidArgument, what, ": expected a contiguous tensor (call contiguous() first)");
  }

  void allreduce(void* data, size_t count, DType dtype, ReduceOp op) override {
    begin();
    check(api().allReduce(data, data, count, nccl_dtype(dtype), nccl_op(op), comm_, nullptr), "ncclAllReduce");
    finish("allReduce");
  }
  void allreduce_coalesced(const std::vector<Tensor>& ts, ReduceOp op) override {
    begin();
    for (const auto& t : ts) {
      check(api().allReduce(t.raw(), t.raw(), static_cast<size_t>(t.numel()), nccl_dtype(t.dtype), nccl_op(op), comm_, nullptr),
            "ncclAllReduce");
    }
    finish("allReduce");
  }
  void broadcast(void* data, size_t count, DType dtype, int root) override {
    begin();
    check(api().broadcast(data, data, count, nccl_dtype(dtype), root, comm_, nullptr), "ncclBroadcast");
    finish("broadcast");
  }
  void allgather(void* out, const void* in, size_t count, DType dtype) override {
    begin();
    check(api().allGather(in, out, count, nccl_dtype(dtype), comm_, nullptr), "ncclAllGather");
    finish("allGather");
  }
  void reduce_scatter(void* out, const void* in, size_t count, DType dtype, ReduceOp op) override {
    begin();
    check(api().reduceScatter(in, out, count, nccl_dtype(dtype), nccl_op(op), comm_, nullptr), "ncclReduceScatter");
    finish("reduceScatter");
  }
  void barrier() override {
    // An all-reduce of one element is NCCL's barrier.
    allreduce(barrier_buf_, 1, DType::Float32, ReduceOp::Sum);
  }

 private:
  void make_current() {
    const NcclApi& a = api();
    CUdevice dev = 0;
    CUcontext ctx = nullptr;
    JOULE_CHECK(a.cuDeviceGet(&dev, device_) == 0 && a.cuDevicePrimaryCtxRetain(&ctx, dev) == 0 && a.cuCtxSetCurrent(ctx) == 0,
                Code::Device, "dist: cannot make cuda:", device_, " current for NCCL");
  }
  void begin() {
    make_current();
    cuda::synchronize(device_);  // the inputs are ready
  }
  // Polls the stream until the collective is done, the communicator reports an error, or the
  // timeout passes (then the communicator is aborted).
  void finish(const char* what) {
    const NcclApi& a = api();
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      CUresult r = a.cuStreamQuery(nullptr);
      if (r == 0) return;
      JOULE_CHECK(r == 600, Code::Internal, "dist: ", what, ": CUDA error ", r, " while waiting for NCCL");
      ncclResult_t async = ncclSuccess;
      a.commGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress) {
        a.commAbort(comm_);
        comm_ = nullptr;
        fail(Code::DistTimeout, "dist: ", what, " failed: NCCL reported ", a.getErrorString(async), " (a peer rank died?)");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        a.commAbort(comm_);
        comm_ = nullptr;
        fail(Code::DistTimeout, "dist: ", what, " did not complete within ", timeout_.count(),
             " ms: a peer rank died or stalled (the NCCL communicator was aborted)");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  void check(ncclResult_t r, const char* what) {
    if (r != ncclSuccess) fail(Code::Internal, "dist: ", what, " failed: ", api().getErrorString(r));
  }

  int device_;
  ncclComm_t comm_ = nullptr;
  void* barrier_buf_ = nullptr;
  std::shared_ptr<Storage> barrier_keep_;
};

}  // namespace

std::string nccl_unavailable_reason() {
  if (cuda::device_count() == 0) {
    std::string why = cuda::unavailable_reason();
    return "the nccl backend needs CUDA tensors on a GPU, and CUDA is not available here" + (why.empty() ? std::string() : ": " + why) +
           " (use the gloo backend on CPUs)";
  }
  const NcclApi& a = api();
  if (!a.loaded) return "NCCL is not usable: " + a.error;
  return "";
}

std::unique_ptr<ProcessGroup> make_nccl_group(StoreClient& store, const std::string& prefix, int rank, int size,
                                              Millis timeout, int device) {
  std::string why = nccl_unavailable_reason();
  if (!why.empty()) fail(Code::BackendUnavailable, "dist: ", why);
  return std::make_unique<NcclGroup>(store, prefix, rank, size, timeout, device);
}

}  // namespace joule::dist
