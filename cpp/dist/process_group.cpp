// The parts of process groups shared by the backends: op names, the coalesced all-reduce and the
// communication thread.
#include "dist/process_group.h"

#include <cstring>
#include <future>
#include <sstream>

#include "core/error.h"

namespace joule::dist {

ReduceOp parse_reduce_op(const std::string& name) {
  if (name == "sum") return ReduceOp::Sum;
  if (name == "avg" || name == "mean") return ReduceOp::Avg;
  if (name == "max") return ReduceOp::Max;
  if (name == "min") return ReduceOp::Min;
  fail(Code::InvalidArgument, "expected a reduce op 'sum', 'avg', 'max' or 'min', got '", name, "'");
}

void ProcessGroup::allreduce_coalesced(const std::vector<Tensor>& ts, ReduceOp op) {
  if (ts.empty()) return;
  if (ts.size() == 1) {
    allreduce(ts[0].raw(), static_cast<size_t>(ts[0].numel()), ts[0].dtype, op);
    return;
  }
  DType dtype = ts[0].dtype;
  size_t bytes = 0;
  for (const auto& t : ts) bytes += t.nbytes();
  if (flat_.size() < bytes) flat_.resize(bytes);
  size_t off = 0;
  for (const auto& t : ts) {
    std::memcpy(flat_.data() + off, t.raw(), t.nbytes());
    off += t.nbytes();
  }
  allreduce(flat_.data(), bytes / dtype_size(dtype), dtype, op);
  off = 0;
  for (const auto& t : ts) {
    std::memcpy(t.raw(), flat_.data() + off, t.nbytes());
    off += t.nbytes();
  }
}

namespace {

const char* collective_name(int kind) {
  switch (static_cast<Collective>(kind)) {
    case Collective::AllReduce: return "allReduce";
    case Collective::AllReduceCoalesced: return "allReduceCoalesced";
    case Collective::Broadcast: return "broadcast";
    case Collective::AllGather: return "allGather";
    case Collective::ReduceScatter: return "reduceScatter";
    case Collective::Barrier: return "barrier";
  }
  return "?";
}

const char* op_name(int op) {
  switch (static_cast<ReduceOp>(op)) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Avg: return "avg";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

}  // namespace

bool ProcessGroup::agree(const char* what, const CallSignature& call) {
  if (size_ == 1) return true;
  // Fields as non-negative int32 (the count in two 31-bit halves), then their negations: one
  // all-reduce with max gives each field's maximum and minimum over the ranks.
  constexpr int kFields = 5;
  enum { kKind, kCountHigh, kCountLow, kDtype, kDetail };
  const int32_t mine[kFields] = {static_cast<int32_t>(call.kind), static_cast<int32_t>(call.count >> 31),
                                 static_cast<int32_t>(call.count & 0x7fffffff), static_cast<int32_t>(call.dtype),
                                 call.detail};
  int32_t v[2 * kFields];
  for (int f = 0; f < kFields; ++f) {
    v[f] = mine[f];
    v[kFields + f] = -mine[f];
  }
  if (!max_over_ranks(v, 2 * kFields)) return false;
  auto differs = [&](int f) { return v[f] != -v[kFields + f]; };
  bool any = false;
  for (int f = 0; f < kFields; ++f) any = any || differs(f);
  if (!any) return true;

  std::ostringstream theirs;
  const char* sep = "";
  auto add = [&](const std::string& s) {
    theirs << sep << s;
    sep = "; ";
  };
  if (differs(kKind)) {
    add(std::string("collectives ") + collective_name(-v[kFields + kKind]) + " .. " + collective_name(v[kKind]));
  }
  if (differs(kCountHigh) || differs(kCountLow)) {
    if (!differs(kCountHigh)) {
      const uint64_t high = static_cast<uint64_t>(v[kCountHigh]) << 31;
      add("element counts " + std::to_string(high + static_cast<uint64_t>(-v[kFields + kCountLow])) + " .. " +
          std::to_string(high + static_cast<uint64_t>(v[kCountLow])));
    } else {
      add("element counts differ");
    }
  }
  if (differs(kDtype)) {
    add(std::string("dtypes ") + dtype_name(static_cast<DType>(-v[kFields + kDtype])) + " and " +
        dtype_name(static_cast<DType>(v[kDtype])));
  }
  if (differs(kDetail) && !differs(kKind)) {
    const bool reduce = call.kind != Collective::Broadcast;
    add(reduce ? std::string("ops ") + op_name(-v[kFields + kDetail]) + " .. " + op_name(v[kDetail])
               : "roots " + std::to_string(-v[kFields + kDetail]) + " .. " + std::to_string(v[kDetail]));
  }
  std::string here = "barrier";
  if (call.kind != Collective::Barrier) {
    here = std::string(collective_name(mine[kKind])) + " of " + std::to_string(call.count) + " " + dtype_name(call.dtype) +
           " elements";
    if (call.kind == Collective::Broadcast) here += " from root " + std::to_string(call.detail);
    else if (call.kind != Collective::AllGather) here += std::string(", op ") + op_name(call.detail);
  }
  fail(Code::DistMismatch, what, ": the ranks made different calls (", theirs.str(), "); this rank: ", here,
       ". Every rank must call the same collectives in the same order, with tensors of the same size and dtype");
}

CommThread::CommThread() : thread_([this] { loop(); }) {}

CommThread::~CommThread() { stop(); }

void CommThread::submit(Job job, Done done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    done(std::make_exception_ptr(Error(Code::InvalidArgument, "dist: the process group was destroyed")));
    return;
  }
  queue_.emplace_back(std::move(job), std::move(done));
  cv_.notify_all();
}

void CommThread::run(Job job) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_ && queue_.empty() && !running_) {
      running_ = true;
      lock.unlock();
      std::exception_ptr error;
      execute(job, error);
      lock.lock();
      running_ = false;
      cv_.notify_all();
      if (error) std::rethrow_exception(error);
      return;
    }
  }
  auto promise = std::make_shared<std::promise<void>>();
  auto future = promise->get_future();
  submit(std::move(job), [promise](std::exception_ptr e) {
    if (e) promise->set_exception(e);
    else promise->set_value();
  });
  future.get();
}

void CommThread::execute(Job& job, std::exception_ptr& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    error = broken_;
  }
  if (error) return;
  try {
    job();
  } catch (const Error& e) {
    error = std::current_exception();
    // A failed collective leaves the peers out of step: every later one fails too.
    if (e.code() == Code::DistTimeout) {
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = error;
    }
  } catch (...) {
    error = std::current_exception();
  }
}

void CommThread::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id()) thread_.join();
}

void CommThread::loop() {
  for (;;) {
    std::pair<Job, Done> item;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return (stopping_ || !queue_.empty()) && !running_; });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
      running_ = true;
    }
    std::exception_ptr error;
    execute(item.first, error);
    // Drop the job (and the tensors it holds) before reporting, so that the caller keeps the last
    // references and frees them on its own thread.
    item.first = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running_ = false;
    }
    cv_.notify_all();
    item.second(error);
  }
}

}  // namespace joule::dist
