// The fp32 GEMM: every instruction-set path against a float64 reference, through addmm_ (which
// reaches every GEMM parameter: strides, alpha, beta, bias, activation) and matmul.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';
import { erf, gelu, Rng, snapshot } from './helpers';
import { native } from '../lib/native';

const ISAS = (['generic', 'avx2', 'avx512'] as const).filter((isa) => {
  const cpu = jl.buildInfo().cpu;
  return isa === 'generic' || (isa === 'avx2' ? cpu.avx2 && cpu.fma : cpu.avx512f && cpu.avx512bw && cpu.avx512vl);
});

interface Case {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  bias: boolean;
  activation: 'none' | 'relu' | 'gelu';
  /** Operands are views with a leading dimension larger than their size and a column step. */
  strided: boolean;
}

/** A [rows, cols] view of fresh random data: transposed and/or strided as asked. */
function operand(rng: Rng, rows: number, cols: number, trans: boolean, strided: boolean): { t: jl.Tensor; values: Float64Array } {
  const [r, c] = trans ? [cols, rows] : [rows, cols];
  const pad = strided ? 3 : 0;
  const step = strided ? 2 : 1;
  const base = jl.tensor(Float32Array.from({ length: (r + pad) * (c * step + pad) }, () => rng.normal()), { shape: [r + pad, c * step + pad] });
  const first = strided ? 1 : 0; // a non-zero offset into the storage too
  let t = base.slice(0, first, first + r).slice(1, 0, c * step, step);
  if (trans) t = t.t();
  const flat = t.contiguous().data();
  return { t, values: Float64Array.from(flat) };
}

function reference(c: Case, a: Float64Array, b: Float64Array, c0: Float64Array, bias: Float64Array | null): Float64Array {
  const out = new Float64Array(c.m * c.n);
  for (let i = 0; i < c.m; i++) {
    for (let j = 0; j < c.n; j++) {
      let s = 0;
      for (let p = 0; p < c.k; p++) s += a[i * c.k + p] * b[p * c.n + j];
      let v = c.alpha * s + (c.beta === 0 ? 0 : c.beta * c0[i * c.n + j]);
      if (bias) v += bias[j];
      if (c.activation === 'relu') v = v > 0 ? v : 0;
      if (c.activation === 'gelu') v = gelu(v);
      out[i * c.n + j] = v;
    }
  }
  return out;
}

function runCase(rng: Rng, c: Case): void {
  jl.tidy(() => {
    const A = operand(rng, c.m, c.k, c.transA, c.strided);
    const B = operand(rng, c.k, c.n, c.transB, c.strided);
    const C = operand(rng, c.m, c.n, false, c.strided);
    const bias = c.bias ? jl.randn([c.n]) : null;
    const expected = reference(c, A.values, B.values, C.values, bias ? Float64Array.from(bias.data()) : null);
    jl.addmm_(C.t, A.t, B.t, { alpha: c.alpha, beta: c.beta, bias, activation: c.activation });
    const got = C.t.contiguous().data();
    // Rounding of k float32 products: scale the tolerance by k and the operands' magnitudes.
    const tol = 2e-6 * Math.sqrt(c.k + 1) * 8 + 1e-5;
    for (let i = 0; i < expected.length; i++) {
      const e = expected[i];
      assert.ok(Math.abs(got[i] - e) <= tol * (1 + Math.abs(e)),
        `${JSON.stringify(c)} isa=${jl.getIsa()} element ${i}: got ${got[i]}, expected ${e}`);
    }
  });
}

