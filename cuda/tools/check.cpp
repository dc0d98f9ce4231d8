// joule_cuda_check: runs every registered GPU check (cuda/tools/check_*.cpp) against the CPU reference and reports
// PASS/FAIL per check, for GPU machines that have no Node.js (scripts/gpu-check.sh runs it).
//
//   joule_cuda_check                  all checks
//   joule_cuda_check gemm softmax     the checks whose name contains "gemm" or "softmax"
//   joule_cuda_check --list           the names, without touching the GPU
//   joule_cuda_check --json FILE      also write the results as JSON
//   joule_cuda_check --timeout SEC    give up (exit 3) when one check runs longer (default 120)
//   joule_cuda_check --cpu            a dry run on the CPU (no GPU needed): runs the checks' own code, CPU vs CPU
//
// Exit codes: 0 all passed, 1 a check failed, 2 no usable GPU, 3 a check timed out, 64 bad arguments.
#include "cuda/tools/check.h"

#include <cuda_runtime.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "core/storage.h"
#include "cuda/backend.h"
#include "ops/ops.h"

extern char** environ;

namespace joule::cuda_tools {
namespace {

struct Entry {
  std::string name;
  CheckFn fn;
};

// A function-local static: the registrars of other translation units may run before this file's globals exist.
std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

// splitmix64 (Steele, Lea, Flood 2014): tiny, well mixed, and independent of Joule's own generator, so the checks'
// inputs do not move when the library's RNG state or algorithm changes.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Tensor to_host_contiguous(const Tensor& t) {
  Tensor h = t.device().is_cpu() ? t : ops::to_device(t, Device::cpu());
  return ops::contiguous(h);
}

// Element i of a contiguous CPU tensor, as a double (exact for every Joule dtype).
double element(const Tensor& t, int64_t i) {
  return dispatch_dtype(t.dtype, [&](auto tag) -> double {
    using T = decltype(tag);
    return static_cast<double>(t.data<T>()[i]);
  });
}

std::string index_str(const Shape& shape, int64_t flat) {
  if (shape.empty()) return "[]";
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
    flat = shape[d] > 0 ? flat / shape[d] : 0;
  }
  std::ostringstream os;
  os << "[";
  for (size_t d = 0; d < idx.size(); ++d) os << (d ? ", " : "") << idx[d];
  os << "]";
  return os.str();
}

bool dry_run_on_cpu = false;

std::string num(double x) {
  std::ostringstream os;
  os << std::setprecision(9) << x;
  return os.str();
}

}  // namespace

CheckRegistrar::CheckRegistrar(const char* name, CheckFn fn) { registry().push_back({name, fn}); }

Device target_device() { return dry_run_on_cpu ? Device::cpu() : Device::cuda(0); }
bool dry_run() { return dry_run_on_cpu; }

Tensor random_cpu(const Shape& shape, uint64_t seed, float lo, float hi) {
  Tensor t = empty(shape, DType::Float32, Device::cpu());
  float* p = t.data<float>();
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + 1;
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    // The top 24 bits: every value exactly representable, and [lo, hi) stays half-open.
    float u = static_cast<float>(splitmix64(state) >> 40) * (1.0f / 16777216.0f);
    float v = lo + (hi - lo) * u;
    p[i] = v < hi ? v : lo;  // rounding can reach hi when the range is wide
  }
  return t;
}

Tensor random_int32_cpu(const Shape& shape, uint64_t seed, int32_t lo, int32_t hi) {
  JOULE_CHECK(hi > lo, Code::InvalidArgument, "random_int32_cpu: expected lo < hi, got ", lo, " and ", hi);
  Tensor t = empty(shape, DType::Int32, Device::cpu());
  int32_t* p = t.data<int32_t>();
  uint64_t state = seed * 0x2545F4914F6CDD1Dull + 7;
  const uint64_t range = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int32_t>(lo + static_cast<int64_t>(splitmix64(state) % range));
  return t;
}

