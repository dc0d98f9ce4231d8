#include <cstring>
#include <vector>

#include "core/threadpool.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

void require_index(const Tensor& index, const char* op) {
  JOULE_CHECK(index.dtype == DType::Int32, Code::Dtype, op, ": expected int32 indices, got ", dtype_name(index.dtype));
}

int64_t checked_index(int32_t i, int64_t size, const char* op) {
  JOULE_CHECK(i >= -size && i < size, Code::InvalidArgument, op, ": index ", i, " is out of range for a dimension of size ",
        size);
  return i < 0 ? i + size : i;
}

// CUDA indices are checked on the device; the first bad one is read back and reported with the CPU's message.
void check_indices_on_device(const Tensor& idx, int64_t size, const char* op) {
  int32_t bad = 0;
  if (cuda::first_invalid_index(idx, size, &bad) >= 0) checked_index(bad, size, op);
}

// A contiguous shape seen as [outer, size, inner] around `axis`.
struct Slices {
  int64_t outer = 1, size = 1, inner = 1;
};
Slices slices_of(const Shape& shape, int64_t axis) {
  Slices s;
  for (int64_t d = 0; d < axis; ++d) s.outer *= shape[d];
  s.size = shape[axis];
  for (int64_t d = axis + 1; d < static_cast<int64_t>(shape.size()); ++d) s.inner *= shape[d];
  return s;
}

}  // namespace

Tensor index_select(const Tensor& a, int64_t axis, const Tensor& index) {
  require_same_device(a, index, "indexSelect");
  require_index(index, "indexSelect");
  JOULE_CHECK(index.dim() <= 1, Code::ShapeMismatch, "indexSelect: expected a 1-D index, got shape ", shape_str(index.shape));
  JOULE_CHECK(a.dim() > 0, Code::InvalidArgument, "indexSelect: cannot index a 0-d tensor");
  axis = normalize_axis(axis, a.dim(), "indexSelect");
  Tensor idx = contiguous(index);
  int64_t count = idx.numel();
  if (a.device().is_cuda()) {
    check_indices_on_device(idx, a.shape[axis], "indexSelect");
    Shape shape = a.shape;
    shape[axis] = count;
    Tensor out = empty(shape, a.dtype, a.device());
    cuda::index_select(a, axis, idx, out);
    return out;
  }
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) rows[i] = checked_index(idx.data<int32_t>()[i], a.shape[axis], "indexSelect");
  Shape shape = a.shape;
  shape[axis] = count;
  Tensor out = empty(shape, a.dtype, a.device());
  if (a.is_contiguous()) {
    // [outer, size, inner] blocks: one memcpy per picked slice (an embedding lookup picks rows;
    // going through a view and a strided copy per row cost ~1 µs each).
    const Slices sl = slices_of(a.shape, axis);
    const size_t bytes = static_cast<size_t>(sl.inner) * dtype_size(a.dtype);
    const auto* src = static_cast<const char*>(a.raw());
    auto* dst = static_cast<char*>(out.raw());
    for (int64_t o = 0; o < sl.outer; ++o) {
      for (int64_t i = 0; i < count; ++i) {
        std::memcpy(dst + static_cast<size_t>(o * count + i) * bytes,
                    src + static_cast<size_t>(o * sl.size + rows[i]) * bytes, bytes);
      }
    }
    return out;
  }
  for (int64_t i = 0; i < count; ++i) {
    copy_into(select(out, axis, i), select(a, axis, rows[i]));
  }
  return out;
}

Tensor index_add(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& src) {
  const char* op = "indexAdd";
  require_same_device(a, index, op);
  require_same_device(a, src, op);
  require_index(index, op);
  JOULE_CHECK(index.dim() <= 1, Code::ShapeMismatch, op, ": expected a 1-D index, got shape ", shape_str(index.shape));
  JOULE_CHECK(a.dim() > 0, Code::InvalidArgument, op, ": cannot index a 0-d tensor");
  axis = normalize_axis(axis, a.dim(), op);
  const int64_t count = index.numel();
  Shape expected = a.shape;
  expected[axis] = count;
  JOULE_CHECK(src.shape == expected, Code::ShapeMismatch, op, ": expected src of shape ", shape_str(expected),
              " (the input's, with the index's ", count, " along axis ", axis, "), got ", shape_str(src.shape));
  if (a.device().is_cuda()) {
    // The scatter-add kernel with the index spread over src's shape (deterministic, as on the CPU).
    Shape column(static_cast<size_t>(a.dim()), 1);
    column[axis] = count;
    return scatter_add(a, axis, contiguous(expand(reshape(index, column), src.shape)), src);
  }
  Tensor idx = contiguous(index);
  std::vector<int64_t> rows(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) rows[i] = checked_index(idx.data<int32_t>()[i], a.shape[axis], op);
  Tensor out = contiguous(clone(a));
  Tensor s = contiguous(cast(src, a.dtype));
  const Slices sl = slices_of(a.shape, axis);
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* ps = s.data<T>();
    T* po = out.data<T>();
    // Slices in index order, so repeated rows accumulate in a fixed order (deterministic).
    for (int64_t o = 0; o < sl.outer; ++o) {
      for (int64_t i = 0; i < count; ++i) {
        T* d = po + (o * sl.size + rows[i]) * sl.inner;
        const T* x = ps + (o * count + i) * sl.inner;
        for (int64_t k = 0; k < sl.inner; ++k) d[k] = static_cast<T>(d[k] + x[k]);
      }
    }
  });
  return out;
}

