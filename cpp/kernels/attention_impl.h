// The attention kernels, written once over GCC vector extensions and compiled once per ISA:
// attention.cpp includes this with JOULE_ATTN_VW = 4 (SSE2, the portable baseline of x86-64 and
// plain scalar code elsewhere), attention_x86.cpp with 8 (AVX2 + FMA) and 16 (AVX-512) under
// `#pragma GCC target`. The includer opens the namespace and has included <algorithm>, <cmath>,
// <cstring>, <limits> and <vector> (no std header may be included under a target pragma).
//
// Layout per (b, h): K is copied once, transposed ([D][Tkp]) for the score dot products, whose
// vector lanes run over keys; V (forward) and K (backward, for dQ) row-major with the head dim
// padded to whole vectors ([Tkp][Dp]) for the accumulations, whose lanes run over the head dim.
// Query rows are processed R = 4 at a time against key blocks of kBlock keys with an online
// softmax: per row a running max m and sum l, the accumulator rescaled by exp(m_old - m_new).
// That is O(T * D) scratch per (b, h): never a T x T matrix.
//
// Per-ISA notes: scores use two key vectors x R rows = 8 independent FMA chains.

#ifndef JOULE_ATTN_VW
#error "define JOULE_ATTN_VW before including attention_impl.h"
#endif

constexpr int VW = JOULE_ATTN_VW;
typedef float vf __attribute__((vector_size(VW * 4)));
typedef int32_t vi __attribute__((vector_size(VW * 4)));
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));

constexpr int kRows = 4;                    // query rows per tile
constexpr int kBlock = 128;                 // keys per online-softmax block (a multiple of 2 * VW)
constexpr int kMaxNv = 256 / VW;            // head-dim vectors at the largest head size
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

static inline vf ld(const float* p) { return *reinterpret_cast<const vfu*>(p); }
static inline void st(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
static inline vf splat(float s) { return vf{} + s; }
static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// exp(x) for a vector: 2^n * p(f), n = round(x log2 e), f = x - n ln 2, p of degree 6
// (relative error ~1e-7 on [-ln2/2, ln2/2]). x <= -88 (and -inf) gives 0; NaN stays NaN.
static inline vf vexp(vf x) {
  x = x < splat(-88.f) ? splat(-88.f) : x;
  x = x > splat(88.f) ? splat(88.f) : x;
  const vf t = x * 1.44269504088896341f;
  const vf n = (t + 12582912.f) - 12582912.f;  // round to nearest (|t| < 2^22)
  vf f = x - n * 0.693145751953125f;
  f = f - n * 1.428606765330187e-06f;
  vf p = splat(1.f / 720);
  p = p * f + 1.f / 120;
  p = p * f + 1.f / 24;
  p = p * f + 1.f / 6;
  p = p * f + 0.5f;
  p = p * f + 1.f;
  p = p * f + 1.f;
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;
  const vf scale = (vf)e;  // same-size vector cast: a bit reinterpretation
  // n = -127 (x = -88 clamp) has exponent 0: 0 * p = 0 (a denormal would be < 1e-38 anyway).
  return p * scale;
}

static inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < VW; ++i) m = std::max(m, v[i]);
  return m;
}
static inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < VW; ++i) s += v[i];
  return s;
}

struct Scratch {
  std::vector<float> kt, vt, kp, vp, dk, dv;
  float qp[kRows][256];
  float dop[kRows][256];
  float sc[kRows][kBlock];
  float dp[kRows][kBlock];
};

struct Head {
  const float* q;
  const float* k;
  const float* v;
  int64_t qs, ks, vs;  // row strides
};

static inline Head head_of(const AttentionArgs& a, int64_t bh) {
  const int64_t b = bh / a.H, h = bh % a.H;
  return {a.q + b * a.q_s[0] + h * a.q_s[1], a.k + b * a.k_s[0] + h * a.k_s[1], a.v + b * a.v_s[0] + h * a.v_s[1],
          a.q_s[2], a.k_s[2], a.v_s[2]};
}

