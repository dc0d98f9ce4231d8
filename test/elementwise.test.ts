import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import {
  assertClose, assertValues, erf, expectJouleError, gelu, itTidy, LAYOUTS, makeTensor, Ref, refBinary, refWhere,
  Rng, roundHalfEven, sigmoid,
} from './helpers';

// Shape pairs covering NumPy broadcasting: equal, one side, both sides, leading dims, 0-d, empty.
const PAIRS: [number[], number[]][] = [
  [[7], [7]],
  [[1], [1]],
  [[257], [257]],
  [[33, 1], [1, 7]],
  [[3, 1, 257], [257]],
  [[1, 7], [4, 33, 1]],
  [[], [2, 3]],
  [[5, 1, 3], []],
  [[0, 3], [1, 3]],
  [[2, 0], [2, 1]],
  [[7, 1, 33], [1, 5, 1]],
  [[2, 3, 4, 5], [3, 1, 5]],
];

type BinaryFn = (a: jl.TensorLike, b: jl.TensorLike) => jl.Tensor;
const BINARY: { name: string; fn: BinaryFn; ref: (x: number, y: number) => number; lo?: number; hi?: number; blo?: number; bhi?: number; cmp?: boolean }[] = [
  { name: 'add', fn: jl.add, ref: (x, y) => x + y },
  { name: 'sub', fn: jl.sub, ref: (x, y) => x - y },
  { name: 'mul', fn: jl.mul, ref: (x, y) => x * y },
  { name: 'div', fn: jl.div, ref: (x, y) => x / y, blo: 0.5, bhi: 3 },
  { name: 'pow', fn: jl.pow, ref: (x, y) => x ** y, lo: 0.1, hi: 3, blo: -2, bhi: 2 },
  { name: 'maximum', fn: jl.maximum, ref: (x, y) => Math.max(x, y) },
  { name: 'minimum', fn: jl.minimum, ref: (x, y) => Math.min(x, y) },
  { name: 'eq', fn: jl.eq, ref: (x, y) => +(x === y), cmp: true },
  { name: 'ne', fn: jl.ne, ref: (x, y) => +(x !== y), cmp: true },
  { name: 'lt', fn: jl.lt, ref: (x, y) => +(x < y), cmp: true },
  { name: 'le', fn: jl.le, ref: (x, y) => +(x <= y), cmp: true },
  { name: 'gt', fn: jl.gt, ref: (x, y) => +(x > y), cmp: true },
  { name: 'ge', fn: jl.ge, ref: (x, y) => +(x >= y), cmp: true },
];

type UnaryName =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'silu' | 'sign'
  | 'square' | 'reciprocal' | 'sin' | 'cos' | 'floor' | 'ceil' | 'round' | 'log1p' | 'expm1' | 'erf';
const UNARY: { name: UnaryName; ref: (x: number) => number; lo: number; hi: number; keepsInt: boolean }[] = [
  { name: 'neg', ref: (x) => -x, lo: -5, hi: 5, keepsInt: true },
  { name: 'abs', ref: Math.abs, lo: -5, hi: 5, keepsInt: true },
  { name: 'exp', ref: Math.exp, lo: -10, hi: 10, keepsInt: false },
  { name: 'log', ref: Math.log, lo: 0.01, hi: 100, keepsInt: false },
  { name: 'sqrt', ref: Math.sqrt, lo: 0, hi: 100, keepsInt: false },
  { name: 'rsqrt', ref: (x) => 1 / Math.sqrt(x), lo: 0.01, hi: 100, keepsInt: false },
  { name: 'tanh', ref: Math.tanh, lo: -6, hi: 6, keepsInt: false },
  { name: 'sigmoid', ref: sigmoid, lo: -20, hi: 20, keepsInt: false },
  { name: 'relu', ref: (x) => Math.max(x, 0), lo: -5, hi: 5, keepsInt: true },
  { name: 'gelu', ref: gelu, lo: -6, hi: 6, keepsInt: false },
  { name: 'silu', ref: (x) => x * sigmoid(x), lo: -20, hi: 20, keepsInt: false },
  { name: 'sign', ref: Math.sign, lo: -5, hi: 5, keepsInt: true },
  { name: 'square', ref: (x) => x * x, lo: -5, hi: 5, keepsInt: true },
  { name: 'reciprocal', ref: (x) => 1 / x, lo: 0.1, hi: 5, keepsInt: false },
  { name: 'sin', ref: Math.sin, lo: -10, hi: 10, keepsInt: false },
  { name: 'cos', ref: Math.cos, lo: -10, hi: 10, keepsInt: false },
  { name: 'floor', ref: Math.floor, lo: -5, hi: 5, keepsInt: true },
  { name: 'ceil', ref: Math.ceil, lo: -5, hi: 5, keepsInt: true },
  { name: 'round', ref: roundHalfEven, lo: -5, hi: 5, keepsInt: true },
  { name: 'log1p', ref: Math.log1p, lo: -0.99, hi: 10, keepsInt: false },
  { name: 'expm1', ref: Math.expm1, lo: -5, hi: 5, keepsInt: false },
  { name: 'erf', ref: erf, lo: -4, hi: 4, keepsInt: false },
];

