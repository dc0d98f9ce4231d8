// GPU tests: each CUDA kernel against the CPU reference. Without a GPU they skip, saying why;
// `npm run test:gpu` (JOULE_REQUIRE_GPU=1) makes a missing GPU a failure instead.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';
import { native } from '../lib/native';

const cuda = jl.cudaAvailable();

function gpuSuite(this: Mocha.Context): void {
  if (cuda.available) return;
  if (process.env.JOULE_REQUIRE_GPU) throw new Error(`a GPU is required (JOULE_REQUIRE_GPU) but CUDA is unavailable: ${cuda.reason}`);
  console.log(`      skipped: no usable GPU (${cuda.reason})`);
  this.skip();
}

function close(a: Float32Array | Int32Array | Int8Array | Uint8Array, b: Float32Array | Int32Array | Int8Array | Uint8Array, tol = 1e-5): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue; // equal infinities
    assert.ok(Math.abs(x - y) <= tol * (1 + Math.abs(y)), `element ${i}: ${x} vs ${y}`);
  }
}

describe('CUDA @gpu', function () {
  before(gpuSuite);

  const shapes = [[1], [7], [33, 5], [257, 3], [4, 1, 9]];

  it('copies to the device and back unchanged @gpu', () => {
    jl.tidy(() => {
      for (const s of shapes) {
        const x = jl.randn(s);
        close(x.to('cuda:0').to('cpu').data(), x.data(), 0);
      }
    });
  });

  it('binary ops with broadcasting match the CPU @gpu', () => {
    jl.tidy(() => {
      for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const) {
        const a = jl.randn([33, 7]);
        const b = jl.randn([7]);
        const want = jl[op](a, b).data();
        const got = jl[op](a.to('cuda:0'), b.to('cuda:0')).to('cpu').data();
        close(got, want);
      }
    });
  });

  it('unary ops match the CPU @gpu', () => {
    jl.tidy(() => {
      const x = jl.randn([257, 3]);
      for (const op of ['neg', 'abs', 'exp', 'tanh', 'sigmoid', 'relu', 'gelu', 'silu', 'square', 'sin', 'cos', 'erf'] as const) {
        close(jl[op](x.to('cuda:0')).to('cpu').data(), jl[op](x).data(), 1e-5);
      }
    });
  });

  it('full and strided copies match the CPU @gpu', () => {
    jl.tidy(() => {
      close(jl.full([5, 3], 2.5, { device: 'cuda:0' }).to('cpu').data(), jl.full([5, 3], 2.5).data(), 0);
      const x = jl.randn([9, 4]);
      close(x.to('cuda:0').t().contiguous().to('cpu').data(), x.t().contiguous().data(), 0);
    });
  });

  it('reports device memory in memory() @gpu', () => {
    const before = jl.memory().devices['cuda:0']?.tensors ?? 0;
    const x = jl.zeros([1000], { device: 'cuda:0' });
    assert.equal(jl.memory().devices['cuda:0'].tensors, before + 1);
    x.dispose();
    assert.equal(jl.memory().devices['cuda:0'].tensors, before);
  });
});

// ---- each CUDA kernel against the CPU, through the public API ----

// JOULE_GPU_TESTS_ON_CPU=1 runs the suite below on the CPU: a dry run of the tests' own code (shapes, references,
// tolerances) on a machine without a GPU, comparing the CPU with itself; it proves nothing about the kernels.
const DRY_RUN = process.env.JOULE_GPU_TESTS_ON_CPU === '1';
const GPU: jl.Device = DRY_RUN ? 'cpu' : 'cuda:0';

/** ||got - want|| / ||want||, for results whose elementwise error depends on the precision (TF32, BF16). */
function relL2(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let d = 0;
  let r = 0;
  for (let i = 0; i < got.length; i++) {
    assert.ok(Number.isFinite(got[i]) || !Number.isFinite(want[i]), `element ${i}: ${got[i]} vs ${want[i]}`);
    d += (got[i] - want[i]) ** 2;
    r += want[i] ** 2;
  }
  return r > 0 ? Math.sqrt(d / r) : Math.sqrt(d);
}