// out[r][j] = mul * sum_d A[r][d] * BT[d][col0 + j] for j < 2 * VW * npairs; A rows are lda apart.
static inline void dots(const float* A, int64_t lda, const float* bt, int64_t ldb, int64_t col0, int64_t npairs,
                        int64_t D, float mul, float (*out)[kBlock]) {
  for (int64_t jp = 0; jp < npairs; ++jp) {
    vf acc0[kRows], acc1[kRows];
    for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = vf{};
    const float* col = bt + col0 + jp * 2 * VW;
    for (int64_t d = 0; d < D; ++d) {
      const vf k0 = ld(col + d * ldb), k1 = ld(col + d * ldb + VW);
      for (int r = 0; r < kRows; ++r) {
        const vf a = splat(A[r * lda + d]);
        acc0[r] += a * k0;
        acc1[r] += a * k1;
      }
    }
    for (int r = 0; r < kRows; ++r) {
      st(out[r] + jp * 2 * VW, acc0[r] * mul);
      st(out[r] + jp * 2 * VW + VW, acc1[r] * mul);
    }
  }
}

// Sets out[r][j] = -inf where key kb + j is masked for query row i0 + r (past n, or causal).
static inline void mask_block(float (*out)[kBlock], int64_t i0, int64_t kb, int64_t n, int64_t width, bool causal,
                              int64_t offset, const int64_t* row_of) {
  for (int r = 0; r < kRows; ++r) {
    int64_t lim = n;
    if (causal) lim = std::min<int64_t>(lim, row_of[r] + offset + 1 - kb);
    for (int64_t j = std::max<int64_t>(lim, 0); j < width; ++j) out[r][j] = kNegInf;
  }
  (void)i0;
}

template <int NV>
void forward_head(const AttentionArgs& a, int64_t bh, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), 2 * VW);
  const Head hd = head_of(a, bh);
  s.kt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.vp.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  for (int64_t j = 0; j < Tk; ++j) {
    const float* kr = hd.k + j * hd.ks;
    for (int64_t d = 0; d < D; ++d) s.kt[d * Tkp + j] = kr[d];
    std::memcpy(&s.vp[j * Dp], hd.v + j * hd.vs, sizeof(float) * D);
  }
  const int64_t b = bh / a.H, h = bh % a.H;
  float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  float* lse = a.lse + bh * Tq;
  const int64_t offset = Tk - Tq;
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
    int64_t row_of[kRows];
    for (int r = 0; r < kRows; ++r) {
      // Rows past the end repeat the last one (computed, not stored): no tail code paths.
      row_of[r] = i0 + std::min(r, rows - 1);
      std::memcpy(s.qp[r], hd.q + row_of[r] * hd.qs, sizeof(float) * D);
    }
    vf acc[kRows][NV > 0 ? NV : kMaxNv];
    float m[kRows], l[kRows];
    for (int r = 0; r < kRows; ++r) {
      m[r] = kNegInf;
      l[r] = 0;
      for (int u = 0; u < nv; ++u) acc[r][u] = vf{};
    }
    const int64_t kend = a.causal ? std::min<int64_t>(Tk, row_of[kRows - 1] + offset + 1) : Tk;
    for (int64_t kb = 0; kb < kend; kb += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, kend - kb);
      const int64_t npairs = (n + 2 * VW - 1) / (2 * VW);
      const int64_t width = npairs * 2 * VW;
      dots(&s.qp[0][0], 256, s.kt.data(), Tkp, kb, npairs, D, a.scale, s.sc);
      mask_block(s.sc, i0, kb, n, width, a.causal, offset, row_of);
      for (int r = 0; r < kRows; ++r) {
        vf mv = splat(kNegInf);
        for (int64_t j = 0; j < width; j += VW) {
          const vf x = ld(s.sc[r] + j);
          mv = x > mv ? x : mv;
        }
        const float mnew = std::max(m[r], hmax(mv));
        if (mnew == kNegInf) {
          // No visible key yet: p = 0 everywhere in this block.
          for (int64_t j = 0; j < width; j += VW) st(s.sc[r] + j, vf{});
          continue;
        }
        vf sum = vf{};
        const vf mn = splat(mnew);
        for (int64_t j = 0; j < width; j += VW) {
          const vf p = vexp(ld(s.sc[r] + j) - mn);
          st(s.sc[r] + j, p);
          sum += p;
        }
        const float alpha = m[r] == kNegInf ? 0.f : std::exp(m[r] - mnew);
        l[r] = l[r] * alpha + hsum(sum);
        m[r] = mnew;
        if (alpha != 1.f) {
          const vf av = splat(alpha);
          for (int u = 0; u < nv; ++u) acc[r][u] *= av;
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        const float* vr = &s.vp[(kb + j) * Dp];
        for (int r = 0; r < kRows; ++r) {
          const vf p = splat(s.sc[r][j]);
          for (int u = 0; u < nv; ++u) acc[r][u] += p * ld(vr + u * VW);
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      float* orow = obase + (i0 + r) * a.o_s[2];
      if (l[r] == 0.f) {
        std::memset(orow, 0, sizeof(float) * D);
        lse[i0 + r] = kNegInf;
        continue;
      }
      const vf inv = splat(1.f / l[r]);
      float tmp[256];
      for (int u = 0; u < nv; ++u) st(tmp + u * VW, acc[r][u] * inv);
      std::memcpy(orow, tmp, sizeof(float) * D);
      lse[i0 + r] = m[r] + std::log(l[r]);
    }
  }
}