const UNARY_SHAPES = [[], [1], [7], [0], [33, 7], [2, 0, 3], [257], [3, 1, 33]];

describe('elementwise', () => {
  describe('binary ops against the float64 reference', () => {
    for (const op of BINARY) {
      itTidy(`${op.name}: broadcasting shapes, non-contiguous operands`, () => {
        const rng = new Rng(op.name.length * 1000 + op.name.charCodeAt(0));
        for (const [sa, sb] of PAIRS) {
          const la = rng.pick(LAYOUTS);
          const lb = rng.pick(LAYOUTS);
          const A = makeTensor(rng, sa, la, { lo: op.lo ?? -3, hi: op.hi ?? 3 });
          const B = makeTensor(rng, sb, lb, { lo: op.blo ?? op.lo ?? -3, hi: op.bhi ?? op.hi ?? 3 });
          if (op.cmp) {
            // Make some elements equal so that eq/le/ge see ties.
            for (let i = 0; i < B.ref.size; i += 3) B.ref.data[i] = Math.fround(Math.round(B.ref.data[i]));
            for (let i = 0; i < A.ref.size; i += 2) A.ref.data[i] = Math.fround(Math.round(A.ref.data[i]));
          }
          const a = op.cmp ? jl.tensor(Float32Array.from(A.ref.data), { shape: sa }) : A.t;
          const b = op.cmp ? jl.tensor(Float32Array.from(B.ref.data), { shape: sb }) : B.t;
          const a2 = op.cmp && la !== 'contiguous' && sa.length >= 2 ? a.t().contiguous().t() : a;
          const out = op.fn(a2, b);
          const expected = refBinary(A.ref, B.ref, op.ref);
          const what = `${op.name} [${sa}] (${la}) with [${sb}] (${lb})`;
          assert.equal(out.dtype, op.cmp ? 'uint8' : 'float32', what);
          assertClose(out, expected, { rtol: 2e-6, atol: 1e-6 }, what);
          // The method form is the same op.
          const method = (a2 as unknown as Record<string, (o: jl.Tensor) => jl.Tensor>)[op.name].call(a2, b);
          assert.deepEqual(method.data(), out.data(), `${what} (method)`);
        }
      });
    }

    itTidy('tensor-scalar and scalar-tensor forms', () => {
      const rng = new Rng(9);
      const { t, ref } = makeTensor(rng, [7, 33], 'transposed', { lo: 0.5, hi: 3 });
      assertClose(t.add(2.5), ref.map((x) => x + 2.5));
      assertClose(jl.sub(1, t), ref.map((x) => 1 - x));
      assertClose(jl.div(1, t), ref.map((x) => 1 / x));
      assertClose(t.div(4), ref.map((x) => x / 4));
      assertClose(jl.pow(2, t), ref.map((x) => 2 ** x));
      assertClose(t.pow(0.5), ref.map(Math.sqrt));
      assertClose(t.mul(-3), ref.map((x) => -3 * x));
      assertValues(t.gt(1.5), ref.map((x) => +(x > 1.5)).data, 'uint8');
      assertValues(jl.lt(1.5, t), ref.map((x) => +(1.5 < x)).data, 'uint8');
      assertClose(t.maximum(1), ref.map((x) => Math.max(x, 1)));
      assertClose(jl.minimum(1, t), ref.map((x) => Math.min(1, x)));
      assertValues(jl.tensor([1, 2]).add(true as never), [2, 3]);
      expectJouleError(() => jl.add(1, 2), 'INVALID_ARGUMENT', /Tensor/);
    });
  });

  describe('edge values', () => {
    itTidy('NaN and infinities propagate as in IEEE arithmetic; maximum/minimum propagate NaN', () => {
      const a = jl.tensor([NaN, 1, Infinity, -Infinity, 0, -0]);
      const b = jl.tensor([1, NaN, Infinity, Infinity, 0, 0]);
      assertClose(a.add(b), [NaN, NaN, Infinity, NaN, 0, 0]);
      assertClose(a.mul(b), [NaN, NaN, Infinity, -Infinity, 0, 0]);
      assertClose(a.div(b), [NaN, NaN, NaN, NaN, NaN, NaN]);
      assertClose(jl.tensor([1, -1, 0]).div(0), [Infinity, -Infinity, NaN]);
      assertClose(a.maximum(b), [NaN, NaN, Infinity, Infinity, 0, 0]);
      assertClose(a.minimum(b), [NaN, NaN, Infinity, -Infinity, 0, 0]);
      assertValues(a.eq(a), [0, 1, 1, 1, 1, 1]);
      assertValues(a.ne(a), [1, 0, 0, 0, 0, 0]);
      assertValues(a.lt(b), [0, 0, 0, 1, 0, 0]);
      assertClose(jl.tensor([0, -1, Infinity, -Infinity, NaN]).exp(), [1, Math.exp(-1), Infinity, 0, NaN]);
      assertClose(jl.tensor([0, -1, Infinity]).log(), [-Infinity, NaN, Infinity]);
      assertClose(jl.tensor([-1, Infinity]).sqrt(), [NaN, Infinity]);
      assertClose(jl.tensor([0]).rsqrt(), [Infinity]);
      assertClose(jl.tensor([0, -0]).reciprocal(), [Infinity, -Infinity]);
      assertClose(jl.tensor([-100, 100, 1e30, -1e30, NaN]).sigmoid(), [0, 1, 1, 0, NaN], { atol: 1e-30 });
      assertClose(jl.tensor([-1e30, 1e30, -200, 200]).tanh(), [-1, 1, -1, 1]);
      assertClose(jl.tensor([-100, 100, Infinity]).silu(), [-100 * sigmoid(-100), 100, Infinity], { atol: 1e-30 });
      assertClose(jl.tensor([-30, Infinity, NaN]).gelu(), [-0, Infinity, NaN]);
      assertClose(jl.tensor([NaN, -2, 2]).relu(), [NaN, 0, 2]);
      assertClose(jl.tensor([NaN, -0, 0, -3]).sign(), [NaN, 0, 0, -1]);
      assertClose(jl.tensor([89, -104]).exp(), [Infinity, Math.exp(-104)], { atol: 0 });
      assertClose(jl.tensor([-1, -2]).log1p(), [-Infinity, NaN]);
      assertClose(jl.tensor([1e-10]).log1p(), [1e-10], { rtol: 1e-6, atol: 0 });
      assertClose(jl.tensor([1e-10]).expm1(), [1e-10], { rtol: 1e-6, atol: 0 });
      assertClose(jl.tensor([Infinity, -Infinity, 0]).erf(), [1, -1, 0]);
      assertClose(jl.tensor([-1, 0, 2]).pow(jl.tensor([0.5, 0, -1])), [NaN, 1, 0.5]);
    });

    itTidy('round halves to even; floor/ceil at halves and negatives', () => {
      const x = jl.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001, 1e8 + 0.5]);
      assertClose(x.round(), [0, 2, 2, -0, -2, -2, 2, 3, 1e8], { atol: 0, rtol: 0 });
      assertClose(jl.tensor([-1.5, -0.5, 0.5, 1.5]).floor(), [-2, -1, 0, 1], { atol: 0, rtol: 0 });
      assertClose(jl.tensor([-1.5, -0.5, 0.5, 1.5]).ceil(), [-1, -0, 1, 2], { atol: 0, rtol: 0 });
    });
  });

  describe('unary ops against the float64 reference', () => {
    for (const op of UNARY) {
      itTidy(`${op.name}: awkward shapes and layouts`, () => {
        const rng = new Rng(op.name.charCodeAt(0) * 31 + op.name.length);
        for (const shape of UNARY_SHAPES) {
          const layout = rng.pick(LAYOUTS);
          const { t, ref } = makeTensor(rng, shape, layout, { lo: op.lo, hi: op.hi });
          const out = (t as unknown as Record<string, () => jl.Tensor>)[op.name].call(t);
          const fnOut = (jl as unknown as Record<string, (x: jl.Tensor) => jl.Tensor>)[op.name](t);
          const what = `${op.name} [${shape}] (${layout})`;
          assert.equal(out.dtype, 'float32', what);
          assertClose(out, ref.map(op.ref), { rtol: 4e-6, atol: 2e-6 }, what);
          assert.deepEqual(fnOut.data(), out.data(), `${what} (function form)`);
        }
      });
    }

    itTidy('on integer tensors: sign-like ops keep the dtype (wrapping), the rest give float32', () => {
      const i8 = jl.tensor(new Int8Array([-128, -3, 0, 5, 127]));
      for (const op of UNARY) {
        const out = (i8 as unknown as Record<string, () => jl.Tensor>)[op.name].call(i8);
        if (op.keepsInt) {
          assert.equal(out.dtype, 'int8', op.name);
          const expected = Array.from(i8.data()).map((x) => ((op.ref(x) + 128) & 255) - 128);
          assertValues(out, Int8Array.from(expected), 'int8');
        } else {
          assert.equal(out.dtype, 'float32', op.name);
          assertClose(out, Array.from(i8.data()).map(op.ref), { rtol: 4e-6, atol: 2e-6 }, op.name);
        }
      }
      assertValues(jl.tensor(new Int32Array([-2147483648, 7])).abs(), [-2147483648, 7], 'int32');
      assertValues(jl.tensor(new Uint8Array([0, 200])).neg(), [0, 56], 'uint8');
      assertValues(jl.tensor(new Int32Array([46341])).square(), [(46341 * 46341) | 0], 'int32');
    });
  });

  describe('clamp and where', () => {
    itTidy('clamp with both, one or no bounds, on views and integer tensors', () => {
      const rng = new Rng(21);
      const { t, ref } = makeTensor(rng, [33, 7], 'permuted', { lo: -5, hi: 5 });
      assertClose(t.clamp(-1, 2), ref.map((x) => Math.min(Math.max(x, -1), 2)));
      assertClose(t.clamp(0), ref.map((x) => Math.max(x, 0)));
      assertClose(t.clamp(null, 0.5), ref.map((x) => Math.min(x, 0.5)));
      assertClose(t.clamp(), ref);
      assertClose(jl.clamp(t, -0.25, -0.25), ref.map(() => -0.25));
      assertClose(jl.tensor([NaN, 1]).clamp(0, 0.5), [NaN, 0.5]);
      const i = jl.tensor(new Int8Array([-100, 0, 100]));
      assertValues(i.clamp(-10, 10), [-10, 0, 10], 'int8');
      assertValues(i.clamp(-1000, 1000), [-100, 0, 100], 'int8');
      const f = i.clamp(-0.5, 0.5);
      assert.equal(f.dtype, 'float32');
      assertClose(f, [-0.5, 0, 0.5]);
      expectJouleError(() => t.clamp(2, 1), 'INVALID_ARGUMENT', /min <= max/);
      expectJouleError(() => t.clamp('a' as never, 1), 'INVALID_ARGUMENT', /numbers/);
    });

    itTidy('where broadcasts condition and both branches; scalars take the tensor dtype', () => {
      const rng = new Rng(22);
      const shapes: [number[], number[], number[]][] = [
        [[7], [7], [7]], [[33, 1], [1, 7], [7]], [[2, 3, 4], [4], []], [[0, 3], [3], [1, 3]], [[], [5], [5]],
      ];
      for (const [sc, sa, sb] of shapes) {
        const C = makeTensor(rng, sc, rng.pick(LAYOUTS), { lo: 0, hi: 2, dtype: 'uint8' });
        const A = makeTensor(rng, sa, rng.pick(LAYOUTS));
        const B = makeTensor(rng, sb, rng.pick(LAYOUTS));
        const out = jl.where(C.t, A.t, B.t);
        assertClose(out, refWhere(C.ref, A.ref, B.ref), { atol: 0, rtol: 0 }, `where [${sc}] [${sa}] [${sb}]`);
        assertClose(A.t.where(C.t, B.t), refWhere(C.ref, A.ref, B.ref), { atol: 0, rtol: 0 });
      }
      // A float condition counts non-zero (NaN included) as true.
      const c = jl.tensor([0, 2, -0.5, NaN]);
      assertClose(jl.where(c, jl.tensor([1, 1, 1, 1]), 0), [0, 1, 1, 1]);
      assertClose(jl.where(jl.tensor([1, 0], { dtype: 'uint8' }), 5, jl.tensor([7, 8])), [5, 8]);
      const wi = jl.where(jl.tensor([1, 0], { dtype: 'uint8' }), jl.tensor([1, 2], { dtype: 'int32' }), -1);
      assertValues(wi, [1, -1], 'int32');
      const wf = jl.where(jl.tensor([1, 0], { dtype: 'uint8' }), jl.tensor([1, 2], { dtype: 'int32' }), 0.5);
      assertValues(wf, [1, 0.5], 'float32');
      expectJouleError(() => jl.where(jl.zeros([2]), jl.zeros([3]), 0), 'SHAPE_MISMATCH', /broadcast/);
      expectJouleError(() => jl.where(1 as never, jl.zeros([3]), 0), 'INVALID_ARGUMENT', /Tensor/);
    });
  });

  describe('dtype promotion', () => {
    itTidy('follows the documented rules (NumPy-like, weak scalars as in PyTorch)', () => {
      const i32 = jl.tensor([1, 2, 3], { dtype: 'int32' });
      const i8 = jl.tensor([1, 2, 3], { dtype: 'int8' });
      const u8 = jl.tensor([1, 2, 3], { dtype: 'uint8' });
      const f32 = jl.tensor([0.5, 0.5, 0.5]);
      assertValues(i32.add(f32), [1.5, 2.5, 3.5], 'float32');
      assertValues(f32.mul(i8), [0.5, 1, 1.5], 'float32');
      assertValues(i32.add(2), [3, 4, 5], 'int32');
      assertValues(i8.mul(3), [3, 6, 9], 'int8');
      assertValues(u8.sub(1), [0, 1, 2], 'uint8');
      assertValues(i32.add(2.5), [3.5, 4.5, 5.5], 'float32');
      assertValues(i8.add(1e10), [1e10 + 1, 1e10 + 2, 1e10 + 3].map(Math.fround), 'float32');
      assertValues(i32.div(2), [0.5, 1, 1.5], 'float32');
      assertValues(i32.div(jl.tensor([2, 2, 2], { dtype: 'int32' })), [0.5, 1, 1.5], 'float32');
      assertValues(jl.tensor([1, -1, 0], { dtype: 'int32' }).div(0), [Infinity, -Infinity, NaN], 'float32');
      assertValues(i32.pow(2), [1, 4, 9], 'float32');
      assertValues(i8.add(i32), [2, 4, 6], 'int32');
      assertValues(u8.add(i8), [2, 4, 6], 'int32');
      assertValues(i32.eq(jl.tensor([1, 0, 3])), [1, 0, 1], 'uint8');
      assertValues(i32.maximum(2), [2, 2, 3], 'int32');
    });

    itTidy('integer arithmetic wraps on overflow like PyTorch', () => {
      const i8 = jl.tensor([127, -128, 100], { dtype: 'int8' });
      assertValues(i8.add(1), [-128, -127, 101], 'int8');
      assertValues(i8.sub(1), [126, 127, 99], 'int8');
      assertValues(i8.mul(2), [-2, 0, -56], 'int8');
      assertValues(i8.add(jl.tensor([1, 1, 100], { dtype: 'int8' })), [-128, -127, -56], 'int8');
      assertValues(i8.neg(), [-127, -128, -100], 'int8');
      const u8 = jl.tensor([255, 0], { dtype: 'uint8' });
      assertValues(u8.add(1), [0, 1], 'uint8');
      assertValues(u8.sub(1), [254, 255], 'uint8');
      const i32 = jl.tensor(new Int32Array([2147483647, -2147483648]));
      assertValues(i32.add(1), [-2147483648, -2147483647], 'int32');
      assertValues(i32.mul(i32), [1, 0], 'int32');
    });
  });

  describe('in-place variants', () => {
    itTidy('add_/sub_/mul_/div_/relu_ update the target and return it', () => {
      const rng = new Rng(31);
      const { t, ref } = makeTensor(rng, [7, 33], 'contiguous');
      const b = makeTensor(rng, [33], 'stepped', { lo: 0.5, hi: 2 });
      assert.equal(t.add_(b.t), t);
      let expected = refBinary(ref, b.ref, (x, y) => x + y);
      assertClose(t, expected);
      t.sub_(2);
      expected = expected.map((x) => x - 2);
      assertClose(t, expected);
      t.mul_(b.t.unsqueeze(0));
      expected = refBinary(expected, b.ref, (x, y) => x * y);
      assertClose(t, expected);
      t.div_(b.t);
      expected = refBinary(expected, b.ref, (x, y) => x / y);
      assertClose(t, expected);
      t.relu_();
      assertClose(t, expected.map((x) => Math.max(x, 0)));
      // Into a strided view.
      const base = jl.zeros([4, 6]);
      base.t().slice(0, 1, undefined, 2).add_(jl.arange(4, undefined, 1, { dtype: 'float32' }));
      assert.deepEqual(base.toArray(), [[0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 0, 1], [0, 2, 0, 2, 0, 2], [0, 3, 0, 3, 0, 3]]);
      const i = jl.tensor([1, 2], { dtype: 'int32' });
      i.add_(jl.tensor([1, 1], { dtype: 'int8' }));
      i.mul_(3);
      assertValues(i, [6, 9], 'int32');
    });

    itTidy('refuse a dtype change, a broadcast target and an expanded target', () => {
      const i = jl.tensor([1, 2], { dtype: 'int32' });
      expectJouleError(() => i.add_(0.5), 'DTYPE', /float32.*int32/);
      expectJouleError(() => i.add_(jl.tensor([0.5, 1])), 'DTYPE', /int32/);
      expectJouleError(() => i.div_(2), 'DTYPE', /float32/);
      expectJouleError(() => i.relu_().add_(jl.zeros([2])), 'DTYPE', /int32/);
      expectJouleError(() => jl.tensor(new Int8Array([1])).relu_().sub_(jl.zeros([1])), 'DTYPE', /int8/);
      const small = jl.zeros([3]);
      expectJouleError(() => small.add_(jl.zeros([2, 3])), 'SHAPE_MISMATCH', /target/);
      expectJouleError(() => small.add_(jl.zeros([4])), 'SHAPE_MISMATCH', /broadcast/);
      const e = jl.zeros([1, 3]).expand([2, 3]);
      expectJouleError(() => e.add_(1), 'INVALID_ARGUMENT', /expanded/);
      expectJouleError(() => e.mul_(jl.ones([2, 3])), 'INVALID_ARGUMENT', /expanded/);
      expectJouleError(() => e.relu_(), 'INVALID_ARGUMENT', /expanded/);
      expectJouleError(() => e.fill_(1), 'INVALID_ARGUMENT', /expanded/);
      expectJouleError(() => e.zero_(), 'INVALID_ARGUMENT', /expanded/);
      expectJouleError(() => i.fill_(NaN), 'INVALID_ARGUMENT', /NaN/);
      expectJouleError(() => small.fill_('1' as never), 'INVALID_ARGUMENT', /number/);
      // A leaf that requires grad cannot be changed in place outside noGrad.
      const w = jl.zeros([2], { requiresGrad: true });
      expectJouleError(() => w.add_(1), 'INVALID_ARGUMENT', /noGrad/);
      jl.noGrad(() => w.add_(1));
      assertValues(w, [1, 1]);
      // An expanded operand (not target) is fine.
      small.add_(jl.ones([1]).expand([3]));
      assertValues(small, [1, 1, 1]);
    });
  });
});
