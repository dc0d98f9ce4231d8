// Views share storage and only change shape/strides/offset; the rest copy.
#include <algorithm>

#include "kernels/cpu.h"
#include "ops/ops.h"
#include "ops/util.h"

namespace joule::ops {
namespace {

Tensor with_layout(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  Tensor v = t;
  v.shape = std::move(shape);
  v.strides = std::move(strides);
  v.offset = offset;
  return v;
}

// Finds strides that let `t` be seen with `shape` without a copy; false when there are none.
bool view_strides(const Tensor& t, const Shape& shape, Shape& out) {
  int64_t n = t.numel();
  out.assign(shape.size(), 0);
  if (n == 0 || t.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  // Walk the old dims in chunks that are contiguous among themselves and match them against
  // the new dims (the rule PyTorch's view uses).
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = t.strides.empty() ? 1 : t.strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    tensor_numel *= t.shape[d];
    if (d == 0 || (t.shape[d - 1] != 1 && t.strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = t.strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape resolve_shape(const Tensor& t, const Shape& requested, const char* op) {
  Shape shape = requested;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      JOULE_CHECK(infer < 0, Code::InvalidArgument, op, ": only one dimension can be -1, got ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      JOULE_CHECK(shape[i] >= 0, Code::InvalidArgument, op, ": expected dimensions >= 0 (or one -1), got ",
            shape_str(requested));
    }
  }
  if (infer >= 0) {
    Shape rest = shape;
    rest[infer] = 1;
    known = shape_numel(rest);
    JOULE_CHECK(known != 0 && t.numel() % known == 0, Code::ShapeMismatch, op, ": cannot reshape a tensor of shape ",
          shape_str(t.shape), " into ", shape_str(requested));
    shape[infer] = t.numel() / known;
  }
  JOULE_CHECK(shape_numel(shape) == t.numel(), Code::ShapeMismatch, op, ": cannot reshape a tensor of shape ",
        shape_str(t.shape), " (", t.numel(), " elements) into ", shape_str(requested));
  return shape;
}

}  // namespace

Tensor view(const Tensor& t, const Shape& requested) {
  Shape shape = resolve_shape(t, requested, "view");
  Shape strides;
  JOULE_CHECK(view_strides(t, shape, strides), Code::ShapeMismatch, "view: a tensor of shape ", shape_str(t.shape),
        " with these strides cannot be viewed as ", shape_str(shape), " without a copy; use reshape()");
  return with_layout(t, shape, strides, t.offset);
}

Tensor reshape(const Tensor& t, const Shape& requested) {
  Shape shape = resolve_shape(t, requested, "reshape");
  Shape strides;
  if (view_strides(t, shape, strides)) return with_layout(t, shape, strides, t.offset);
  Tensor c = contiguous(t);
  return with_layout(c, shape, contiguous_strides(shape), c.offset);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& order) {
  JOULE_CHECK(static_cast<int64_t>(order.size()) == t.dim(), Code::InvalidArgument, "permute: expected ", t.dim(),
        " axes, got ", order.size());
  std::vector<bool> seen(order.size(), false);
  Shape shape(order.size()), strides(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    int64_t a = normalize_axis(order[i], t.dim(), "permute");
    JOULE_CHECK(!seen[a], Code::InvalidArgument, "permute: axis ", a, " appears twice");
    seen[a] = true;
    shape[i] = t.shape[a];
    strides[i] = t.strides[a];
  }
  return with_layout(t, shape, strides, t.offset);
}

Tensor transpose(const Tensor& t, int64_t a, int64_t b) {
  if (t.dim() == 0) return t;
  a = normalize_axis(a, t.dim(), "transpose");
  b = normalize_axis(b, t.dim(), "transpose");
  Shape shape = t.shape, strides = t.strides;
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return with_layout(t, shape, strides, t.offset);
}

Tensor slice(const Tensor& t, int64_t axis, int64_t start, int64_t end, int64_t step) {
  JOULE_CHECK(t.dim() > 0, Code::InvalidArgument, "slice: cannot slice a 0-d tensor");
  axis = normalize_axis(axis, t.dim(), "slice");
  JOULE_CHECK(step > 0, Code::InvalidArgument, "slice: expected a positive step, got ", step);
  int64_t n = t.shape[axis];
  // Python slice semantics: negative bounds count from the end, out-of-range bounds clamp.
  auto clampi = [n](int64_t v) { return v < 0 ? std::max<int64_t>(v + n, 0) : std::min(v, n); };
  start = clampi(start);
  end = clampi(end);
  int64_t len = end > start ? (end - start + step - 1) / step : 0;
  Shape shape = t.shape, strides = t.strides;
  shape[axis] = len;
  strides[axis] = t.strides[axis] * step;
  return with_layout(t, shape, strides, t.offset + (len > 0 ? start * t.strides[axis] : 0));
}

Tensor select(const Tensor& t, int64_t axis, int64_t index) {
  JOULE_CHECK(t.dim() > 0, Code::InvalidArgument, "select: cannot index a 0-d tensor");
  axis = normalize_axis(axis, t.dim(), "select");
  int64_t n = t.shape[axis];
  JOULE_CHECK(index >= -n && index < n, Code::InvalidArgument, "select: index ", index, " is out of range for axis ", axis,
        " of size ", n);
  if (index < 0) index += n;
  Shape shape = t.shape, strides = t.strides;
  shape.erase(shape.begin() + axis);
  strides.erase(strides.begin() + axis);
  return with_layout(t, shape, strides, t.offset + index * t.strides[axis]);
}

Tensor expand(const Tensor& t, const Shape& shape) {
  JOULE_CHECK(static_cast<int64_t>(shape.size()) >= t.dim(), Code::ShapeMismatch, "expand: cannot expand shape ",
        shape_str(t.shape), " to ", shape_str(shape), " (fewer dimensions)");
  JOULE_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), Code::InvalidArgument, "expand: expected at most ", kMaxDims,
        " dimensions, got ", shape.size());
  size_t lead = shape.size() - t.shape.size();
  Shape out_shape(shape.size()), strides(shape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      JOULE_CHECK(shape[i] >= 0, Code::InvalidArgument, "expand: new leading dimensions must be >= 0, got ",
            shape_str(shape));
      out_shape[i] = shape[i];
      continue;
    }
    int64_t have = t.shape[i - lead];
    int64_t want = shape[i] == -1 ? have : shape[i];
    if (have == want) {
      out_shape[i] = have;
      strides[i] = t.strides[i - lead];
    } else {
      JOULE_CHECK(have == 1, Code::ShapeMismatch, "expand: cannot expand shape ", shape_str(t.shape), " to ",
            shape_str(shape), " (only size-1 dimensions can grow)");
      out_shape[i] = want;
    }
  }
  shape_numel(out_shape);  // after resolving -1: rejects other negative sizes and huge shapes
  return with_layout(t, out_shape, strides, t.offset);
}

