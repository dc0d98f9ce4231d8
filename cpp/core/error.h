// joule::Error is the one exception type the core throws; the bindings turn it into a
// JavaScript JouleError carrying the same stable code.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace joule {

enum class Code {
  ShapeMismatch,
  Dtype,
  Device,
  Disposed,
  OutOfMemory,
  InvalidArgument,
  BackendUnavailable,
  DistTimeout,
  DistMismatch,
  CheckpointCorrupt,
  Internal,
};

const char* code_name(Code code);

class Error : public std::runtime_error {
 public:
  Error(Code code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Code code() const { return code_; }

 private:
  Code code_;
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// fail(Code::Dtype, "expected float32, got ", name) builds the message from its parts.
template <typename... Parts>
[[noreturn]] void fail(Code code, const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(code, os.str());
}

// For conditions whose message parts are cheap (numbers, literals). Where a part costs work
// (shape_str, device names), use JOULE_CHECK, which builds the message only on failure.
template <typename... Parts>
void check(bool ok, Code code, const Parts&... parts) {
  if (!ok) fail(code, parts...);
}

}  // namespace joule

// JOULE_CHECK(condition, code, message parts...): the parts are evaluated only when the
// condition fails, so a check on a hot path costs one branch.
#define JOULE_CHECK(condition, code, ...)    \
  do {                                       \
    if (!(condition)) ::joule::fail(code, __VA_ARGS__); \
  } while (0)
