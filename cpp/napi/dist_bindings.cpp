// Bindings of the dist module: the rendezvous store (server and client), the default process
// group and its collectives. Synchronous collectives block the JavaScript thread until their
// turn on the group's communication thread has run; the *Async forms return a Promise settled
// from that thread through a thread-safe function, so the JavaScript thread stays free.
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "core/error.h"
#include "dist/process_group.h"
#include "dist/store.h"
#include "napi/addon_data.h"
#include "napi/convert.h"
#include "napi/handle.h"
#include "napi/registry.h"

namespace joule::napi {
namespace {

using dist::Bytes;
using dist::Millis;

// ---- standalone stores (the launcher hosts one; tests and lib/dist talk to them) ----

std::map<int, std::unique_ptr<dist::StoreServer>> servers;
std::map<int, std::shared_ptr<dist::StoreClient>> clients;
int next_id = 1;

dist::StoreClient& client(const Napi::CallbackInfo& info, size_t i) {
  int64_t id = to_int(info, i, "store");
  auto it = clients.find(static_cast<int>(id));
  JOULE_CHECK(it != clients.end(), Code::InvalidArgument, "store: this store client was closed");
  return *it->second;
}

Bytes to_bytes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  if (v.IsString()) {
    std::string s = v.As<Napi::String>().Utf8Value();
    return Bytes(s.begin(), s.end());
  }
  if (v.IsBuffer()) {
    auto b = v.As<Napi::Buffer<char>>();
    return Bytes(b.Data(), b.Data() + b.Length());
  }
  if (v.IsTypedArray()) {
    auto t = v.As<Napi::TypedArray>();
    const char* p = static_cast<const char*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    return Bytes(p, p + t.ByteLength());
  }
  fail(Code::InvalidArgument, "store: expected '", name, "' to be a string, Buffer or Uint8Array");
}

Millis to_ms(const Napi::CallbackInfo& info, size_t i, const char* name) {
  int64_t ms = to_int(info, i, name);
  JOULE_CHECK(ms > 0, Code::InvalidArgument, "expected ", name, " to be a positive number of milliseconds, got ", ms);
  return Millis(ms);
}

std::vector<std::string> to_strings(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = arg(info, i, name);
  JOULE_CHECK(v.IsArray(), Code::InvalidArgument, "store: expected '", name, "' to be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    JOULE_CHECK(e.IsString(), Code::InvalidArgument, "store: expected '", name, "' to be an array of strings");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

Napi::Value buffer(Napi::Env env, const Bytes& b) { return Napi::Buffer<char>::Copy(env, b.data(), b.size()); }

Napi::Value StoreServe(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    auto server = std::make_unique<dist::StoreServer>(to_string(info, 0, "host"), static_cast<int>(to_int(info, 1, "port")),
                                                      to_string(info, 2, "secret"));
    int id = next_id++;
    int port = server->port();
    servers[id] = std::move(server);
    Napi::Array out = Napi::Array::New(info.Env(), 2);
    out.Set(0u, Napi::Number::New(info.Env(), id));
    out.Set(1u, Napi::Number::New(info.Env(), port));
    return out;
  });
}

Napi::Value StoreServerStop(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    servers.erase(static_cast<int>(to_int(info, 0, "server")));
    return info.Env().Undefined();
  });
}

Napi::Value StoreConnect(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    auto c = std::make_shared<dist::StoreClient>(to_string(info, 0, "host"), static_cast<int>(to_int(info, 1, "port")),
                                                 to_string(info, 2, "secret"), to_ms(info, 3, "timeoutMs"));
    int id = next_id++;
    clients[id] = c;
    return Napi::Number::New(info.Env(), id);
  });
}

Napi::Value StoreClose(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    clients.erase(static_cast<int>(to_int(info, 0, "store")));
    return info.Env().Undefined();
  });
}

Napi::Value StoreSet(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    client(info, 0).set(to_string(info, 1, "key"), to_bytes(info, 2, "value"));
    return info.Env().Undefined();
  });
}

Napi::Value StoreGet(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    auto& c = client(info, 0);
    Millis t = info.Length() > 2 && !info[2].IsUndefined() ? to_ms(info, 2, "timeoutMs") : Millis(-1);
    return buffer(info.Env(), c.get(to_string(info, 1, "key"), t));
  });
}