void expect_close(const Tensor& got, const Tensor& want, double rtol, double atol, const std::string& what) {
  JOULE_CHECK(got.shape == want.shape, Code::Internal, what, ": shape ", shape_str(got.shape), ", expected ",
              shape_str(want.shape));
  JOULE_CHECK(got.dtype == want.dtype, Code::Internal, what, ": dtype ", dtype_name(got.dtype), ", expected ",
              dtype_name(want.dtype));
  const Tensor g = to_host_contiguous(got), w = to_host_contiguous(want);
  const bool exact = !is_floating(g.dtype) && atol == 0;
  const int64_t n = g.numel();
  int64_t bad = 0, first = -1, worst = -1;
  double worst_err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = element(g, i), y = element(w, i);
    bool ok;
    if (std::isnan(y)) {
      ok = std::isnan(x);
    } else if (std::isinf(y)) {
      ok = x == y;
    } else if (!std::isfinite(x)) {
      ok = false;
    } else {
      const double err = std::fabs(x - y);
      ok = exact ? x == y : err <= atol + rtol * std::fabs(y);
      if (err > worst_err) {
        worst_err = err;
        worst = i;
      }
    }
    if (!ok) {
      if (first < 0) first = i;
      ++bad;
    }
  }
  if (bad == 0) return;
  std::ostringstream os;
  os << what << ": " << bad << " of " << n << " elements differ (" << dtype_name(g.dtype) << " "
     << shape_str(g.shape) << ", rtol " << rtol << ", atol " << atol << "); first at " << index_str(g.shape, first)
     << ": got " << num(element(g, first)) << ", want " << num(element(w, first));
  if (worst >= 0) {
    os << "; largest |error| " << num(worst_err) << " at " << index_str(g.shape, worst) << " (got "
       << num(element(g, worst)) << ", want " << num(element(w, worst)) << ")";
  }
  throw Error(Code::Internal, os.str());
}

double expect_rel_l2(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  JOULE_CHECK(got.shape == want.shape, Code::Internal, what, ": shape ", shape_str(got.shape), ", expected ",
              shape_str(want.shape));
  JOULE_CHECK(got.dtype == DType::Float32 && want.dtype == DType::Float32, Code::Internal, what,
              ": expect_rel_l2 compares float32 tensors, got ", dtype_name(got.dtype), " and ", dtype_name(want.dtype));
  const Tensor g = to_host_contiguous(got), w = to_host_contiguous(want);
  const float* gp = g.data<float>();
  const float* wp = w.data<float>();
  double diff2 = 0, ref2 = 0;
  const int64_t n = g.numel();
  for (int64_t i = 0; i < n; ++i) {
    JOULE_CHECK(std::isfinite(gp[i]) || !std::isfinite(wp[i]), Code::Internal, what, ": element ",
                index_str(g.shape, i), " is ", gp[i], " where the reference is ", wp[i]);
    if (!std::isfinite(wp[i])) continue;
    const double d = static_cast<double>(gp[i]) - wp[i];
    diff2 += d * d;
    ref2 += static_cast<double>(wp[i]) * wp[i];
  }
  const double rel = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  JOULE_CHECK(rel <= tol, Code::Internal, what, ": relative L2 error ", num(rel), " exceeds ", tol, " (",
              dtype_name(g.dtype), " ", shape_str(g.shape), ")");
  return rel;
}

void expect_error(Code code, const std::string& what, const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.code() == code) return;
    fail(Code::Internal, what, ": expected a ", code_name(code), " error, got ", code_name(e.code()), ": ", e.what());
  } catch (const std::exception& e) {
    fail(Code::Internal, what, ": expected a ", code_name(code), " error, got a non-Joule exception: ", e.what());
  }
  fail(Code::Internal, what, ": expected a ", code_name(code), " error, but nothing was thrown");
}

