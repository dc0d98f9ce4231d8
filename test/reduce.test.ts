import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertClose, assertValues, expectJouleError, itTidy, LAYOUTS, makeTensor, Ref, refReduce, Rng } from './helpers';

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const mean = (xs: number[]) => sum(xs) / xs.length;
const variance = (c: number) => (xs: number[]) => {
  const m = mean(xs);
  return sum(xs.map((x) => (x - m) ** 2)) / (xs.length - c);
};
const lse = (xs: number[]) => {
  const m = Math.max(...xs);
  if (!Number.isFinite(m)) return Math.log(sum(xs.map(Math.exp)));
  return m + Math.log(sum(xs.map((x) => Math.exp(x - m))));
};
// NaN wins, then the first extreme index.
const argExtreme = (better: (x: number, y: number) => boolean) => (xs: number[]) => {
  let bi = 0;
  for (let i = 0; i < xs.length; i++) {
    if (Number.isNaN(xs[bi])) break;
    if (Number.isNaN(xs[i]) || better(xs[i], xs[bi])) bi = i;
  }
  return bi;
};
const nanMax = (xs: number[]) => (xs.some(Number.isNaN) ? NaN : Math.max(...xs));
const nanMin = (xs: number[]) => (xs.some(Number.isNaN) ? NaN : Math.min(...xs));

type Reducer = (t: jl.Tensor, axis?: number | number[], o?: { keepDims?: boolean }) => jl.Tensor;
const REDUCTIONS: { name: string; fn: Reducer; ref: (xs: number[]) => number; lo?: number; hi?: number; tol?: number }[] = [
  { name: 'sum', fn: jl.sum, ref: sum },
  { name: 'mean', fn: jl.mean, ref: mean },
  { name: 'max', fn: jl.max, ref: nanMax },
  { name: 'min', fn: jl.min, ref: nanMin },
  { name: 'prod', fn: jl.prod, ref: (xs) => xs.reduce((a, b) => a * b, 1), lo: 0.9, hi: 1.1 },
  { name: 'var', fn: jl.variance, ref: variance(1), tol: 1e-4 },
  { name: 'std', fn: jl.std, ref: (xs) => Math.sqrt(variance(1)(xs)), tol: 1e-4 },
  { name: 'logsumexp', fn: jl.logsumexp, ref: lse },
];

// Shapes and axis lists: single, several, negative, all (undefined), 0-d.
const CASES: [number[], number | number[] | undefined][] = [
  [[7], 0],
  [[257], undefined],
  [[33, 7], 1],
  [[33, 7], -2],
  [[7, 33, 5], [0, 2]],
  [[7, 33, 5], [-1, -3, 1]],
  [[1, 257], 0],
  [[3, 1, 7, 2], [1, 3]],
  [[2, 3, 4], undefined],
  [[], undefined],
  [[], 0],
  [[5, 0, 3], 0],
];