Napi::Value StoreAdd(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(client(info, 0).add(to_string(info, 1, "key"), to_int(info, 2, "delta"))));
  });
}

Napi::Value StoreCompareSet(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    return buffer(info.Env(), client(info, 0).compare_set(to_string(info, 1, "key"), to_bytes(info, 2, "expected"),
                                                          to_bytes(info, 3, "desired")));
  });
}

Napi::Value StoreWait(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    auto& c = client(info, 0);
    Millis t = info.Length() > 2 && !info[2].IsUndefined() ? to_ms(info, 2, "timeoutMs") : Millis(-1);
    c.wait(to_strings(info, 1, "keys"), t);
    return info.Env().Undefined();
  });
}

Napi::Value StoreCheck(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), client(info, 0).check(to_strings(info, 1, "keys")));
  });
}

Napi::Value StoreDelete(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), client(info, 0).remove(to_string(info, 1, "key")));
  });
}

// ---- the default process group ----

// One per process (a process is one rank), owned by the JavaScript environment (main thread or
// worker) that called init(): its promises settle there, and it ends with that environment.
struct Group {
  napi_env owner = nullptr;
  int rank = 0, size = 1;  // fixed at init(): Info reads them from any thread
  std::string backend;
  size_t blocking_send_bytes = 0;
  std::unique_ptr<dist::StoreServer> server;
  std::unique_ptr<dist::StoreClient> store;
  std::unique_ptr<dist::ProcessGroup> pg;
  std::unique_ptr<dist::CommThread> comm;
  Napi::ThreadSafeFunction tsfn;
  int pending = 0;        // async operations in flight (owner's thread only)
  bool released = false;  // tsfn released or closing (owner's thread only)
};
// The current group, shared with the completions in flight. Guarded by group_mu: any JavaScript
// thread may call in. The holder is never destroyed: at process exit a static destructor would
// wait for a collective still in flight on the communication thread.
std::mutex group_mu;
auto* const group = new std::shared_ptr<Group>();
int generation = 0;

std::shared_ptr<Group> current(Napi::Env env) {
  std::lock_guard<std::mutex> lock(group_mu);
  JOULE_CHECK(*group != nullptr, Code::InvalidArgument, "dist: not initialised: call dist.init() first");
  JOULE_CHECK((*group)->owner == env, Code::InvalidArgument,
              "dist: the process group belongs to another thread (the main thread or a worker that called dist.init()); "
              "call dist functions from that thread");
  return *group;
}

// Stops the group: waits for the queued collectives (each bounded by the timeout), then frees
// its parts; the Group itself lives on while completions in flight refer to it.
void shut_down(Group& g) {
  g.released = true;
  g.comm->stop();
  g.comm.reset();
  g.pg.reset();
  g.store.reset();
  g.server.reset();
}

// When the owning environment ends without destroy() (a worker terminated, or exiting), the
// group goes with it; another thread may then init() again. Node closes the group's
// thread-safe function itself.
void end_with_environment(void* owned) {
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(group_mu);
    if (group->get() != owned) return;
    g = std::move(*group);
  }
  shut_down(*g);
}

struct Completion {
  std::shared_ptr<Group> group;
  Napi::Promise::Deferred deferred;
  std::exception_ptr error;
  std::optional<Tensor> result;
  std::vector<Tensor> keep;  // the operands: their last references are dropped on the JavaScript thread
};

Napi::Value error_value(Napi::Env env, std::exception_ptr e) {
  std::string code = "INTERNAL", message = "unknown error";
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    code = code_name(err.code());
    message = err.what();
  } catch (const std::exception& err) {
    message = err.what();
  } catch (...) {
  }
  Napi::FunctionReference& factory = addon_data(env).error_factory;
  if (!factory.IsEmpty()) {
    Napi::Value v = factory.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (v.IsObject()) return v;
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err.Value();
}