namespace {

struct Options {
  bool list = false;
  bool cpu = false;    // dry run: target_device() is the CPU
  bool child = false;  // run by a parent whose CUDA context was lost: print only the check's own lines
  std::string exact;   // run exactly the check of this name
  std::string json;
  std::string result_file;  // --child: where to leave the check's status and message for the parent
  double timeout_s = 120;
  std::vector<std::string> filters;
};

struct Result {
  std::string name;
  std::string status;  // PASS, FAIL, TIMEOUT
  double ms = 0;
  std::string message;
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::mutex results_mutex;
std::vector<Result> results;
std::string device_description;
std::string no_gpu_reason;  // set when the checks could not run at all

void write_json(const std::string& path, double total_s) {
  if (path.empty()) return;
  std::lock_guard<std::mutex> lock(results_mutex);
  std::ofstream f(path);
  int passed = 0;
  for (auto& r : results) passed += r.status == "PASS";
  f << "{\n  \"device\": \"" << json_escape(device_description) << "\",\n  \"no_gpu\": \""
    << json_escape(no_gpu_reason) << "\",\n  \"passed\": " << passed
    << ",\n  \"failed\": " << results.size() - passed << ",\n  \"seconds\": " << total_s << ",\n  \"checks\": [\n";
  for (size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    f << "    {\"name\": \"" << json_escape(r.name) << "\", \"status\": \"" << r.status << "\", \"ms\": " << r.ms
      << ", \"message\": \"" << json_escape(r.message) << "\"}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  f << "  ]\n}\n";
}

// Stops the program when one check hangs (a kernel in an endless loop, a deadlock), saying which one, so that a
// hang costs one check's timeout rather than the whole GPU session.
class Watchdog {
 public:
  Watchdog(double timeout_s, std::string json, std::chrono::steady_clock::time_point start)
      : timeout_(timeout_s), json_(std::move(json)), start_(start), thread_([this] { loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void begin(const std::string& name) {
    std::lock_guard<std::mutex> lock(m_);
    name_ = name;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                       std::chrono::duration<double>(timeout_));
    armed_ = true;
    cv_.notify_all();
  }
  void end() {
    std::lock_guard<std::mutex> lock(m_);
    armed_ = false;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(m_);
    while (!stop_) {
      if (!armed_) {
        cv_.wait(lock);
        continue;
      }
      if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        std::printf("TIMEOUT  %s  (still running after %.0f s: a kernel hung or the check is far too slow)\n",
                    name_.c_str(), timeout_);
        {
          std::lock_guard<std::mutex> rl(results_mutex);
          results.push_back({name_, "TIMEOUT", timeout_ * 1000, "still running after the timeout"});
        }
        const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        write_json(json_, total);
        std::printf("SUMMARY: stopped at a timeout in '%s'; rerun the others with a filter\n", name_.c_str());
        std::fflush(stdout);
        std::_Exit(3);  // the hung kernel cannot be interrupted; leave without running destructors
      }
    }
  }