Tensor squeeze(const Tensor& t, const std::vector<int64_t>& axes) {
  std::vector<bool> drop(t.shape.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < t.shape.size(); ++i) drop[i] = t.shape[i] == 1;
  } else {
    for (int64_t a : axes) {
      int64_t d = normalize_axis(a, t.dim(), "squeeze");
      if (t.dim() == 0) continue;  // axis 0 / -1 of a 0-d tensor names no real dimension
      drop[d] = t.shape[d] == 1;  // like PyTorch: a named axis that is not size 1 stays
    }
  }
  Shape shape, strides;
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (!drop[i]) {
      shape.push_back(t.shape[i]);
      strides.push_back(t.strides[i]);
    }
  }
  return with_layout(t, shape, strides, t.offset);
}

Tensor unsqueeze(const Tensor& t, int64_t axis) {
  axis = normalize_axis(axis, t.dim() + 1, "unsqueeze");
  JOULE_CHECK(t.dim() < kMaxDims, Code::InvalidArgument, "unsqueeze: at most ", kMaxDims, " dimensions");
  Shape shape = t.shape, strides = t.strides;
  int64_t stride = axis < t.dim() ? t.strides[axis] * t.shape[axis] : 1;
  shape.insert(shape.begin() + axis, 1);
  strides.insert(strides.begin() + axis, stride);
  return with_layout(t, shape, strides, t.offset);
}