describe('GEMM', function () {
  this.timeout(120000);
  const isaBefore = jl.getIsa();
  const threadsBefore = jl.getNumThreads();
  let memBefore = snapshot();
  before(() => (memBefore = snapshot()));
  after(() => {
    jl.setIsa(isaBefore);
    jl.setNumThreads(threadsBefore);
    // Nothing made here outlives the tests (the count can only fall: the garbage collector may
    // free tensors that earlier files forgot while these tests run).
    const now = snapshot();
    assert.ok(now.tensors <= memBefore.tensors && now.bytes <= memBefore.bytes, `${JSON.stringify(memBefore)} -> ${JSON.stringify(now)}`);
  });

  const SIZES = [1, 3, 17, 31, 33, 65, 127, 255, 257];
  for (const isa of ISAS) {
    it(`${isa}: all transposes, strides, alpha/beta, bias and activations match float64`, () => {
      jl.setIsa(isa);
      const rng = new Rng(isa.length * 7919);
      for (let trial = 0; trial < 45; trial++) {
        const pick = () => SIZES[rng.int(0, SIZES.length)];
        runCase(rng, {
          m: trial % 10 === 0 ? 1 : pick(),
          n: pick(),
          k: trial % 15 === 1 ? 1 : pick(),
          transA: trial % 2 === 1,
          transB: Math.floor(trial / 2) % 2 === 1,
          alpha: [1, 0.5, -2][trial % 3],
          beta: [0, 1, 0.25][Math.floor(trial / 3) % 3],
          bias: trial % 4 === 3,
          activation: (['none', 'relu', 'gelu'] as const)[Math.floor(trial / 5) % 3],
          strided: trial % 3 === 2,
        });
      }
      // One long dimension of 1000 in each position.
      for (const [m, n, k] of [[1000, 17, 33], [31, 1000, 17], [17, 33, 1000]]) {
        runCase(rng, { m, n, k, transA: false, transB: true, alpha: 1, beta: 1, bias: true, activation: 'relu', strided: false });
      }
    });

    it(`${isa}: A read in place, column-major A packed by steps, narrow last panels: sizes around their boundaries`, () => {
      // Row-major A (NN, NT) is read in place except a partial last panel of rows (m % 6 != 0);
      // its K block is 1024 on AVX-512 (1023, 1024, 1025, 2049 straddle it) and 256 elsewhere;
      // column-major A (TN) is packed in blocks of up to 240 (AVX-512), 288 (AVX2) or 256
      // (generic) rows, and with a single K block (k <= 320, 256, 256) packed once for all N
      // blocks (n > 640, 2048, 1024: 700, 2100); a strided A (column step 2) likewise; a last column
      // panel of 1-16, 17-32, 33-48 (AVX-512) or 1-8 (AVX2) columns runs a narrower kernel (n = 80,
      // 95, 111, 40, 33); 127 is a panel of 63 (the full kernel).
      jl.setIsa(isa);
      const rng = new Rng(isa.length * 104729);
      const cases: [number, number, number, boolean][] = [
        // m, n, k, transA
        [13, 80, 513, false], [7, 95, 1025, false], [65, 111, 511, false], [37, 40, 512, false], [50, 127, 300, false],
        [31, 33, 64, false], [6, 16, 129, false], [12, 64, 17, false],
        [239, 65, 700, true], [241, 17, 330, true], [481, 33, 321, true], [289, 16, 100, true], [257, 80, 31, true],
        [7, 30, 50, true], [14, 65, 9, true],
        [13, 70, 1023, false], [20, 64, 1024, false], [11, 66, 2049, false],
        [257, 700, 33, true], [481, 700, 320, true], [50, 2100, 100, true], [55, 2100, 256, true],
      ];
      cases.forEach(([m, n, k, transA], i) => {
        runCase(rng, {
          m, n, k, transA,
          transB: i % 2 === 0,
          alpha: [1, 0.5][i % 2],
          beta: [0, 1, 0.25][i % 3],
          bias: i % 3 !== 1,
          activation: (['none', 'relu', 'gelu'] as const)[i % 3],
          strided: false,
        });
      });
      // A with a column step (neither row- nor column-major) over several N blocks.
      runCase(rng, { m: 50, n: 2100, k: 100, transA: false, transB: false, alpha: 1, beta: 1, bias: true, activation: 'relu', strided: true });
    });

    it(`${isa}: x W^T with few rows of x, computed as (W x^T)^T through a scratch, matches float64`, () => {
      // beta = 0, row-major x and W: the cost model sends these through C^T = W x^T (W read in
      // place, x packed) and a transpose into C on AVX-512 (m = 50, 63, 64: the last column panel
      // of C^T partial or whole); the other ISAs may take either path, both must be right.
      jl.setIsa(isa);
      const rng = new Rng(isa.length * 15485863);
      const cases: [number, number, number, number, boolean, 'none' | 'relu' | 'gelu'][] = [
        // m, n, k, alpha, bias, activation
        [64, 1000, 257, 1, true, 'relu'], [50, 1000, 500, 0.5, true, 'gelu'], [63, 700, 600, -2, false, 'none'],
      ];
      for (const [m, n, k, alpha, bias, activation] of cases) {
        runCase(rng, { m, n, k, transA: false, transB: true, alpha, beta: 0, bias, activation, strided: false });
      }
      // Large enough for the transpose into C to be split between 2 threads (rows of C 0-31 and
      // 32-62), with edges on both sides of the 8 x 8 register transposes (63 = 7 x 8 + 7, 2100 =
      // 262 x 8 + 4).
      const threadsBefore = jl.getNumThreads();
      jl.setNumThreads(2);
      try {
        runCase(rng, { m: 63, n: 2100, k: 200, transA: false, transB: true, alpha: 1, beta: 0, bias: true, activation: 'relu', strided: false });
      } finally {
        jl.setNumThreads(threadsBefore);
      }
    });

    it(`${isa}: NaN and Inf propagate from A and B; beta = 0 ignores NaN in C`, () => {
      jl.setIsa(isa);
      jl.tidy(() => {
        const m = 33;
        const n = 65;
        const k = 17;
        const a = jl.randn([m, k]);
        const b = jl.randn([k, n]);
        const ad = a.data() as Float32Array;
        ad[5 * k + 3] = NaN;      // row 5 of the result becomes NaN
        ad[7 * k + 2] = Infinity; // row 7 becomes ±Inf or NaN
        const bd = b.data() as Float32Array;
        bd[4 * n + 9] = NaN;      // column 9 becomes NaN
        const A = jl.tensor(ad, { shape: [m, k] });
        const B = jl.tensor(bd, { shape: [k, n] });
        const C = jl.full([m, n], NaN);
        jl.addmm_(C, A, B, { beta: 0 });
        const out = C.data();
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            const v = out[i * n + j];
            if (i === 5 || j === 9) assert.ok(Number.isNaN(v), `(${i},${j}) should be NaN, got ${v}`);
            else if (i === 7) assert.ok(!Number.isFinite(v), `(${i},${j}) should be infinite or NaN, got ${v}`);
            else assert.ok(Number.isFinite(v), `(${i},${j}) should be finite (NaN in C must not leak with beta = 0), got ${v}`);
          }
        }
        // A zero times NaN is NaN: a kernel must not skip zero operands.
        const Z = jl.zeros([1, 4]);
        const N = jl.full([4, 3], NaN);
        assert.ok(Array.from(Z.matmul(N).data()).every(Number.isNaN));
      });
    });
  }

  it('the GELU epilogue is right across the whole range, far negative included (GEMV and tiles, every ISA)', () => {
    // C = x * 1, so the epilogue sees exactly x. Below about -12.7 the erfc factor underflows:
    // the result is -0 there, and the kernel must not go through subnormal intermediates.
    const xs = [-1e4, -200, -40, -13.5, -13, -12.8, -12.7, -12, -9, -5, -1, -1e-3, 0, 1e-3, 1, 5, 12, 40, 1e4, NaN];
    for (const isa of ISAS) {
      jl.setIsa(isa);
      jl.tidy(() => {
        for (const rows of [1, xs.length]) {
          // rows 1: one value per column (the GEMV path); else one value per row (tiles).
          const a = rows === 1 ? jl.ones([1, 1]) : jl.tensor(Float32Array.from(xs), { shape: [rows, 1] });
          const b = rows === 1 ? jl.tensor(Float32Array.from(xs), { shape: [1, xs.length] }) : jl.ones([1, 17]);
          const c = jl.zeros([rows, rows === 1 ? xs.length : 17]);
          jl.addmm_(c, a, b, { beta: 0, activation: 'gelu' });
          const got = c.data();
          const width = c.shape[1];
          for (let i = 0; i < got.length; i++) {
            const x = rows === 1 ? xs[i] : xs[Math.floor(i / width)];
            const e = gelu(Math.fround(x));
            const where = `${isa} rows=${rows} gelu(${x}) = ${got[i]}, expected ${e}`;
            if (Number.isNaN(x)) assert.ok(Number.isNaN(got[i]), where);
            else assert.ok(Math.abs(got[i] - e) <= 1e-6 * (1 + Math.abs(e)), where);
          }
        }
      });
    }
  });

  it('the vectorised GELU (elementwise) and its derivative (fused linear backward) match float64 on every ISA', () => {
    // gelu'(x) = Phi(x) + x phi(x); +-inf give 1 and 0, NaN stays NaN.
    const grad = (x: number) => (x === Infinity ? 1 : x === -Infinity ? 0 : 0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI));
    const special = [-1e4, -40, -13.5, -12.8, -12.7, -9, -3, -1e-3, 0, 1e-3, 3, 9, 12.8, 40, 1e4, Infinity, -Infinity, NaN];
    const rng = new Rng(17);
    for (const isa of ISAS) {
      jl.setIsa(isa);
      for (const width of [1, 3, 17, 33, 65]) {
        jl.tidy(() => {
          // rows x width pre-activations: random N(0, 3), plus the special values spread over the rows.
          const rows = 7;
          const z = new Float32Array(rows * width);
          for (let i = 0; i < z.length; i++) z[i] = i < special.length * 3 && i % 3 === 0 ? special[i / 3] : 3 * rng.normal();
          const dy = new Float32Array(rows * width);
          for (let i = 0; i < dy.length; i++) dy[i] = rng.normal();
          // With W = I, the input gradient of linear(x, W) + GELU is dy * gelu'(z) itself.
          const zt = jl.tensor(z, { shape: [rows, width] });
          const [dx] = native.linearBackward(jl.tensor(dy, { shape: [rows, width] }).handle, jl.zeros([rows, width]).handle,
            jl.eye(width).handle, zt.handle, 'gelu', true, false, false, null, null, false, false);
          const dxt = new jl.Tensor(dx!);
          const dz = dxt.data();
          dxt.dispose();
          const y = jl.gelu(zt).data();
          for (let i = 0; i < z.length; i++) {
            const x = Math.fround(z[i]);
            const where = `${isa} width ${width} at ${i} (x = ${x})`;
            if (Number.isNaN(x)) {
              assert.ok(Number.isNaN(dz[i]) && Number.isNaN(y[i]), `${where}: NaN must stay NaN, got ${dz[i]}, ${y[i]}`);
              continue;
            }
            // dx = dz W: a NaN anywhere in the row spreads over it (NaN * 0), as it must.
            const row = Math.floor(i / width);
            if (Array.from(z.subarray(row * width, (row + 1) * width)).some(Number.isNaN)) {
              assert.ok(Number.isNaN(dz[i]), `${where}: the row holds a NaN, got ${dz[i]}`);
              continue;
            }
            const e = dy[i] * grad(x);
            assert.ok(Math.abs(dz[i] - e) <= 2e-6 * (1 + Math.abs(e)), `${where}: dz ${dz[i]}, expected ${e}`);
            if (x !== -Infinity) {
              const ey = gelu(x);
              assert.ok(ey === Infinity ? y[i] === Infinity : Math.abs(y[i] - ey) <= 1e-6 * (1 + Math.abs(ey)), `${where}: gelu ${y[i]}, expected ${ey}`);
            }
          }
        });
      }
    }
  });

  it('gives the same results on 1 and 2 threads', () => {
    jl.tidy(() => {
      for (const [m, n, k] of [[1, 1024, 257], [64, 1000, 300], [300, 257, 129], [1000, 10, 784]]) {
        const a = jl.randn([m, k]);
        const b = jl.randn([k, n]);
        jl.setNumThreads(1);
        const one = a.matmul(b).data();
        jl.setNumThreads(2);
        const two = a.matmul(b).data();
        for (let i = 0; i < one.length; i++) assert.ok(Math.abs(one[i] - two[i]) <= 1e-5 * (1 + Math.abs(one[i])), `${m}x${k}x${n} [${i}]`);
      }
    });
  });

  it('is bit-identical on 1 and 2 threads at the GPT shapes (row bands sharing a packed B, one band per thread for long K)', () => {
    // [m, k, n, kind]: NT = x W^T, NN = dz W, TN = dz^T x (accumulated, beta = 1).
    const shapes: [number, number, number, 'NT' | 'NN' | 'TN'][] = [
      [1000, 128, 384, 'NT'], [2000, 128, 80, 'NT'], [700, 600, 130, 'NN'], [1001, 384, 128, 'NN'],
      [384, 4096, 128, 'TN'], [130, 1500, 200, 'TN'], [2100, 700, 70, 'NN'], [64, 600, 1000, 'NT'],
      [1030, 256, 1000, 'TN'], [256, 1024, 1024, 'NT'],
    ];
    for (const isa of ISAS) {
      jl.setIsa(isa);
      jl.tidy(() => {
        for (const [m, k, n, kind] of shapes) {
          const a = kind === 'TN' ? jl.randn([k, m]).t() : jl.randn([m, k]);
          const b = kind === 'NT' ? jl.randn([n, k]).t() : jl.randn([k, n]);
          const c0 = jl.randn([m, n]);
          const bias = kind === 'NT' ? jl.randn([n]) : null;
          const run = (threads: number) => {
            jl.setNumThreads(threads);
            const c = c0.clone();
            jl.addmm_(c, a, b, { beta: kind === 'TN' ? 1 : 0, bias, activation: kind === 'NT' ? 'gelu' : 'none' });
            return c.data();
          };
          const one = run(1);
          const two = run(2);
          for (let i = 0; i < one.length; i++) {
            if (!Object.is(one[i], two[i])) assert.fail(`${isa} ${m}x${k}x${n} ${kind} [${i}]: ${one[i]} on 1 thread, ${two[i]} on 2`);
          }
        }
      });
    }
    jl.setNumThreads(threadsBefore);
  });

  it('x W^T through the transposed scratch equals the direct product bit for bit', () => {
    // beta = 0 takes the scratch (C^T = W x^T, then transposed) at this shape on AVX-512; beta = 1
    // on a zero C cannot, and must give the same values: both read x and W in place, so every
    // element sees the same K blocks and the same sequence of FMAs.
    for (const isa of ISAS) {
      jl.setIsa(isa);
      jl.tidy(() => {
        const x = jl.randn([64, 600]);
        const w = jl.randn([1000, 600]);
        const bias = jl.randn([1000]);
        const viaScratch = jl.zeros([64, 1000]);
        const direct = jl.zeros([64, 1000]);
        jl.addmm_(viaScratch, x, w.t(), { beta: 0, bias, activation: 'gelu' });
        jl.addmm_(direct, x, w.t(), { beta: 1, bias, activation: 'gelu' });
        const [a, b] = [viaScratch.data(), direct.data()];
        for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${isa} [${i}]: ${a[i]} via the scratch, ${b[i]} direct`);
      });
    }
  });

  it('packing a row-major B inside the first row panel\'s kernels gives the packed-first product bit for bit', () => {
    // A row-major B of whole 64-column panels is packed by the kernels of the first row panel as
    // they read it (AVX-512); the same values stored column-major are packed before the block.
    // Partial first panels (m < 6), several K blocks, 1 and 2 threads, every ISA.
    const shapes: [number, number, number][] = [[7, 300, 128], [130, 1024, 256], [5, 50, 64], [13, 2000, 192], [200, 700, 640], [64, 96, 1000]];
    for (const isa of ISAS) {
      jl.setIsa(isa);
      jl.tidy(() => {
        for (const [m, k, n] of shapes) {
          for (const transA of [false, true]) {
            const a = transA ? jl.randn([k, m]).t() : jl.randn([m, k]);
            const rowMajorB = jl.randn([k, n]);
            const columnMajorB = rowMajorB.t().contiguous().t();
            const c0 = jl.randn([m, n]);
            const bias = jl.randn([n]);
            for (const threads of [1, 2]) {
              jl.setNumThreads(threads);
              const run = (b: jl.Tensor) => {
                const c = c0.clone();
                jl.addmm_(c, a, b, { alpha: 1.5, beta: 0.5, bias, activation: 'relu' });
                return c.data();
              };
              const fused = run(rowMajorB);
              const packedFirst = run(columnMajorB);
              for (let i = 0; i < fused.length; i++) {
                if (!Object.is(fused[i], packedFirst[i])) {
                  assert.fail(`${isa} ${m}x${k}x${n}${transA ? ' TN' : ''} ${threads}T [${i}]: ${fused[i]} row-major B, ${packedFirst[i]} column-major B`);
                }
              }
            }
          }
        }
      });
    }
    jl.setNumThreads(threadsBefore);
  });

  it('a long A with rows 16 KiB apart, copied K block by K block, gives the in-place product bit for bit', function () {
    // A [4096, 4096] row-major (64 MiB, rows a multiple of 8 KiB apart) against B [4096, 2048] is
    // computed over contiguous copies of A's K slices; the same A as a view with rows 4100 floats
    // apart is read in place. Both must give the same floats, with beta, bias and GELU (beta on the
    // first K block only, the epilogue on the last only), on 1 and 2 threads.
    this.timeout(60000);
    jl.tidy(() => {
      const [m, k, n] = [4096, 4096, 2048];
      const rng = new Rng(41);
      const values = Float32Array.from({ length: m * k }, () => rng.normal());
      const sliced = jl.tensor(values, { shape: [m, k] });
      const padded = jl.zeros([m, k + 4]).slice(1, 0, k);
      jl.copy_(padded, sliced);
      const b = jl.randn([k, n]);
      const c0 = jl.randn([m, n]);
      const bias = jl.randn([n]);
      const run = (a: jl.Tensor, threads: number) => {
        jl.setNumThreads(threads);
        const c = c0.clone();
        jl.addmm_(c, a, b, { alpha: 0.5, beta: 0.75, bias, activation: 'gelu' });
        return c.data();
      };
      const inPlace = run(padded, 1);
      for (const threads of [1, 2]) {
        const got = run(sliced, threads);
        for (let i = 0; i < got.length; i++) {
          if (!Object.is(got[i], inPlace[i])) assert.fail(`${threads} thread(s) [${i}]: ${got[i]} from the K slices, ${inPlace[i]} in place`);
        }
      }
      // And a few elements against float64.
      const bv = b.data(), cv = c0.data(), biasv = bias.data();
      for (const [i, j] of [[0, 0], [4095, 2047], [1234, 777], [6, 64]]) {
        let s = 0;
        for (let p = 0; p < k; p++) s += values[i * k + p] * bv[p * n + j];
        const e = gelu(0.5 * s + 0.75 * cv[i * n + j] + biasv[j]);
        assert.ok(Math.abs(inPlace[i * n + j] - e) <= 1e-3 * (1 + Math.abs(e)), `(${i}, ${j}): ${inPlace[i * n + j]}, expected ${e}`);
      }
    });
    jl.setNumThreads(threadsBefore);
  });

  it('sees a weight changed in place between two products (the per-thread packed B is not reused across calls)', () => {
    jl.tidy(() => {
      jl.setNumThreads(2);
      const x = jl.randn([1200, 128]);
      const w = jl.randn([384, 128]);
      const w2 = jl.randn([384, 128]);
      const before = x.matmul(w.t()).data();
      jl.copy_(w, w2);
      const after = x.matmul(w.t()).data();
      const expected = x.matmul(w2.t()).data();
      assert.ok(before.some((v, i) => v !== after[i]));
      for (let i = 0; i < expected.length; i++) {
        if (!Object.is(after[i], expected[i])) assert.fail(`[${i}]: ${after[i]}, expected ${expected[i]}`);
      }
      jl.setNumThreads(threadsBefore);
    });
  });

  it('k = 0 scales C by beta and applies the epilogue; empty m or n is a no-op', () => {
    jl.tidy(() => {
      const c = jl.full([2, 3], 2);
      jl.addmm_(c, jl.zeros([2, 0]), jl.zeros([0, 3]), { beta: 0.5, bias: jl.tensor([1, -5, 0]), activation: 'relu' });
      assert.deepEqual(Array.from(c.data()), [2, 0, 1, 2, 0, 1]);
      const e = jl.zeros([0, 3]);
      jl.addmm_(e, jl.zeros([0, 4]), jl.ones([4, 3]));
      assert.deepEqual(e.shape, [0, 3]);
    });
  });

  it('checks its arguments', () => {
    jl.tidy(() => {
      const code = (fn: () => unknown, want: string) =>
        assert.throws(fn, (e: unknown) => e instanceof jl.JouleError && e.code === want);
      code(() => jl.addmm_(jl.zeros([2, 3]), jl.zeros([2, 4]), jl.zeros([5, 3])), 'SHAPE_MISMATCH');
      code(() => jl.addmm_(jl.zeros([2, 3]), jl.zeros([2, 4], { dtype: 'int32' }), jl.zeros([4, 3])), 'DTYPE');
      code(() => jl.addmm_(jl.zeros([1, 3]).expand([2, 3]), jl.zeros([2, 4]), jl.zeros([4, 3])), 'INVALID_ARGUMENT');
      code(() => jl.addmm_(jl.zeros([2, 3]), jl.zeros([2, 4]), jl.zeros([4, 3]), { bias: jl.zeros([4]) }), 'SHAPE_MISMATCH');
      code(() => jl.addmm_(jl.zeros([2, 3]), jl.zeros([2, 4]), jl.zeros([4, 3]), { activation: 'tanh' as never }), 'INVALID_ARGUMENT');
      code(() => jl.addmm_(jl.zeros([2, 3]), jl.zeros([2, 4]), jl.zeros([4, 3]), { alpha: NaN }), 'INVALID_ARGUMENT');
    });
  });
});
