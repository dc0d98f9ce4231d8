#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace joule {

enum class DType : uint8_t { Float32 = 0, Int32 = 1, Int8 = 2, UInt8 = 3 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::Float32:
    case DType::Int32: return 4;
    case DType::Int8:
    case DType::UInt8: return 1;
  }
  return 1;
}

inline bool is_floating(DType t) { return t == DType::Float32; }

const char* dtype_name(DType t);
DType parse_dtype(const std::string& name);  // throws DTYPE on an unknown name

// The dtype of a binary arithmetic result: float32 if either side is float, else int32 when
// the two integer types differ, else the shared type (NumPy-like, without float64).
DType promote(DType a, DType b);

template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::Float32; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::Int8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::UInt8; };

// The one rule for turning a number into element type To: float to integer truncates toward
// zero and saturates (NaN becomes 0; C++ leaves out-of-range conversions undefined); between
// integer types it wraps, as a C cast to a narrower two's-complement type does.
template <typename To, typename From>
To convert_value(From x) {
  if constexpr (std::is_floating_point_v<To>) {
    return static_cast<To>(x);
  } else if constexpr (std::is_floating_point_v<From>) {
    if (x != x) return To(0);
    constexpr double lo = static_cast<double>(std::numeric_limits<To>::min());
    constexpr double hi = static_cast<double>(std::numeric_limits<To>::max());
    double d = static_cast<double>(x);
    if (d <= lo) return std::numeric_limits<To>::min();
    if (d >= hi) return std::numeric_limits<To>::max();
    return static_cast<To>(d);
  } else {
    return static_cast<To>(x);
  }
}

// Calls fn with a value of the C++ type of `t` (the value itself is meaningless: use decltype).
template <typename F>
decltype(auto) dispatch_dtype(DType t, F&& fn) {
  switch (t) {
    case DType::Float32: return fn(float{});
    case DType::Int32: return fn(int32_t{});
    case DType::Int8: return fn(int8_t{});
    case DType::UInt8: return fn(uint8_t{});
  }
  return fn(float{});
}

}  // namespace joule