// Runs job on the communication thread: synchronously (returns result or undefined) or as a
// Promise of it.
Napi::Value dispatch(const Napi::CallbackInfo& info, bool async, std::function<void()> job, std::optional<Tensor> result,
                     std::vector<Tensor> keep) {
  std::shared_ptr<Group> g = current(info.Env());
  Napi::Env env = info.Env();
  if (!async) {
    g->comm->run(std::move(job));
    return result ? TensorHandle::wrap(env, *result) : env.Undefined();
  }
  auto* c = new Completion{g, Napi::Promise::Deferred::New(env), nullptr, std::move(result), std::move(keep)};
  Napi::Promise promise = c->deferred.Promise();
  if (g->pending++ == 0) g->tsfn.Ref(env);
  Napi::ThreadSafeFunction tsfn = g->tsfn;
  g->comm->submit(std::move(job), [c, tsfn](std::exception_ptr e) mutable {
    c->error = e;
    // Refused once the owning environment is closing: nobody is left to settle the promise.
    napi_status queued = tsfn.BlockingCall(c, [](Napi::Env env, Napi::Function, Completion* done) {
      std::unique_ptr<Completion> own(done);
      Group& owner = *done->group;
      if (--owner.pending == 0 && !owner.released) owner.tsfn.Unref(env);
      if (done->error) {
        done->deferred.Reject(error_value(env, done->error));
      } else {
        done->deferred.Resolve(done->result ? TensorHandle::wrap(env, *done->result) : env.Undefined());
      }
    });
    if (queued != napi_ok) delete c;
  });
  return promise;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    auto initialised = [] {
      std::lock_guard<std::mutex> lock(group_mu);
      return *group != nullptr;
    };
    JOULE_CHECK(!initialised(), Code::InvalidArgument, "dist: already initialised: call dist.destroy() first");
    JOULE_CHECK(info.Length() > 0 && info[0].IsObject(), Code::InvalidArgument, "dist.init: expected an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    // Checked field by field: As<>() does not check, and a wrong type would leave as a TypeError.
    auto field = [&](const char* k, bool ok, const char* what) {
      JOULE_CHECK(ok, Code::InvalidArgument, "dist.init: expected '", k, "' to be ", what);
      return o.Get(k);
    };
    auto str = [&](const char* k) { return field(k, o.Get(k).IsString(), "a string").As<Napi::String>().Utf8Value(); };
    auto num = [&](const char* k) {
      return static_cast<int>(field(k, o.Get(k).IsNumber(), "a number").As<Napi::Number>().Int64Value());
    };
    std::string backend = str("backend");
    int rank = num("rank"), size = num("worldSize"), port = num("masterPort"), device = num("device");
    std::string addr = str("masterAddr"), secret = str("secret"), hostname = str("hostname");
    Millis timeout(field("timeoutMs", o.Get("timeoutMs").IsNumber(), "a number").As<Napi::Number>().Int64Value());
    bool host_store = field("hostStore", o.Get("hostStore").IsBoolean(), "a boolean").As<Napi::Boolean>().Value();
    JOULE_CHECK(size >= 1 && rank >= 0 && rank < size, Code::InvalidArgument, "dist.init: RANK must be in 0..WORLD_SIZE-1, got RANK=",
                rank, " WORLD_SIZE=", size);
    JOULE_CHECK(timeout.count() > 0, Code::InvalidArgument, "dist.init: timeoutMs must be positive");
    if (backend == "nccl") {
      std::string why = dist::nccl_unavailable_reason();
      if (!why.empty()) fail(Code::BackendUnavailable, "dist: the nccl backend is unavailable: ", why);
    } else if (backend == "gloo") {
      if (!dist::gloo_compiled()) fail(Code::BackendUnavailable, "dist: ", dist::gloo_unavailable_reason());
    } else {
      fail(Code::InvalidArgument, "dist.init: expected backend 'gloo' or 'nccl', got '", backend, "'");
    }
    auto g = std::make_shared<Group>();
    g->rank = rank;
    g->size = size;
    g->backend = backend;
    if (host_store) g->server = std::make_unique<dist::StoreServer>(addr, port, secret);
    g->store = std::make_unique<dist::StoreClient>(addr, port, secret, timeout);
    std::string prefix = "joule/" + std::to_string(++generation) + "/";
    if (backend == "gloo") g->pg = dist::make_gloo_group(*g->store, prefix, rank, size, timeout, hostname);
    else g->pg = dist::make_nccl_group(*g->store, prefix, rank, size, timeout, device);
    g->blocking_send_bytes = g->pg->blocking_send_bytes();
    g->comm = std::make_unique<dist::CommThread>();
    // Every rank has finished connecting (and so no longer needs the store) past this point.
    dist::ProcessGroup* pg = g->pg.get();
    g->comm->run([pg] { pg->barrier(); });
    g->tsfn = Napi::ThreadSafeFunction::New(info.Env(), Napi::Function::New(info.Env(), [](const Napi::CallbackInfo&) {}),
                                            "joule-dist", 0, 1);
    g->tsfn.Unref(info.Env());
    g->owner = info.Env();
    bool installed = false;
    {
      std::lock_guard<std::mutex> lock(group_mu);
      if (*group == nullptr) *group = g;
      installed = *group == g;
    }
    if (!installed) {  // another thread's init() finished first
      g->tsfn.Release();
      shut_down(*g);
      fail(Code::InvalidArgument, "dist: already initialised (by another thread)");
    }
    NAPI_THROW_IF_FAILED(info.Env(), napi_add_env_cleanup_hook(info.Env(), end_with_environment, g.get()), Napi::Value());
    return Napi::String::New(info.Env(), backend);
  });
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g;
    {
      std::lock_guard<std::mutex> lock(group_mu);
      if (*group == nullptr) return info.Env().Undefined();
    }
    g = current(info.Env());  // only the owner destroys it
    {
      std::lock_guard<std::mutex> lock(group_mu);
      group->reset();
    }
    napi_remove_env_cleanup_hook(info.Env(), end_with_environment, g.get());
    g->comm->stop();  // the completions of queued work go out before the release
    g->tsfn.Release();
    shut_down(*g);
    return info.Env().Undefined();
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    std::shared_ptr<Group> g;
    {
      std::lock_guard<std::mutex> lock(group_mu);
      g = *group;
    }
    o.Set("initialized", Napi::Boolean::New(env, g != nullptr));
    o.Set("rank", Napi::Number::New(env, g ? g->rank : 0));
    o.Set("worldSize", Napi::Number::New(env, g ? g->size : 1));
    o.Set("backend", g ? Napi::Value(Napi::String::New(env, g->backend)) : env.Null());
    o.Set("glooCompiled", Napi::Boolean::New(env, dist::gloo_compiled()));
    o.Set("blockingSendBytes", Napi::Number::New(env, g ? static_cast<double>(g->blocking_send_bytes) : 0));
    o.Set("ncclUnavailableReason", Napi::String::New(env, dist::nccl_unavailable_reason()));
    return o;
  });
}