Tensor gather(const Tensor& a, int64_t axis, const Tensor& index) {
  require_same_device(a, index, "gather");
  require_index(index, "gather");
  JOULE_CHECK(a.dim() > 0 && index.dim() == a.dim(), Code::ShapeMismatch, "gather: expected an index with as many dimensions (",
        a.dim(), ") as the input, got shape ", shape_str(index.shape));
  axis = normalize_axis(axis, a.dim(), "gather");
  for (int64_t d = 0; d < a.dim(); ++d) {
    JOULE_CHECK(d == axis || index.shape[d] <= a.shape[d], Code::ShapeMismatch, "gather: index shape ",
          shape_str(index.shape), " exceeds input shape ", shape_str(a.shape), " outside axis ", axis);
  }
  Tensor idx = contiguous(index);
  Tensor out = empty(idx.shape, a.dtype, a.device());
  if (a.device().is_cuda()) {
    check_indices_on_device(idx, a.shape[axis], "gather");
    cuda::gather(a, axis, idx, out);
    return out;
  }
  int64_t n = idx.numel();
  const int32_t* pi = idx.data<int32_t>();
  const Shape& shape = idx.shape;
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off = 0;
      for (int64_t d = a.dim() - 1; d >= 0; --d) {
        int64_t c = rem % shape[d];
        rem /= shape[d];
        off += (d == axis ? checked_index(pi[i], a.shape[axis], "gather") : c) * a.strides[d];
      }
      po[i] = pa[off];
    }
  });
  return out;
}

Tensor scatter_add(const Tensor& a, int64_t axis, const Tensor& index, const Tensor& src) {
  require_same_device(a, index, "scatterAdd");
  require_same_device(a, src, "scatterAdd");
  require_index(index, "scatterAdd");
  JOULE_CHECK(a.dim() > 0 && index.dim() == a.dim() && src.dim() == a.dim(), Code::ShapeMismatch,
        "scatterAdd: expected input, index and src with the same number of dimensions, got ", shape_str(a.shape), ", ",
        shape_str(index.shape), " and ", shape_str(src.shape));
  axis = normalize_axis(axis, a.dim(), "scatterAdd");
  for (int64_t d = 0; d < a.dim(); ++d) {
    JOULE_CHECK(index.shape[d] <= src.shape[d] && (d == axis || index.shape[d] <= a.shape[d]), Code::ShapeMismatch,
          "scatterAdd: index shape ", shape_str(index.shape), " must fit in src ", shape_str(src.shape),
          " and, outside axis ", axis, ", in the input ", shape_str(a.shape));
  }
  Tensor out = clone(a);
  Tensor s = cast(src, a.dtype);
  Tensor idx = contiguous(index);
  if (a.device().is_cuda()) {
    check_indices_on_device(idx, a.shape[axis], "scatterAdd");
    cuda::scatter_add(out, axis, idx, s);
    return out;
  }
  const int32_t* pi = idx.data<int32_t>();
  const Shape& shape = idx.shape;
  int64_t n = idx.numel();
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* ps = s.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t rem = i, off_out = 0, off_src = 0;
      for (int64_t d = a.dim() - 1; d >= 0; --d) {
        int64_t c = rem % shape[d];
        rem /= shape[d];
        off_src += c * s.strides[d];
        off_out += (d == axis ? checked_index(pi[i], a.shape[axis], "scatterAdd") : c) * out.strides[d];
      }
      po[off_out] = static_cast<T>(po[off_out] + ps[off_src]);
    }
  });
  return out;
}

}  // namespace joule::ops