/** fn on CPU copies of the inputs and on GPU copies; the GPU result must be on the GPU and match. */
function sameOnGpu(inputs: jl.Tensor[], fn: (...xs: jl.Tensor[]) => jl.Tensor, tol: number, what: string): void {
  const want = fn(...inputs);
  const got = fn(...inputs.map((x) => x.to(GPU)));
  assert.equal(got.device, GPU, `${what}: the result is on ${got.device}`);
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  try {
    close(got.to('cpu').data(), want.data(), tol);
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }
}

/** A new leaf on dev with t's values that requires grad; never a view of t (the CPU run must not change t). */
function leaf(t: jl.Tensor, dev: jl.Device): jl.Tensor {
  return (dev === 'cpu' ? t.clone() : t.to(dev)).requiresGrad_();
}

/** Uniform int32 indices in [0, n). */
function indices(shape: number[], n: number): jl.Tensor {
  return jl.randint(0, n, shape);
}

type Precision = 'highest' | 'high' | 'medium';
// setMatmulPrecision comes with the CUDA GEMM (lib/ops/precision.ts); looked up at run time so that these tests
// say why they skip in a build that does not export it yet.
const precisionApi = jl as unknown as { setMatmulPrecision?: (p: Precision) => void; getMatmulPrecision?: () => Precision };