void copy_into(const Tensor& dst, const Tensor& src) {
  require_same_device(dst, src, "copy");
  for (int64_t d = 0; d < dst.dim(); ++d) {
    JOULE_CHECK(dst.shape[d] <= 1 || dst.strides[d] != 0, Code::InvalidArgument,
          "copy: cannot write into an expanded (broadcast) view; clone() it first");
  }
  // A source that may overlap the destination (a view of the same storage) is read in full first.
  Tensor s = expand(src.storage == dst.storage ? clone(src) : src, dst.shape);
  if (dst.device().is_cpu()) {
    kernels::copy_cast(s, dst);
    return;
  }
  if (s.dtype == dst.dtype && s.is_contiguous() && dst.is_contiguous() && s.shape == src.shape) {
    cuda::copy_on_device(dst.device().index, dst.raw(), s.raw(), dst.nbytes());
  } else if (s.dtype == dst.dtype && s.dtype == DType::Float32) {
    cuda::copy_strided(s, dst);
  } else {
    cuda::copy_cast(s, dst);  // other dtypes, and casts, with the CPU's conversion rules
  }
}

Tensor contiguous(const Tensor& t) {
  if (t.is_contiguous()) return t;
  return clone(t);
}

Tensor clone(const Tensor& t) {
  Tensor out = empty(t.shape, t.dtype, t.device());
  copy_into(out, t);
  return out;
}

Tensor cast(const Tensor& t, DType dtype) {
  if (t.dtype == dtype) return t;
  Tensor out = empty(t.shape, dtype, t.device());
  if (t.device().is_cuda()) cuda::copy_cast(t, out); else kernels::copy_cast(t, out);
  return out;
}

Tensor concat(const std::vector<Tensor>& parts, int64_t axis) {
  JOULE_CHECK(!parts.empty(), Code::InvalidArgument, "concat: expected at least one tensor");
  const Tensor& first = parts[0];
  JOULE_CHECK(first.dim() > 0, Code::InvalidArgument, "concat: cannot concatenate 0-d tensors (use stack)");
  axis = normalize_axis(axis, first.dim(), "concat");
  Shape shape = first.shape;
  shape[axis] = 0;
  DType dtype = first.dtype;
  for (const Tensor& p : parts) {
    require_same_device(first, p, "concat");
    JOULE_CHECK(p.dim() == first.dim(), Code::ShapeMismatch, "concat: expected tensors of ", first.dim(),
          " dimensions, got one of shape ", shape_str(p.shape));
    for (int64_t d = 0; d < first.dim(); ++d) {
      JOULE_CHECK(d == axis || p.shape[d] == first.shape[d], Code::ShapeMismatch, "concat: shapes ", shape_str(first.shape),
            " and ", shape_str(p.shape), " differ outside axis ", axis);
    }
    shape[axis] += p.shape[axis];
    dtype = promote(dtype, p.dtype);
  }
  Tensor out = empty(shape, dtype, first.device());
  int64_t at = 0;
  for (const Tensor& p : parts) {
    if (p.shape[axis] > 0) {
      copy_into(slice(out, axis, at, at + p.shape[axis], 1), p.dtype == dtype ? p : cast(p, dtype));
    }
    at += p.shape[axis];
  }
  return out;
}

}  // namespace joule::ops