template <int NV>
void backward_head(const AttentionArgs& a, int64_t bh, Scratch& s) {
  const int64_t D = a.D, Tq = a.Tq, Tk = a.Tk;
  const int nv = NV > 0 ? NV : static_cast<int>((D + VW - 1) / VW);
  const int64_t Dp = static_cast<int64_t>(nv) * VW;
  const int64_t Tkp = round_up(std::max<int64_t>(Tk, 1), 2 * VW);
  const Head hd = head_of(a, bh);
  const int64_t b = bh / a.H, h = bh % a.H;
  s.kt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.vt.assign(static_cast<size_t>(D * Tkp), 0.f);
  s.kp.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  s.dk.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  s.dv.assign(static_cast<size_t>(Tkp * Dp), 0.f);
  for (int64_t j = 0; j < Tk; ++j) {
    const float* kr = hd.k + j * hd.ks;
    const float* vr = hd.v + j * hd.vs;
    for (int64_t d = 0; d < D; ++d) {
      s.kt[d * Tkp + j] = kr[d];
      s.vt[d * Tkp + j] = vr[d];
    }
    std::memcpy(&s.kp[j * Dp], kr, sizeof(float) * D);
  }
  const float* obase = a.o + b * a.o_s[0] + h * a.o_s[1];
  const float* dobase = a.dout + b * a.do_s[0] + h * a.do_s[1];
  float* dqbase = a.dq + b * a.dq_s[0] + h * a.dq_s[1];
  const float* lse = a.lse + bh * Tq;
  const int64_t offset = Tk - Tq;
  for (int r = 0; r < kRows; ++r) {
    std::memset(s.qp[r], 0, sizeof(s.qp[r]));
    std::memset(s.dop[r], 0, sizeof(s.dop[r]));
  }
  for (int64_t i0 = 0; i0 < Tq; i0 += kRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kRows, Tq - i0));
    int64_t row_of[kRows];
    float delta[kRows], lr[kRows];
    for (int r = 0; r < kRows; ++r) {
      row_of[r] = i0 + std::min(r, rows - 1);
      std::memcpy(s.qp[r], hd.q + row_of[r] * hd.qs, sizeof(float) * D);
      if (r < rows) {
        const float* orow = obase + row_of[r] * a.o_s[2];
        const float* dorow = dobase + row_of[r] * a.do_s[2];
        std::memcpy(s.dop[r], dorow, sizeof(float) * D);
        double dl = 0;
        for (int64_t d = 0; d < D; ++d) dl += static_cast<double>(dorow[d]) * orow[d];
        delta[r] = static_cast<float>(dl);
        // A row that saw no key (lse = -inf) has p = 0 everywhere: exp(s - inf).
        lr[r] = lse[row_of[r]] == kNegInf ? std::numeric_limits<float>::infinity() : lse[row_of[r]];
      } else {
        // Repeated rows contribute nothing: dO = 0 and delta = 0 make ds = 0 and dV += 0.
        std::memset(s.dop[r], 0, sizeof(float) * D);
        delta[r] = 0;
        lr[r] = std::numeric_limits<float>::infinity();
      }
    }
    vf dq[kRows][NV > 0 ? NV : kMaxNv];
    for (int r = 0; r < kRows; ++r)
      for (int u = 0; u < nv; ++u) dq[r][u] = vf{};
    const int64_t kend = a.causal ? std::min<int64_t>(Tk, row_of[kRows - 1] + offset + 1) : Tk;
    for (int64_t kb = 0; kb < kend; kb += kBlock) {
      const int64_t n = std::min<int64_t>(kBlock, kend - kb);
      const int64_t npairs = (n + 2 * VW - 1) / (2 * VW);
      const int64_t width = npairs * 2 * VW;
      dots(&s.qp[0][0], 256, s.kt.data(), Tkp, kb, npairs, D, a.scale, s.sc);
      mask_block(s.sc, i0, kb, n, width, a.causal, offset, row_of);
      dots(&s.dop[0][0], 256, s.vt.data(), Tkp, kb, npairs, D, 1.f, s.dp);
      for (int r = 0; r < kRows; ++r) {
        const vf lv = splat(lr[r]), dl = splat(delta[r]);
        for (int64_t j = 0; j < width; j += VW) {
          const vf p = vexp(ld(s.sc[r] + j) - lv);
          st(s.sc[r] + j, p);                                         // p
          st(s.dp[r] + j, p * (ld(s.dp[r] + j) - dl) * a.scale);      // ds, scale folded in
        }
      }
      for (int64_t j = 0; j < n; ++j) {
        float* dvr = &s.dv[(kb + j) * Dp];
        float* dkr = &s.dk[(kb + j) * Dp];
        const float* kr = &s.kp[(kb + j) * Dp];
        for (int u = 0; u < nv; ++u) {
          vf dva = ld(dvr + u * VW), dka = ld(dkr + u * VW);
          const vf kv = ld(kr + u * VW);
          for (int r = 0; r < kRows; ++r) {
            const vf p = splat(s.sc[r][j]), ds = splat(s.dp[r][j]);
            dva += p * ld(s.dop[r] + u * VW);
            dka += ds * ld(s.qp[r] + u * VW);
            dq[r][u] += ds * kv;
          }
          st(dvr + u * VW, dva);
          st(dkr + u * VW, dka);
        }
      }
    }
    for (int r = 0; r < rows; ++r) {
      float tmp[256];
      for (int u = 0; u < nv; ++u) st(tmp + u * VW, dq[r][u]);
      std::memcpy(dqbase + (i0 + r) * a.dq_s[2], tmp, sizeof(float) * D);
    }
  }
  float* dkbase = a.dk + b * a.dk_s[0] + h * a.dk_s[1];
  float* dvbase = a.dv + b * a.dv_s[0] + h * a.dv_s[1];
  for (int64_t j = 0; j < Tk; ++j) {
    std::memcpy(dkbase + j * a.dk_s[2], &s.dk[j * Dp], sizeof(float) * D);
    std::memcpy(dvbase + j * a.dv_s[2], &s.dv[j * Dp], sizeof(float) * D);
  }
}

template <template <int> class Fn>
void run_heads(const AttentionArgs& a, int64_t begin, int64_t end) {
  Scratch s;
  const int nv = static_cast<int>((a.D + VW - 1) / VW);
  for (int64_t bh = begin; bh < end; ++bh) {
    switch (nv) {
      case 1: Fn<1>::run(a, bh, s); break;
      case 2: Fn<2>::run(a, bh, s); break;
      case 3: Fn<3>::run(a, bh, s); break;
      case 4: Fn<4>::run(a, bh, s); break;
      case 8: Fn<8>::run(a, bh, s); break;
      default: Fn<0>::run(a, bh, s); break;
    }
  }
}

template <int NV>
struct ForwardFn {
  static void run(const AttentionArgs& a, int64_t bh, Scratch& s) { forward_head<NV>(a, bh, s); }
};
template <int NV>
struct BackwardFn {
  static void run(const AttentionArgs& a, int64_t bh, Scratch& s) { backward_head<NV>(a, bh, s); }
};