  double timeout_;
  std::string json_;
  std::chrono::steady_clock::time_point start_;
  std::mutex m_;
  std::condition_variable cv_;
  std::string name_;
  std::chrono::steady_clock::time_point deadline_;
  bool armed_ = false, stop_ = false;
  std::thread thread_;
};

int64_t live_cuda_bytes() {
  for (auto& m : memory_stats()) {
    if (m.device == "cuda:0") return m.bytes;
  }
  return 0;
}

// A "sticky" CUDA error (an illegal address, a trapped kernel) poisons the context for good: every later call fails
// with it. Then the remaining checks only make sense each in a fresh process.
bool context_lost(std::string& why) {
  cudaError_t first = cudaDeviceSynchronize();
  cudaGetLastError();
  cudaError_t second = cudaDeviceSynchronize();
  if (second == cudaSuccess) return false;
  why = std::string(cudaGetErrorName(second)) + ": " + cudaGetErrorString(second);
  (void)first;
  return true;
}

// Runs one check in this process; prints its line.
Result run_one(const Entry& e, Watchdog& dog) {
  Result r{e.name, "PASS", 0, ""};
  const int64_t live_before = live_cuda_bytes();
  const auto t0 = std::chrono::steady_clock::now();
  dog.begin(e.name);
  try {
    e.fn();
    if (!dry_run_on_cpu) cuda::synchronize(0);  // an asynchronous kernel fault shows up in the check that caused it
  } catch (const Error& err) {
    r.status = "FAIL";
    r.message = std::string(code_name(err.code())) + ": " + err.what();
  } catch (const std::exception& err) {
    r.status = "FAIL";
    r.message = std::string("exception: ") + err.what();
  } catch (...) {
    r.status = "FAIL";
    r.message = "unknown exception";
  }
  dog.end();
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s  %-60s %9.1f ms\n", r.status.c_str(), r.name.c_str(), r.ms);
  if (!r.message.empty()) std::printf("      %s\n", r.message.c_str());
  const int64_t leaked = live_cuda_bytes() - live_before;
  if (r.status == "PASS" && leaked > 0) {
    std::printf("      note: %lld bytes of cuda:0 tensors still live after the check\n", static_cast<long long>(leaked));
  }
  std::fflush(stdout);
  return r;
}

// Runs one check in a fresh process (after the context was lost); returns its result.
Result run_in_child(const std::string& name, const Options& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string timeout = std::to_string(opt.timeout_s);
  std::string result_file = "/tmp/joule_cuda_check." + std::to_string(getpid()) + ".result";
  std::remove(result_file.c_str());
  std::vector<std::string> args = {"joule_cuda_check", "--child",       "--timeout", timeout,
                                   "--exact",          name,            "--result-file", result_file};
  std::vector<char*> argv;
  if (opt.cpu) args.push_back("--cpu");
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid;
  int rc = 127, status = 0;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) == 0 && waitpid(pid, &status, 0) > 0) {
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  Result r{name, rc == 0 ? "PASS" : rc == 3 ? "TIMEOUT" : "FAIL",
           std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(), ""};
  std::ifstream f(result_file);
  std::string first_line;
  if (f && std::getline(f, first_line)) {
    std::getline(f, r.message, '\0');
  } else if (rc != 0) {
    r.message = "the fresh process ended with status " + std::to_string(rc) + " and left no result";
  }
  std::remove(result_file.c_str());
  return r;
}

void usage() {
  std::printf(
      "usage: joule_cuda_check [--list] [--json FILE] [--timeout SEC] [--cpu] [FILTER...]\n"
      "  runs the GPU checks (each CUDA kernel against the CPU reference) whose name contains any FILTER (all when\n"
      "  none is given). Exit codes: 0 all passed, 1 a check failed, 2 no usable GPU, 3 a check timed out.\n"
      "  --cpu: a dry run without a GPU (inputs stay on the CPU, so CPU is compared with CPU): it runs the checks'\n"
      "  own code (shapes, references, tolerances) before a GPU session is spent on them.\n");
}

bool parse(int argc, char** argv, Options& opt) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* what) -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(std::string(what) + " needs a value");
      return argv[++i];
    };
    if (a == "--list") {
      opt.list = true;
    } else if (a == "--cpu") {
      opt.cpu = true;
    } else if (a == "--child") {
      opt.child = true;
    } else if (a == "--result-file") {
      opt.result_file = value("--result-file");
    } else if (a == "--exact") {
      opt.exact = value("--exact");
    } else if (a == "--json") {
      opt.json = value("--json");
    } else if (a == "--timeout") {
      opt.timeout_s = std::atof(value("--timeout").c_str());
      if (!(opt.timeout_s > 0)) throw std::runtime_error("--timeout needs a positive number of seconds");
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else if (!a.empty() && a[0] == '-') {
      throw std::runtime_error("unknown option " + a);
    } else {
      opt.filters.push_back(a);
    }
  }
  return true;
}

std::string version_str(int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); }

