// fp32 GEMM: C = alpha * op(A) * op(B) + beta * C, then an optional fused epilogue
// (bias per column, then an activation). Every operand is addressed through a row stride
// and a column stride, so transposes and strided views need no copy:
//   A(i, p) = a[i * a_rs + p * a_cs],  B(p, j) = b[p * b_rs + j * b_cs],
//   C(i, j) = c[i * c_rs + j * c_cs].
// When beta == 0, C is not read (NaN in C does not propagate), as in BLAS.
#pragma once
#include <cstdint>

namespace joule::gemm {

enum class Activation { None, Relu, Gelu };

struct Sgemm {
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t a_rs = 0, a_cs = 0;
  const float* b = nullptr;
  int64_t b_rs = 0, b_cs = 0;
  float* c = nullptr;
  int64_t c_rs = 0, c_cs = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* bias = nullptr;  // n values added to every row, or null
  Activation activation = Activation::None;
};

// The fast path: ISA chosen by joule::active_isa(), threaded on the pool.
void sgemm(const Sgemm& args);

// `count` products sharing m, n, k, strides and scalars; product i uses
// a + a_offsets[i], b + b_offsets[i], c + c_offsets[i] (offsets in elements).
void sgemm_batched(const Sgemm& args, int64_t count, const int64_t* a_offsets, const int64_t* b_offsets,
                   const int64_t* c_offsets);

// The portable scalar reference every fast path is tested against (single thread).
void sgemm_reference(const Sgemm& args);

// GELU as PyTorch's default computes it: x * 0.5 * (1 + erf(x / sqrt(2))).
// The epilogue and the elementwise op share this definition.
float gelu(float x);
// Its derivative, Phi(x) + x phi(x) (the reference of the vectorised backward).
float gelu_grad(float x);

// GELU and its derivative over n contiguous floats on the active ISA, vectorised with the
// epilogue's erfc form (single thread; callers split the work): y = gelu(x); dz = dy * gelu'(z).
void gelu_forward(const float* x, float* y, int64_t n);
void gelu_backward(const float* dy, const float* z, float* dz, int64_t n);

}  // namespace joule::gemm