describe('CUDA kernels vs the CPU @gpu', function () {
  before(function () {
    if (!DRY_RUN) gpuSuite.call(this);
  });
  this.timeout(120_000);
  beforeEach(() => jl.manualSeed(1234));

  it('matmul in each precision (highest, high = TF32, medium = BF16) matches the CPU @gpu', function () {
    const set = precisionApi.setMatmulPrecision;
    let missing = typeof set !== 'function' ? 'jl.setMatmulPrecision is not exported (lib/ops/precision.ts)' : '';
    if (!missing) {
      try {
        set!('highest');
      } catch (e) {
        // The TypeScript side is there but the addon was built before its binding (cpp/napi/gemm_bindings.cpp).
        if (e instanceof jl.JouleError) throw e;
        missing = `jl.setMatmulPrecision does not work in this build: ${(e as Error).message}`;
      }
    }
    if (missing) {
      console.log(`      skipped: ${missing}`);
      this.skip();
    }
    // Relative L2 bounds: fp32 far under 1e-5; TF32 operands (10-bit mantissa) near 3e-4; BF16 (8-bit) near 3e-3.
    const bound: Record<Precision, number> = { highest: 1e-5, high: 2e-3, medium: 1.5e-2 };
    const cases: [number[], number[], string][] = [
      [[1, 1], [1, 1], '1x1x1'],
      [[7, 13], [13, 5], '7x13x5'],
      [[65, 33], [33, 129], '65x33x129'],
      [[256, 256], [256, 256], '256^3'],
      [[130, 1000], [1000, 70], 'K = 1000'],
      [[2, 3, 17, 19], [19, 5], 'batched with a broadcast matrix'],
      [[33], [33, 9], 'vector @ matrix'],
    ];
    try {
      for (const p of ['highest', 'high', 'medium'] as const) {
        set!(p);
        jl.tidy(() => {
          for (const [sa, sb, what] of cases) {
            const a = jl.randn(sa);
            const b = jl.randn(sb);
            const want = a.matmul(b).data();
            const got = a.to(GPU).matmul(b.to(GPU));
            assert.equal(got.device, GPU);
            const e = relL2(got.to('cpu').data(), want);
            assert.ok(e <= bound[p], `${p} ${what}: relative L2 error ${e} > ${bound[p]}`);
          }
          // Transposed operands (the layouts backward needs): a.t() @ b and a @ b.t().
          const a = jl.randn([37, 61]);
          const b = jl.randn([37, 45]);
          const c = jl.randn([45, 61]);
          const e1 = relL2(a.to(GPU).t().matmul(b.to(GPU)).to('cpu').data(), a.t().matmul(b).data());
          const e2 = relL2(a.to(GPU).matmul(c.to(GPU).t()).to('cpu').data(), a.matmul(c.t()).data());
          assert.ok(e1 <= bound[p] && e2 <= bound[p], `${p} transposed operands: relative L2 errors ${e1}, ${e2}`);
        });
      }
    } finally {
      set!('highest');
    }
  });

  it('reductions (sum, mean, max, min, argmax, argmin, var, logsumexp) over axes match the CPU @gpu', () => {
    jl.tidy(() => {
      const x = jl.randn([33, 17, 5]);
      const axesList: (number | number[] | undefined)[] = [undefined, 0, 1, 2, -1, [0, 2], [0, 1, 2]];
      for (const axis of axesList) {
        for (const keepDims of [false, true]) {
          const what = `axis ${JSON.stringify(axis)} keepDims ${keepDims}`;
          // Sums of up to 2805 terms, added in another order on the GPU.
          sameOnGpu([x], (t) => t.sum(axis, { keepDims }), 1e-4, `sum ${what}`);
          sameOnGpu([x], (t) => t.mean(axis, { keepDims }), 1e-5, `mean ${what}`);
          sameOnGpu([x], (t) => t.max(axis, { keepDims }), 0, `max ${what}`);
          sameOnGpu([x], (t) => t.min(axis, { keepDims }), 0, `min ${what}`);
          sameOnGpu([x], (t) => t.var(axis, { keepDims }), 1e-5, `var ${what}`);
          sameOnGpu([x], (t) => t.logsumexp(axis, { keepDims }), 1e-5, `logsumexp ${what}`);
        }
      }
      for (const axis of [0, 1, 2, -1]) {
        sameOnGpu([x], (t) => t.argmax(axis), 0, `argmax axis ${axis}`);
        sameOnGpu([x], (t) => t.argmin(axis), 0, `argmin axis ${axis}`);
      }
      // Long rows (several blocks per row) and a transposed (non-contiguous) input.
      const big = jl.randn([(1 << 20) + 3]);
      sameOnGpu([big], (t) => t.sum(), 1e-4, 'sum of 2^20 + 3');
      sameOnGpu([big], (t) => t.max(), 0, 'max of 2^20 + 3');
      sameOnGpu([big], (t) => t.argmax(0), 0, 'argmax of 2^20 + 3');
      const m = jl.randn([300, 257]);
      sameOnGpu([m], (t) => t.t().sum(1), 1e-5, 'sum over rows of a transposed view');
      sameOnGpu([m], (t) => t.t().argmax(0), 0, 'argmax of a transposed view');
    });
  });

  it('softmax and logSoftmax along each axis match the CPU @gpu', () => {
    jl.tidy(() => {
      for (const shape of [[1, 1], [33, 257], [4, 1, 1000], [7, 3001]]) {
        const x = jl.randn(shape).mul(4);
        for (const axis of [-1, 0]) {
          sameOnGpu([x], (t) => t.softmax(axis), 1e-5, `softmax ${JSON.stringify(shape)} axis ${axis}`);
          sameOnGpu([x], (t) => t.logSoftmax(axis), 1e-5, `logSoftmax ${JSON.stringify(shape)} axis ${axis}`);
        }
      }
      // Large logits (no overflow) and a row of -Infinity except one entry.
      const y = jl.tensor([[1000, 999, -1000], [-Infinity, 0, -Infinity]]);
      sameOnGpu([y], (t) => t.softmax(-1), 1e-6, 'softmax of large and infinite logits');
      sameOnGpu([y], (t) => t.logSoftmax(-1), 1e-6, 'logSoftmax of large and infinite logits');
    });
  });

  it('indexSelect, gather and scatterAdd match the CPU @gpu', () => {
    jl.tidy(() => {
      const x = jl.randn([50, 7]);
      const rows = indices([23], 50);
      const cols = indices([11], 7);
      sameOnGpu([x, rows], (t, i) => t.indexSelect(0, i), 0, 'indexSelect axis 0');
      sameOnGpu([x, cols], (t, i) => t.indexSelect(1, i), 0, 'indexSelect axis 1');
      sameOnGpu([x, rows], (t, i) => t.t().indexSelect(1, i), 0, 'indexSelect of a transposed view');
      sameOnGpu([x, indices([50, 3], 7)], (t, i) => t.gather(1, i), 0, 'gather axis 1');
      sameOnGpu([x, indices([9, 7], 50)], (t, i) => t.gather(0, i), 0, 'gather axis 0');
      // Many sources land on the same row: the GPU adds them in another order, hence the tolerance.
      const base = jl.randn([10, 7]);
      sameOnGpu([base, indices([500, 7], 10), jl.randn([500, 7])], (b, i, s) => b.scatterAdd(0, i, s), 1e-5, 'scatterAdd axis 0');
      sameOnGpu([base, indices([10, 40], 7), jl.randn([10, 40])], (b, i, s) => b.scatterAdd(1, i, s), 1e-5, 'scatterAdd axis 1');
      // indexAdd (the embedding gradient) composes the scatter-add kernel on the GPU.
      sameOnGpu([base, indices([300], 10), jl.randn([300, 7])], (b, i, s) => new jl.Tensor(native.indexAdd(b.handle, 0, i.handle, s.handle)), 1e-5, 'indexAdd axis 0');
      // An index out of range is INVALID_ARGUMENT on the GPU too.
      const bad = jl.tensor([0, 50], { dtype: 'int32' });
      assert.throws(() => x.to(GPU).indexSelect(0, bad.to(GPU)).to('cpu'),
        (e: unknown) => e instanceof jl.JouleError && e.code === 'INVALID_ARGUMENT');
    });
  });

  it('clamp and where (with broadcasting) match the CPU @gpu', () => {
    jl.tidy(() => {
      const x = jl.randn([33, 7]);
      sameOnGpu([x], (t) => t.clamp(-0.5, 0.7), 0, 'clamp(-0.5, 0.7)');
      sameOnGpu([x], (t) => t.clamp(null, 0), 0, 'clamp(max 0)');
      sameOnGpu([x], (t) => t.clamp(0.25), 0, 'clamp(min 0.25)');
      sameOnGpu([jl.tensor([NaN, -Infinity, Infinity, 2])], (t) => t.clamp(-1, 1), 0, 'clamp of NaN and infinities');
      // The condition is made on the CPU (comparisons may have no CUDA kernel) and moved.
      const cond = jl.randn([33, 1]).gt(0);
      const other = jl.randn([7]);
      sameOnGpu([cond, x, other], (c, a, b) => jl.where(c, a, b), 0, 'where(cond [33, 1], a [33, 7], b [7])');
      sameOnGpu([cond, x], (c, a) => jl.where(c, a, -2.5), 0, 'where with a number');
    });
  });

  it('crossEntropy forward and backward match the CPU @gpu', () => {
    jl.tidy(() => {
      const cases: [number, number, jl.nn.functional.CrossEntropyOptions][] = [
        [64, 10, {}],
        [1, 3, {}],
        [257, 1000, { labelSmoothing: 0.1 }],
        [33, 7, { ignoreIndex: 2, reduction: 'sum' }],
        [20, 5, { reduction: 'none' }],
      ];
      for (const [n, c, options] of cases) {
        const what = `crossEntropy N ${n} C ${c} ${JSON.stringify(options)}`;
        const logits = jl.randn([n, c]).mul(3);
        const target = indices([n], c);
        const run = (dev: jl.Device) => {
          const x = leaf(logits, dev);
          const loss = jl.nn.functional.crossEntropy(x, target.to(dev), options);
          const out = loss.to('cpu').data();
          loss.sum().backward();
          return { out, grad: x.grad!.to('cpu').data() };
        };
        const want = run('cpu');
        const got = run(GPU);
        close(got.out, want.out, 1e-5);
        try {
          close(got.grad, want.grad, 1e-5);
        } catch (e) {
          throw new Error(`${what}: gradient: ${(e as Error).message}`);
        }
      }
    });
  });

  it('layerNorm forward and backward match the CPU @gpu', () => {
    jl.tidy(() => {
      for (const shape of [[17, 33], [2, 5, 64], [3, 1000], [4, 1]]) {
        const d = shape[shape.length - 1];
        const x0 = jl.randn(shape).mul(2).add(0.5);
        const w0 = jl.randn([d]);
        const b0 = jl.randn([d]);
        const r = jl.randn(shape);
        const run = (dev: jl.Device) => {
          const [x, w, b] = [x0, w0, b0].map((t) => leaf(t, dev));
          const y = jl.nn.functional.layerNorm(x, d, w, b);
          const yData = y.to('cpu').data(); // backward() frees the graph's intermediates, y among them
          y.mul(r.to(dev)).sum().backward();
          return [yData, ...[x.grad!, w.grad!, b.grad!].map((t) => t.to('cpu').data())];
        };
        const want = run('cpu');
        const got = run(GPU);
        ['y', 'dx', 'dweight', 'dbias'].forEach((name, i) => {
          try {
            close(got[i], want[i], 1e-4);
          } catch (e) {
            throw new Error(`layerNorm ${JSON.stringify(shape)} ${name}: ${(e as Error).message}`);
          }
        });
      }
    });
  });

  it('an SGD (momentum, Nesterov, weight decay) and an AdamW step match the CPU @gpu', () => {
    jl.tidy(() => {
      const p0 = [jl.randn([37, 13]), jl.randn([13]), jl.randn([100003])];
      const r = p0.map((p) => jl.randn(p.shape));
      const makers: [string, (ps: jl.Tensor[]) => jl.optim.Optimizer][] = [
        ['SGD', (ps) => new jl.optim.SGD(ps, { lr: 0.05, momentum: 0.9, weightDecay: 0.01 })],
        ['SGD nesterov', (ps) => new jl.optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true })],
        ['AdamW', (ps) => new jl.optim.AdamW(ps, { lr: 1e-2, weightDecay: 0.1 })],
        ['Adam amsgrad', (ps) => new jl.optim.Adam(ps, { lr: 1e-2, amsgrad: true })],
      ];
      for (const [name, make] of makers) {
        const run = (dev: jl.Device) => {
          const ps = p0.map((p) => leaf(p, dev));
          const rs = r.map((t) => t.to(dev));
          const opt = make(ps);
          for (let step = 0; step < 3; step++) {
            opt.zeroGrad();
            // d/dp of sum(p^2 * r) = 2 p r: a gradient that changes between steps.
            jl.tidy(() => ps.map((p, i) => p.square().mul(rs[i]).sum()).reduce((a, b) => a.add(b)).backward());
            opt.step();
          }
          return ps.map((p) => p.to('cpu').data());
        };
        const want = run('cpu');
        const got = run(GPU);
        want.forEach((w, i) => {
          try {
            close(got[i], w, 1e-5);
          } catch (e) {
            throw new Error(`${name}, parameter ${i}: ${(e as Error).message}`);
          }
        });
      }
    });
  });

  it('an MLP trained on the GPU matches the same MLP trained on the CPU within tolerance @gpu', () => {
    jl.tidy(() => {
      const build = () => {
        jl.manualSeed(7);
        return new jl.nn.Sequential(new jl.nn.Linear(20, 64), new jl.nn.ReLU(), new jl.nn.Linear(64, 64), new jl.nn.GELU(),
          new jl.nn.Linear(64, 5));
      };
      jl.manualSeed(8);
      const x = jl.randn([48, 20]);
      const y = indices([48], 5);
      const train = (dev: jl.Device) => {
        const model = build().to(dev);
        const opt = new jl.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
        const xd = x.to(dev);
        const yd = y.to(dev);
        const losses: number[] = [];
        for (let step = 0; step < 8; step++) {
          jl.tidy(() => {
            const loss = jl.nn.functional.crossEntropy(model.forward(xd), yd);
            opt.zeroGrad();
            loss.backward();
            opt.step();
            losses.push(loss.item());
          });
        }
        return { losses, weights: model.parameters().map((p) => p.to('cpu').data()) };
      };
      const cpu = train('cpu');
      const gpu = train(GPU);
      assert.ok(cpu.losses[7] < cpu.losses[0], `the CPU run did not learn: ${cpu.losses}`);
      close(Float32Array.from(gpu.losses), Float32Array.from(cpu.losses), 1e-4);
      cpu.weights.forEach((w, i) => close(gpu.weights[i], w, 1e-4));
    });
  });
});

describe('CUDA unavailable', function () {
  it('says why, and creating a CUDA tensor is a DEVICE error', function () {
    if (cuda.available) this.skip();
    assert.ok(cuda.reason.length > 0);
    assert.throws(() => jl.zeros([2], { device: 'cuda:0' }), (e: unknown) => e instanceof jl.JouleError && e.code === 'DEVICE' && /CUDA/.test(e.message));
    assert.throws(() => jl.ones([2]).to('cuda:1'), (e: unknown) => e instanceof jl.JouleError && e.code === 'DEVICE');
  });
});