// Each collective's last argument, `verify`, runs ProcessGroup::agree first (the public dist
// functions pass true; DDP's bucket all-reduces pass false: their layout is agreed once, when the
// model is wrapped).
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    Tensor t = to_tensor(info, 0, "tensor");
    dist::ReduceOp op = dist::parse_reduce_op(to_string(info, 1, "op"));
    g->pg->check_tensor(t, "allReduce");
    const bool verify = to_bool(info, 3, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 2, "async"), [pg, t, op, verify] {
      const auto count = static_cast<size_t>(t.numel());
      if (verify) pg->agree("allReduce", {dist::Collective::AllReduce, count, t.dtype, static_cast<int>(op)});
      pg->allreduce(t.raw(), count, t.dtype, op);
    }, std::nullopt, {t});
  });
}

Napi::Value AllReduceCoalesced(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    std::vector<Tensor> ts = to_tensors(info, 0, "tensors");
    dist::ReduceOp op = dist::parse_reduce_op(to_string(info, 1, "op"));
    for (const auto& t : ts) {
      g->pg->check_tensor(t, "allReduceCoalesced");
      JOULE_CHECK(t.dtype == ts[0].dtype, Code::Dtype, "allReduceCoalesced: all tensors must have one dtype");
    }
    const bool verify = to_bool(info, 3, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 2, "async"), [pg, ts, op, verify] {
      if (verify) {
        size_t count = 0;
        for (const auto& t : ts) count += static_cast<size_t>(t.numel());
        pg->agree("allReduceCoalesced", {dist::Collective::AllReduceCoalesced, count,
                                         ts.empty() ? DType::Float32 : ts[0].dtype, static_cast<int>(op)});
      }
      pg->allreduce_coalesced(ts, op);
    }, std::nullopt, ts);
  });
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    Tensor t = to_tensor(info, 0, "tensor");
    int64_t root = to_int(info, 1, "root");
    JOULE_CHECK(root >= 0 && root < g->pg->size(), Code::InvalidArgument, "broadcast: root must be in 0..", g->pg->size() - 1,
                ", got ", root);
    g->pg->check_tensor(t, "broadcast");
    const bool verify = to_bool(info, 3, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 2, "async"), [pg, t, root, verify] {
      const auto count = static_cast<size_t>(t.numel());
      if (verify) pg->agree("broadcast", {dist::Collective::Broadcast, count, t.dtype, static_cast<int>(root)});
      pg->broadcast(t.raw(), count, t.dtype, static_cast<int>(root));
    }, std::nullopt, {t});
  });
}