describe('reductions', () => {
  for (const r of REDUCTIONS) {
    itTidy(`${r.name}: single, multiple, negative and all axes, keepDims, non-contiguous input`, () => {
      const rng = new Rng(r.name.charCodeAt(0) * 7 + r.name.length);
      for (const [shape, axis] of CASES) {
        for (const keepDims of [false, true]) {
          const layout = rng.pick(LAYOUTS);
          const { t, ref } = makeTensor(rng, shape, layout, { lo: r.lo ?? -3, hi: r.hi ?? 3 });
          const axes = axis === undefined ? [] : Array.isArray(axis) ? axis : [axis];
          const out = r.fn(t, axis, { keepDims });
          const expected = refReduce(ref, axes, keepDims, r.ref);
          const what = `${r.name}([${shape}] ${layout}, axis ${JSON.stringify(axis)}, keepDims ${keepDims})`;
          assert.equal(out.dtype, 'float32', what);
          const tol = r.tol ?? 1e-5;
          assertClose(out, expected, { rtol: tol, atol: tol }, what);
        }
      }
    });
  }

  itTidy('method forms match the functions', () => {
    const rng = new Rng(5);
    const { t } = makeTensor(rng, [4, 5], 'transposed');
    const pairs: [jl.Tensor, jl.Tensor][] = [
      [t.sum(1), jl.sum(t, 1)], [t.mean(), jl.mean(t)], [t.max(0), jl.max(t, 0)], [t.min(-1), jl.min(t, -1)],
      [t.prod(0), jl.prod(t, 0)], [t.var(1), jl.variance(t, 1)], [t.std(), jl.std(t)],
      [t.logsumexp(0), jl.logsumexp(t, 0)], [t.argmax(1), jl.argmax(t, 1)], [t.argmin(), jl.argmin(t)],
    ];
    for (const [a, b] of pairs) assert.deepEqual(a.data(), b.data());
  });

  itTidy('var/std correction, and the population variance', () => {
    const x = jl.tensor([[1, 2, 3, 4], [2, 2, 2, 2]]);
    assertClose(x.var(1), [5 / 3, 0]);
    assertClose(x.var(1, { correction: 0 }), [1.25, 0]);
    assertClose(x.std(1, { correction: 0, keepDims: true }), [[Math.sqrt(1.25)], [0]]);
    assertClose(x.var(undefined, { correction: 0 }), variance(0)([1, 2, 3, 4, 2, 2, 2, 2]));
    // n - correction <= 0: inf or NaN, as in PyTorch.
    assertClose(jl.tensor([3]).var(), NaN);
    assertClose(jl.tensor([3, 4]).var(0, { correction: 2 }), Infinity);
    // Large offsets must not destroy the variance (two-pass, not E[x^2] - E[x]^2).
    assertClose(jl.tensor([1e4 + 1, 1e4 + 2, 1e4 + 3]).var(), 1, { rtol: 1e-4 });
    expectJouleError(() => x.var(0, { correction: -1 }), 'INVALID_ARGUMENT', /correction/);
    expectJouleError(() => x.var(0, { correction: 0.5 }), 'INVALID_ARGUMENT', /correction/);
  });

  itTidy('argmax/argmin: flat index over all elements, or along one axis; first of ties', () => {
    const rng = new Rng(8);
    for (const layout of LAYOUTS) {
      const { t, ref } = makeTensor(rng, [7, 33], layout, { lo: -3, hi: 3, ints: true });
      for (const [fn, better] of [[jl.argmax, (x: number, y: number) => x > y], [jl.argmin, (x: number, y: number) => x < y]] as const) {
        const flat = fn(t);
        assert.equal(flat.dtype, 'int32');
        assert.deepEqual(flat.shape, []);
        assert.equal(flat.item(), argExtreme(better)(Array.from(ref.data)));
        for (const axis of [0, 1, -1]) {
          for (const keepDims of [false, true]) {
            const out = fn(t, axis, { keepDims });
            assertValues(out, refReduce(ref, [axis], keepDims, argExtreme(better)), 'int32');
          }
        }
      }
    }
    assert.equal(jl.tensor([1, 3, 3, 2]).argmax().item(), 1);
    assert.equal(jl.tensor([2, 1, 1, 2]).argmin().item(), 1);
    expectJouleError(() => jl.zeros([2, 2]).argmax([0, 1] as never), 'INVALID_ARGUMENT', /integer/);
  });

  itTidy('NaN propagates through max/min/argmax/argmin and sum/mean', () => {
    const x = jl.tensor([[1, NaN, 3], [4, 5, 6], [NaN, 0, NaN]]);
    assertClose(x.max(1), [NaN, 6, NaN]);
    assertClose(x.min(1), [NaN, 4, NaN]);
    assertClose(x.max(), NaN);
    assertValues(x.argmax(1), [1, 2, 0]);
    assertValues(x.argmin(1), [1, 0, 0]);
    assert.equal(x.argmax().item(), 1);
    assertClose(x.sum(0), [NaN, NaN, NaN]);
    assertClose(x.mean(1), [NaN, 5, NaN]);
    assertClose(jl.tensor([-Infinity, Infinity]).sum(), NaN);
    assertClose(jl.tensor([-Infinity, -Infinity]).max(), -Infinity);
    // A NaN late in a long row (across the parallel chunks) still wins.
    const long = jl.zeros([300_000]);
    long.slice(0, 250_000, 250_001).fill_(NaN);
    assertClose(long.max(), NaN);
    assert.equal(long.argmax().item(), 250_000);
    assert.equal(long.argmin().item(), 250_000);
  });

  itTidy('empty reductions: sum = 0, prod = 1, mean = NaN, max/min/argmax raise', () => {
    const e = jl.zeros([0, 3]);
    assertValues(e.sum(0), [0, 0, 0], 'float32', [3]);
    assertValues(e.sum(), [0], 'float32', []);
    assertValues(e.prod(0), [1, 1, 1]);
    assertClose(e.mean(0), [NaN, NaN, NaN]);
    assertClose(e.mean(), NaN);
    assert.deepEqual(e.sum(1).shape, [0]);
    assert.deepEqual(e.max(1).shape, [0]);
    expectJouleError(() => e.max(), 'INVALID_ARGUMENT', /empty/);
    expectJouleError(() => e.max(0), 'INVALID_ARGUMENT', /empty/);
    expectJouleError(() => e.min(0), 'INVALID_ARGUMENT', /empty/);
    expectJouleError(() => e.argmax(0), 'INVALID_ARGUMENT', /empty/);
    expectJouleError(() => e.argmin(), 'INVALID_ARGUMENT', /empty/);
    assertValues(jl.zeros([0], { dtype: 'int32' }).sum(), [0], 'int32');
    assertClose(jl.zeros([0]).logsumexp(), -Infinity);
  });

  itTidy('integer inputs: sum/prod in int32 (wrapping), mean in float32, max keeps the dtype', () => {
    const i8 = jl.tensor([100, 100, 100, -128], { dtype: 'int8' });
    assertValues(i8.sum(), [172], 'int32');
    assertValues(i8.max(), [100], 'int8');
    assertValues(i8.min(), [-128], 'int8');
    assertValues(i8.mean(), [43], 'float32');
    assertValues(jl.tensor([200, 100], { dtype: 'uint8' }).sum(), [300], 'int32');
    assertValues(jl.tensor([2147483647, 1], { dtype: 'int32' }).sum(), [-2147483648], 'int32');
    assertValues(jl.tensor([65536, 65536], { dtype: 'int32' }).prod(), [0], 'int32');
    assertValues(jl.tensor([[1, 2], [3, 4]], { dtype: 'int32' }).prod(1), [2, 12], 'int32');
    assertValues(jl.tensor([1, 5, 5], { dtype: 'int32' }).argmax(), [1], 'int32');
    assertClose(jl.tensor([1, 2, 3, 4], { dtype: 'int32' }).var(), 5 / 3);
    assertClose(jl.tensor([0, 0], { dtype: 'int8' }).logsumexp(), Math.log(2));
  });

  itTidy('logsumexp is stable for huge and infinite inputs', () => {
    assertClose(jl.tensor([1000, 1000]).logsumexp(), 1000 + Math.log(2));
    assertClose(jl.tensor([-1000, -1000]).logsumexp(), -1000 + Math.log(2));
    assertClose(jl.tensor([-Infinity, -Infinity]).logsumexp(), -Infinity);
    assertClose(jl.tensor([-Infinity, 0]).logsumexp(), 0);
    assertClose(jl.tensor([Infinity, 0]).logsumexp(), Infinity);
    assertClose(jl.tensor([NaN, 0]).logsumexp(), NaN);
    assertClose(jl.tensor([[1e30, 0], [0, 0]]).logsumexp(1, { keepDims: true }), [[1e30], [Math.log(2)]]);
  });

  itTidy('a large reduction is accurate (accumulated in double)', () => {
    const n = 1 << 20;
    const x = jl.full([n], 0.1);
    assertClose(x.sum(), Math.fround(0.1) * n, { rtol: 1e-6 });
    assertClose(x.mean(), Math.fround(0.1), { rtol: 1e-6 });
    const r = x.reshape([1024, 1024]);
    assertClose(r.sum(0), new Array(1024).fill(Math.fround(0.1) * 1024), { rtol: 1e-6 });
    assertClose(r.t().sum(1), new Array(1024).fill(Math.fround(0.1) * 1024), { rtol: 1e-6 });
  });

  itTidy('axis errors', () => {
    const x = jl.zeros([2, 3]);
    expectJouleError(() => x.sum(2), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => x.sum(-3), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => x.sum([0, 0]), 'INVALID_ARGUMENT', /twice/);
    expectJouleError(() => x.sum([0, -2]), 'INVALID_ARGUMENT', /twice/);
    expectJouleError(() => x.mean(0.5), 'INVALID_ARGUMENT', /integer/);
    expectJouleError(() => x.max('0' as never), 'INVALID_ARGUMENT', /integer/);
    expectJouleError(() => x.sum(0, 'yes' as never), 'INVALID_ARGUMENT', /keepDims/);
    expectJouleError(() => x.argmax(2), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => x.softmax(2), 'INVALID_ARGUMENT', /out of range/);
  });

  describe('softmax / logSoftmax', () => {
    const softmaxRef = (xs: number[]) => {
      const m = Math.max(...xs);
      const e = xs.map((x) => Math.exp(x - m));
      const s = sum(e);
      return e.map((v) => v / s);
    };
    const along = (ref: Ref, axis: number, f: (xs: number[]) => number[]): Ref => {
      // Apply f to every 1-D line along axis.
      const nd = ref.ndim;
      const ax = axis < 0 ? axis + nd : axis;
      const perm = [...ref.shape.map((_, i) => i).filter((i) => i !== ax), ax];
      const moved = ref.permute(perm);
      const n = ref.shape[ax];
      const out = new Float64Array(moved.size);
      for (let o = 0; o < moved.size; o += n) out.set(f(Array.from(moved.data.subarray(o, o + n))), o);
      const inv = new Array<number>(nd);
      perm.forEach((p, i) => (inv[p] = i));
      return new Ref(moved.shape, out).permute(inv);
    };

    itTidy('along any axis, on non-contiguous inputs', () => {
      const rng = new Rng(12);
      const cases: [number[], number][] = [[[7], 0], [[33, 7], 0], [[33, 7], -1], [[3, 257], 1], [[2, 7, 5], 1], [[2, 7, 5], -3], [[4, 1], 1], [[0, 3], 1]];
      for (const [shape, axis] of cases) {
        const layout = rng.pick(LAYOUTS);
        const { t, ref } = makeTensor(rng, shape, layout, { lo: -10, hi: 10 });
        const sm = t.softmax(axis);
        const what = `softmax([${shape}] ${layout}, ${axis})`;
        assertClose(sm, along(ref, axis, softmaxRef), { rtol: 1e-5, atol: 1e-7 }, what);
        assertClose(jl.softmax(t, axis), sm, { rtol: 0, atol: 0 });
        const lsm = t.logSoftmax(axis);
        assertClose(lsm, along(ref, axis, (xs) => xs.map((x) => x - lse(xs))), { rtol: 1e-5, atol: 1e-5 }, `log${what}`);
        if (t.size > 0) assertClose(sm.sum(axis), jl.onesLike(sm.sum(axis)), { rtol: 1e-5 });
      }
      assertClose(jl.tensor([1, 2, 3]).softmax(), softmaxRef([1, 2, 3]));
      assertClose(jl.tensor(5).softmax(), 1);
      assertClose(jl.tensor(5).logSoftmax(), 0);
      assertClose(jl.tensor([1, 2], { dtype: 'int32' }).softmax(), softmaxRef([1, 2]));
    });

    itTidy('huge and -Infinity inputs', () => {
      assertClose(jl.tensor([1000, 1000]).softmax(), [0.5, 0.5]);
      assertClose(jl.tensor([1e30, 0]).softmax(), [1, 0]);
      assertClose(jl.tensor([-1e30, 0]).softmax(), [0, 1]);
      assertClose(jl.tensor([-Infinity, 0, 0]).softmax(), [0, 0.5, 0.5]);
      assertClose(jl.tensor([-Infinity, 0]).logSoftmax(), [-Infinity, 0]);
      assertClose(jl.tensor([1000, 0]).logSoftmax(), [0, -1000]);
      assertClose(jl.tensor([-1000, 0]).logSoftmax(), [-1000, 0]);
      assertClose(jl.tensor([NaN, 0]).softmax(), [NaN, NaN]);
      // As PyTorch: inf - inf is NaN, and the NaN spreads through the row's sum.
      assertClose(jl.tensor([Infinity, 0]).softmax(), [NaN, NaN]);
    });
  });
});