// Prints device 0 (name, compute capability, driver and runtime versions); false when it cannot be read.
bool describe_gpu(bool quiet) {
  cudaDeviceProp prop;
  cudaError_t status = cudaGetDeviceProperties(&prop, 0);
  if (status != cudaSuccess) {
    no_gpu_reason = std::string("cudaGetDeviceProperties(0): ") + cudaGetErrorString(status);
    std::printf("joule_cuda_check: no usable GPU: %s\n", no_gpu_reason.c_str());
    return false;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::ostringstream os;
  os << prop.name << " (compute capability " << prop.major << "." << prop.minor << ", " << prop.multiProcessorCount
     << " SMs, " << std::fixed << std::setprecision(1) << prop.totalGlobalMem / double(1 << 30) << " GiB)";
  device_description = os.str();
  if (!quiet) {
    std::printf("device 0 of %d: %s; driver supports CUDA %s, runtime %s\n\n", cuda::device_count(),
                device_description.c_str(), version_str(driver).c_str(), version_str(runtime).c_str());
  }
  return true;
}

int main_impl(int argc, char** argv) {
  Options opt;
  try {
    parse(argc, argv, opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "joule_cuda_check: %s\n", e.what());
    usage();
    return 64;
  }
  std::vector<Entry> all = registry();
  std::stable_sort(all.begin(), all.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (size_t i = 1; i < all.size(); ++i) {
    if (all[i].name == all[i - 1].name) std::printf("warning: two checks are named '%s'\n", all[i].name.c_str());
  }
  std::vector<Entry> selected;
  for (auto& e : all) {
    bool take = opt.exact.empty() ? opt.filters.empty() : e.name == opt.exact;
    for (auto& f : opt.filters) take = take || e.name.find(f) != std::string::npos;
    if (take) selected.push_back(e);
  }
  if (opt.list) {
    for (auto& e : selected) std::printf("%s\n", e.name.c_str());
    return 0;
  }
  if (selected.empty()) {
    std::printf("joule_cuda_check: no check matches the filter (%zu checks registered; --list names them)\n",
                all.size());
    return 1;
  }

  const cuda::BuildInfo build = cuda::build_info();
  if (!opt.child) {
    std::printf("joule_cuda_check: %zu of %zu checks selected; built for CUDA architectures %s with CUDA runtime %s\n",
                selected.size(), all.size(), build.architectures.c_str(), version_str(build.runtime_version).c_str());
  }
  dry_run_on_cpu = opt.cpu;
  if (opt.cpu) {
    device_description = "cpu (dry run: CPU compared with CPU, the kernels are not tested)";
    if (!opt.child) std::printf("device: %s\n\n", device_description.c_str());
  } else if (cuda::device_count() == 0) {
    no_gpu_reason = cuda::unavailable_reason();
    std::printf("joule_cuda_check: no usable GPU: %s\n", no_gpu_reason.c_str());
    std::printf("SUMMARY: not run (no usable GPU)\n");
    std::fflush(stdout);
    write_json(opt.json, 0);
    return 2;
  } else if (!describe_gpu(opt.child)) {
    return 2;
  }
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  Watchdog dog(opt.timeout_s, opt.json, start);
  bool lost = false;
  std::string lost_why;
  for (auto& e : selected) {
    Result r;
    if (!lost) {
      r = run_one(e, dog);
      if (r.status != "PASS" && !opt.cpu && context_lost(lost_why)) {
        lost = true;
        if (opt.child) {
          std::lock_guard<std::mutex> lock(results_mutex);
          results.push_back(r);
          break;
        }
        std::printf("      the CUDA context is lost (%s): each remaining check runs in a fresh process\n",
                    lost_why.c_str());
      }
    } else {
      r = run_in_child(e.name, opt);
    }
    std::lock_guard<std::mutex> lock(results_mutex);
    results.push_back(r);
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  int passed = 0;
  for (auto& r : results) passed += r.status == "PASS";
  const int failed = static_cast<int>(results.size()) - passed;
  if (!opt.result_file.empty() && !results.empty()) {
    std::ofstream f(opt.result_file);
    f << results.back().status << "\n" << results.back().message;
  }
  if (!opt.child) {
    std::printf("\n");
    if (failed > 0) {
      std::printf("failed:\n");
      for (auto& r : results) {
        if (r.status != "PASS") std::printf("  %s\n", r.name.c_str());
      }
    }
    std::printf("SUMMARY: %d passed, %d failed of %zu checks in %.1f s on %s\n", passed, failed, results.size(), total,
                device_description.c_str());
  }
  write_json(opt.json, total);
  std::fflush(stdout);
  return failed > 0 ? 1 : 0;
}

}  // namespace
}  // namespace joule::cuda_tools

int main(int argc, char** argv) {
  try {
    return joule::cuda_tools::main_impl(argc, argv);
  } catch (const std::exception& e) {
    std::printf("joule_cuda_check: unexpected error: %s\n", e.what());
    return 1;
  }
}