Napi::Value AllGather(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    Tensor t = to_tensor(info, 0, "tensor");
    g->pg->check_tensor(t, "allGather");
    Shape shape = t.shape;
    shape.insert(shape.begin(), g->pg->size());
    Tensor out = empty(shape, t.dtype, t.device());
    const bool verify = to_bool(info, 2, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 1, "async"), [pg, t, out, verify] {
      const auto count = static_cast<size_t>(t.numel());
      if (verify) pg->agree("allGather", {dist::Collective::AllGather, count, t.dtype, 0});
      pg->allgather(out.raw(), t.raw(), count, t.dtype);
    }, out, {t});
  });
}

Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    Tensor t = to_tensor(info, 0, "tensor");
    dist::ReduceOp op = dist::parse_reduce_op(to_string(info, 1, "op"));
    g->pg->check_tensor(t, "reduceScatter");
    int64_t n = g->pg->size();
    JOULE_CHECK(t.dim() >= 1 && t.shape[0] % n == 0, Code::ShapeMismatch, "reduceScatter: the first dimension (",
                t.dim() ? t.shape[0] : 0, ") must be a multiple of the world size ", n);
    Shape shape = t.shape;
    shape[0] /= n;
    Tensor out = empty(shape, t.dtype, t.device());
    const bool verify = to_bool(info, 3, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 2, "async"), [pg, t, out, op, verify] {
      if (verify) {
        pg->agree("reduceScatter", {dist::Collective::ReduceScatter, static_cast<size_t>(t.numel()), t.dtype, static_cast<int>(op)});
      }
      pg->reduce_scatter(out.raw(), t.raw(), static_cast<size_t>(out.numel()), t.dtype, op);
    }, out, {t});
  });
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  return guard(info, [&]() -> Napi::Value {
    std::shared_ptr<Group> g = current(info.Env());
    const bool verify = to_bool(info, 1, "verify");
    dist::ProcessGroup* pg = g->pg.get();
    return dispatch(info, to_bool(info, 0, "async"), [pg, verify] {
      // A comparison of the calls is itself a barrier.
      if (!(verify && pg->agree("barrier", {dist::Collective::Barrier, 0, DType::Float32, 0}))) pg->barrier();
    }, std::nullopt, {});
  });
}

}  // namespace

std::vector<Binding> dist_bindings() {
  return {
      {"distStoreServe", StoreServe},
      {"distStoreServerStop", StoreServerStop},
      {"distStoreConnect", StoreConnect},
      {"distStoreClose", StoreClose},
      {"distStoreSet", StoreSet},
      {"distStoreGet", StoreGet},
      {"distStoreAdd", StoreAdd},
      {"distStoreCompareSet", StoreCompareSet},
      {"distStoreWait", StoreWait},
      {"distStoreCheck", StoreCheck},
      {"distStoreDelete", StoreDelete},
      {"distInit", Init},
      {"distDestroy", Destroy},
      {"distInfo", Info},
      {"distAllReduce", AllReduce},
      {"distAllReduceCoalesced", AllReduceCoalesced},
      {"distBroadcast", Broadcast},
      {"distAllGather", AllGather},
      {"distReduceScatter", ReduceScatter},
      {"distBarrier", Barrier},
  };
}

}  // namespace joule::napi
