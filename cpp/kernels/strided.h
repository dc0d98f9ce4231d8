// Walks N operands of one shape with their own strides, in runs along the innermost dimension.
// Dimensions of size 1 are dropped and dimensions that are contiguous in every operand are
// merged first, so a contiguous tensor is a single run however many dimensions it has.
#pragma once
#include <array>
#include <cstdint>

#include "core/tensor.h"
#include "core/threadpool.h"

namespace joule::kernels {

template <size_t N>
struct Layout {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];
};

template <size_t N>
Layout<N> coalesce(const Shape& shape, const std::array<const Shape*, N>& strides) {
  Layout<N> l;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (l.ndim > 0) {
      bool mergeable = true;
      for (size_t k = 0; k < N; ++k) {
        mergeable = mergeable && l.strides[k][l.ndim - 1] == (*strides[k])[d] * shape[d];
      }
      if (mergeable) {
        l.shape[l.ndim - 1] *= shape[d];
        for (size_t k = 0; k < N; ++k) l.strides[k][l.ndim - 1] = (*strides[k])[d];
        continue;
      }
    }
    l.shape[l.ndim] = shape[d];
    for (size_t k = 0; k < N; ++k) l.strides[k][l.ndim] = (*strides[k])[d];
    ++l.ndim;
  }
  return l;
}

// body(count, offsets, inner_strides): `count` elements starting at element offsets[k] of
// operand k, stepping inner_strides[k]. Covers the linear element range [begin, end).
template <size_t N, typename Body>
void for_each_run(const Layout<N>& l, int64_t begin, int64_t end, Body&& body) {
  std::array<int64_t, N> offsets{}, inner{};
  if (l.ndim == 0) {
    if (begin < end) body(int64_t{1}, offsets, inner);
    return;
  }
  const int last = l.ndim - 1;
  for (size_t k = 0; k < N; ++k) inner[k] = l.strides[k][last];
  int64_t idx[kMaxDims];
  int64_t rem = begin;
  for (int d = last; d >= 0; --d) {
    idx[d] = rem % l.shape[d];
    rem /= l.shape[d];
  }
  for (int64_t pos = begin; pos < end;) {
    for (size_t k = 0; k < N; ++k) {
      int64_t off = 0;
      for (int d = 0; d <= last; ++d) off += idx[d] * l.strides[k][d];
      offsets[k] = off;
    }
    int64_t count = l.shape[last] - idx[last];
    if (count > end - pos) count = end - pos;
    body(count, offsets, inner);
    pos += count;
    idx[last] += count;
    for (int d = last; d > 0 && idx[d] >= l.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

// Elements per worker below which threading costs more than it saves.
constexpr int64_t kElementwiseGrain = 1 << 15;

template <size_t N, typename Body>
void parallel_runs(const Shape& shape, const std::array<const Shape*, N>& strides, int64_t grain, Body&& body) {
  Layout<N> l = coalesce<N>(shape, strides);
  int64_t total = 1;
  for (int d = 0; d < l.ndim; ++d) total *= l.shape[d];
  for (int64_t d : shape) if (d == 0) return;
  parallel_for(total, grain, [&](int64_t b, int64_t e) { for_each_run<N>(l, b, e, body); });
}

}  // namespace joule::kernels
