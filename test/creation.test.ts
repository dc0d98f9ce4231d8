import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertClose, assertValues, expectJouleError, itTidy, numel, Rng } from './helpers';

describe('creation', () => {
  describe('tensor()', () => {
    itTidy('infers shape and float32 from nested arrays', () => {
      const t = jl.tensor([[1, 2, 3], [4, 5, 6]]);
      assert.deepEqual(t.shape, [2, 3]);
      assert.equal(t.dtype, 'float32');
      assert.equal(t.device, 'cpu');
      assert.equal(t.ndim, 2);
      assert.equal(t.size, 6);
      assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
      assertValues(t, [1, 2, 3, 4, 5, 6]);
    });

    itTidy('makes 0-d tensors from numbers and booleans', () => {
      const s = jl.tensor(3.5);
      assert.deepEqual(s.shape, []);
      assert.equal(s.size, 1);
      assert.equal(s.item(), 3.5);
      assert.equal(s.toArray(), 3.5);
      const b = jl.tensor(true);
      assert.equal(b.item(), 1);
      assert.deepEqual(jl.tensor([true, false, true], { dtype: 'uint8' }).toArray(), [1, 0, 1]);
    });

    itTidy('makes empty tensors from empty arrays', () => {
      const e = jl.tensor([]);
      assert.deepEqual(e.shape, [0]);
      assert.equal(e.size, 0);
      assert.deepEqual(e.toArray(), []);
      const e2 = jl.tensor([[], []]);
      assert.deepEqual(e2.shape, [2, 0]);
      assert.deepEqual(e2.toArray(), [[], []]);
    });

    itTidy('rounds to float32', () => {
      const t = jl.tensor([0.1, 1e-50, 1e40, -1e40, NaN, Infinity]);
      const d = t.data();
      assert.equal(d[0], Math.fround(0.1));
      assert.equal(d[1], 0);
      assert.equal(d[2], Infinity);
      assert.equal(d[3], -Infinity);
      assert.ok(Number.isNaN(d[4]));
      assert.equal(d[5], Infinity);
    });

    itTidy('keeps the dtype of a TypedArray and honours shape', () => {
      const i = jl.tensor(new Int32Array([1, -2, 3, 4, 5, 6]), { shape: [3, 2] });
      assert.equal(i.dtype, 'int32');
      assert.deepEqual(i.toArray(), [[1, -2], [3, 4], [5, 6]]);
      assert.equal(jl.tensor(new Int8Array([-128, 127])).dtype, 'int8');
      assert.equal(jl.tensor(new Uint8Array([0, 255])).dtype, 'uint8');
      assert.equal(jl.tensor(new Float32Array([1.5])).dtype, 'float32');
      // A subarray view: only its own elements count.
      const buf = new Float32Array([9, 1, 2, 3, 9]);
      assertValues(jl.tensor(buf.subarray(1, 4)), [1, 2, 3]);
    });

    itTidy('converts nested numbers to integer dtypes: truncation toward zero and saturation', () => {
      assertValues(jl.tensor([1.9, -1.9, 0.5, -0.5], { dtype: 'int32' }), [1, -1, 0, 0], 'int32');
      assertValues(jl.tensor([200, -200, 127.9, -128.9, 3.7], { dtype: 'int8' }), [127, -128, 127, -128, 3], 'int8');
      assertValues(jl.tensor([300, -5, 255.5, 1.2], { dtype: 'uint8' }), [255, 0, 255, 1], 'uint8');
      assertValues(jl.tensor([3e9, -3e9], { dtype: 'int32' }), [2147483647, -2147483648], 'int32');
      // The same rule as astype from float32.
      const f = jl.tensor([200, -200, 3.7]);
      assertValues(f.astype('int8'), jl.tensor([200, -200, 3.7], { dtype: 'int8' }).data(), 'int8');
    });

    itTidy('converts TypedArrays to another dtype with the same rules as astype', () => {
      const f = new Float32Array([1.5, -2.5, 1e10, -1e10, 300]);
      assertValues(jl.tensor(f, { dtype: 'int32' }), [1, -2, 2147483647, -2147483648, 300], 'int32');
      assertValues(jl.tensor(f, { dtype: 'int8' }), [1, -2, 127, -128, 127], 'int8');
      assertValues(jl.tensor(f, { dtype: 'uint8' }), [1, 0, 255, 0, 255], 'uint8');
      // Integer to narrower integer wraps (two's complement), as astype does.
      const i = new Int32Array([300, -129, 5]);
      assertValues(jl.tensor(i, { dtype: 'int8' }), [44, 127, 5], 'int8');
      assertValues(jl.tensor(i, { dtype: 'float32' }), [300, -129, 5], 'float32');
      assertValues(jl.tensor(new Uint8Array([255, 0]), { dtype: 'int8' }), [-1, 0], 'int8');
    });

    itTidy('refuses non-finite values for integer dtypes and ragged or non-numeric input', () => {
      expectJouleError(() => jl.tensor([1, NaN], { dtype: 'int32' }), 'INVALID_ARGUMENT', /NaN.*int32/);
      expectJouleError(() => jl.tensor([Infinity], { dtype: 'int8' }), 'INVALID_ARGUMENT', /Infinity/);
      expectJouleError(() => jl.tensor([[1, 2], [3]]), 'SHAPE_MISMATCH', /ragged/);
      expectJouleError(() => jl.tensor([[1, 2], 3] as never), 'SHAPE_MISMATCH', /ragged/);
      expectJouleError(() => jl.tensor([1, 'a'] as never), 'INVALID_ARGUMENT', /number/);
      expectJouleError(() => jl.tensor('abc' as never), 'INVALID_ARGUMENT', /nested arrays/);
      expectJouleError(() => jl.tensor(new Float64Array(2) as never), 'DTYPE', /Float64Array/);
      expectJouleError(() => jl.tensor([1, 2], { dtype: 'float64' as never }), 'DTYPE', /float32/);
      expectJouleError(() => jl.tensor([1, 2], { shape: [3] }), 'SHAPE_MISMATCH', /bytes/);
      expectJouleError(() => jl.tensor([1, 2], { bogus: 1 } as never), 'INVALID_ARGUMENT', /bogus/);
    });

    itTidy('reshapes nested data with an explicit shape', () => {
      const t = jl.tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] });
      assert.deepEqual(t.toArray(), [[1, 2], [3, 4], [5, 6]]);
    });
  });

  describe('full / zeros / ones / empty / *Like', () => {
    itTidy('fills at awkward shapes and dtypes', () => {
      for (const shape of [[], [0], [1], [7], [33, 1], [2, 0, 3], [1, 7, 33]]) {
        for (const dtype of ['float32', 'int32', 'int8', 'uint8'] as const) {
          const z = jl.zeros(shape, { dtype });
          assert.deepEqual(z.shape, shape);
          assert.equal(z.dtype, dtype);
          assertValues(z, new Array(numel(shape)).fill(0));
          assertValues(jl.ones(shape, { dtype }), new Array(numel(shape)).fill(1));
          assertValues(jl.full(shape, 5, { dtype }), new Array(numel(shape)).fill(5));
          assertValues(jl.empty(shape, { dtype }), new Array(numel(shape)).fill(0));
        }
      }
    });

    itTidy('full converts the value by the dtype rules', () => {
      assertValues(jl.full([2], 1000, { dtype: 'int8' }), [127, 127]);
      assertValues(jl.full([2], -2.7, { dtype: 'int32' }), [-2, -2]);
      assertValues(jl.full([1], -1, { dtype: 'uint8' }), [0]);
      assertClose(jl.full([2], 0.1), [0.1, 0.1]);
      assert.ok(Number.isNaN(jl.full([1], NaN).item()));
      assert.equal(jl.full([1], -Infinity).item(), -Infinity);
      expectJouleError(() => jl.full([1], NaN, { dtype: 'int32' }), 'INVALID_ARGUMENT', /NaN/);
      expectJouleError(() => jl.full([1], '1' as never), 'INVALID_ARGUMENT', /number/);
    });

    itTidy('zerosLike/onesLike/fullLike copy shape, dtype and device', () => {
      const a = jl.tensor(new Int8Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
      const z = jl.zerosLike(a);
      assert.deepEqual(z.shape, [2, 3]);
      assert.equal(z.dtype, 'int8');
      assertValues(jl.onesLike(a), [1, 1, 1, 1, 1, 1], 'int8');
      assertValues(jl.fullLike(a, 7, { dtype: 'float32' }), [7, 7, 7, 7, 7, 7], 'float32');
    });
  });

  describe('arange / linspace / eye', () => {
    itTidy('arange counts like Python range, in int32 for integer arguments', () => {
      assertValues(jl.arange(5), [0, 1, 2, 3, 4], 'int32', [5]);
      assertValues(jl.arange(2, 7), [2, 3, 4, 5, 6], 'int32');
      assertValues(jl.arange(10, 0, -3), [10, 7, 4, 1], 'int32');
      assertValues(jl.arange(0), [], 'int32', [0]);
      assertValues(jl.arange(5, 2), [], 'int32', [0]);
      assertValues(jl.arange(3, undefined, 1, { dtype: 'float32' }), [0, 1, 2], 'float32');
      const f = jl.arange(0, 1, 0.25);
      assert.equal(f.dtype, 'float32');
      assertClose(f, [0, 0.25, 0.5, 0.75]);
      assertClose(jl.arange(-1, 1, 0.5), [-1, -0.5, 0, 0.5]);
      // Exclusive end with fractional steps: 0, 0.1, ..., 0.9 (10 values).
      assert.equal(jl.arange(0, 1, 0.1).size, 10);
      expectJouleError(() => jl.arange(0, 5, 0), 'INVALID_ARGUMENT', /step/);
      expectJouleError(() => jl.arange(NaN), 'INVALID_ARGUMENT', /finite/);
      expectJouleError(() => jl.arange(0, Infinity), 'INVALID_ARGUMENT', /finite/);
      expectJouleError(() => jl.arange(0, 1e300, 1e-300), 'INVALID_ARGUMENT', /too many/);
    });

    itTidy('linspace includes both ends and is symmetric', () => {
      assertClose(jl.linspace(0, 1, 5), [0, 0.25, 0.5, 0.75, 1]);
      assertValues(jl.linspace(-3, 3, 1), [-3]);
      assertValues(jl.linspace(0, 1, 0), [], 'float32', [0]);
      const l = jl.linspace(-1, 2, 257);
      const d = l.data();
      assert.equal(d[0], -1);
      assert.equal(d[256], 2);
      for (let i = 0; i < 257; i++) assert.ok(Math.abs(d[i] - (-1 + (3 * i) / 256)) < 1e-6);
      assertValues(jl.linspace(0, 10, 6, { dtype: 'int32' }), [0, 2, 4, 6, 8, 10], 'int32');
      expectJouleError(() => jl.linspace(0, 1, -1), 'INVALID_ARGUMENT', /steps/);
      expectJouleError(() => jl.linspace(0, 1, 2.5), 'INVALID_ARGUMENT', /steps/);
      expectJouleError(() => jl.linspace(NaN, 1, 3), 'INVALID_ARGUMENT', /start/);
    });

    itTidy('eye makes square and rectangular identities', () => {
      assert.deepEqual(jl.eye(3).toArray(), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
      assert.deepEqual(jl.eye(2, 3).toArray(), [[1, 0, 0], [0, 1, 0]]);
      assert.deepEqual(jl.eye(3, 1, { dtype: 'int8' }).toArray(), [[1], [0], [0]]);
      assert.deepEqual(jl.eye(0).shape, [0, 0]);
      assert.deepEqual(jl.eye(2, 0).shape, [2, 0]);
      const big = jl.eye(33).sum();
      assert.equal(big.item(), 33);
      expectJouleError(() => jl.eye(-1), 'INVALID_ARGUMENT', /rows/);
      expectJouleError(() => jl.eye(2, 1.5), 'INVALID_ARGUMENT', /cols/);
    });
  });

  describe('random', () => {
    itTidy('rand is uniform in [0, 1) with the right moments', () => {
      jl.manualSeed(1);
      const n = 100_000;
      const d = jl.rand([n]).data();
      let sum = 0;
      let sq = 0;
      let min = Infinity;
      let max = -Infinity;
      for (const v of d) {
        sum += v;
        sq += v * v;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const mean = sum / n;
      const variance = sq / n - mean * mean;
      assert.ok(min >= 0 && max < 1, `range [${min}, ${max}]`);
      // 6 standard errors: mean sd = sqrt(1/12/n) ≈ 9e-4.
      assert.ok(Math.abs(mean - 0.5) < 6 * Math.sqrt(1 / 12 / n), `mean ${mean}`);
      assert.ok(Math.abs(variance - 1 / 12) < 0.002, `variance ${variance}`);
      // Each tenth of the interval gets about a tenth of the values.
      const bins = new Array(10).fill(0);
      for (const v of d) bins[Math.floor(v * 10)]++;
      for (const b of bins) assert.ok(Math.abs(b - n / 10) < 6 * Math.sqrt(n * 0.09), `bins ${bins}`);
    });

    itTidy('randn is standard normal', () => {
      jl.manualSeed(2);
      const n = 100_000;
      const d = jl.randn([100, 1000]).data();
      let sum = 0;
      let sq = 0;
      let within1 = 0;
      for (const v of d) {
        assert.ok(Number.isFinite(v));
        sum += v;
        sq += v * v;
        if (Math.abs(v) < 1) within1++;
      }
      const mean = sum / n;
      const variance = sq / n - mean * mean;
      assert.ok(Math.abs(mean) < 6 / Math.sqrt(n), `mean ${mean}`);
      assert.ok(Math.abs(variance - 1) < 6 * Math.sqrt(2 / n), `variance ${variance}`);
      const p = within1 / n;
      assert.ok(Math.abs(p - 0.682689) < 6 * Math.sqrt(0.22 / n), `P(|x|<1) = ${p}`);
    });

    itTidy('randint covers [low, high) evenly, including negative bounds', () => {
      jl.manualSeed(3);
      const t = jl.randint(-3, 4, [70_000]);
      assert.equal(t.dtype, 'int32');
      const counts = new Map<number, number>();
      for (const v of t.data()) counts.set(v, (counts.get(v) ?? 0) + 1);
      assert.deepEqual([...counts.keys()].sort((a, b) => a - b), [-3, -2, -1, 0, 1, 2, 3]);
      for (const c of counts.values()) assert.ok(Math.abs(c - 10_000) < 6 * Math.sqrt(10_000), `counts ${[...counts]}`);
      assertValues(jl.randint(5, 6, [4]), [5, 5, 5, 5]);
      const wide = jl.randint(-2147483648, 2147483647, [1000]).data();
      assert.ok(wide.some((v) => v < -1e9) && wide.some((v) => v > 1e9));
      expectJouleError(() => jl.randint(3, 3, [2]), 'INVALID_ARGUMENT', /low < high/);
      expectJouleError(() => jl.randint(0, 2 ** 40, [2]), 'INVALID_ARGUMENT', /int32/);
      expectJouleError(() => jl.randint(0.5, 3, [2]), 'INVALID_ARGUMENT', /low/);
    });

    itTidy('manualSeed repeats the same numbers', () => {
      jl.manualSeed(42);
      const a = jl.rand([33]).data();
      const b = jl.randn([7]).data();
      const c = jl.randint(0, 100, [5]).data();
      jl.manualSeed(42);
      assert.deepEqual(jl.rand([33]).data(), a);
      assert.deepEqual(jl.randn([7]).data(), b);
      assert.deepEqual(jl.randint(0, 100, [5]).data(), c);
      jl.manualSeed(43);
      assert.notDeepEqual(jl.rand([33]).data(), a);
      expectJouleError(() => jl.manualSeed(-1), 'INVALID_ARGUMENT', /seed/);
      expectJouleError(() => jl.manualSeed(1.5), 'INVALID_ARGUMENT', /seed/);
    });

    itTidy('getRngState / setRngState replay a stream', () => {
      jl.manualSeed(7);
      jl.rand([5]);
      const state = jl.getRngState();
      assert.equal(typeof state.seed, 'string');
      assert.equal(typeof state.offset, 'string');
      const x = jl.randn([257]).data();
      const y = jl.rand([3, 3]).data();
      jl.setRngState(state);
      assert.deepEqual(jl.randn([257]).data(), x);
      assert.deepEqual(jl.rand([3, 3]).data(), y);
      // Large offsets (beyond 2^53) round-trip as strings.
      jl.setRngState({ seed: '18446744073709551615', offset: '9007199254740993' });
      assert.deepEqual(jl.getRngState(), { seed: '18446744073709551615', offset: '9007199254740993' });
      expectJouleError(() => jl.setRngState({ seed: '-1', offset: '0' }), 'INVALID_ARGUMENT', /decimal/);
      expectJouleError(() => jl.setRngState({ seed: '99999999999999999999', offset: '0' }), 'INVALID_ARGUMENT', /range/);
      expectJouleError(() => jl.setRngState(null as never), 'INVALID_ARGUMENT', /options/);
      jl.manualSeed(0);
    });

    itTidy('random tensors at empty and 0-d shapes, and dtype checks', () => {
      assert.deepEqual(jl.rand([0, 3]).shape, [0, 3]);
      assert.deepEqual(jl.randn([]).shape, []);
      expectJouleError(() => jl.rand([2], { dtype: 'int32' }), 'DTYPE', /float32/);
      expectJouleError(() => jl.randn([-1]), 'INVALID_ARGUMENT', /non-negative/);
    });

    itTidy('requiresGrad option marks a float32 leaf', () => {
      const w = jl.randn([2, 2], { requiresGrad: true });
      assert.equal(w.requiresGrad, true);
      assert.equal(w.isLeaf, true);
      expectJouleError(() => jl.zeros([2], { dtype: 'int32', requiresGrad: true }), 'DTYPE', /float32/);
    });
  });

  describe('reading values back', () => {
    itTidy('item, toArray and data on every dtype', () => {
      const rng = new Rng(5);
      for (const dtype of ['float32', 'int32', 'int8', 'uint8'] as const) {
        const vals = Array.from({ length: 6 }, () => rng.int(0, 100));
        const t = jl.tensor(vals, { dtype, shape: [2, 3] });
        const d = t.data();
        assert.equal(d.constructor.name, { float32: 'Float32Array', int32: 'Int32Array', int8: 'Int8Array', uint8: 'Uint8Array' }[dtype]);
        assert.deepEqual(Array.from(d), vals);
        assert.deepEqual(t.toArray(), [vals.slice(0, 3), vals.slice(3)]);
        assert.equal(t.select(0, 1).select(0, 2).item(), vals[5]);
      }
      expectJouleError(() => jl.zeros([2]).item(), 'SHAPE_MISMATCH', /one element/);
      expectJouleError(() => jl.zeros([0]).item(), 'SHAPE_MISMATCH', /one element/);
      assert.equal(jl.zeros([1, 1, 1]).item(), 0);
    });

    itTidy('data() returns a copy', () => {
      const t = jl.tensor([1, 2, 3]);
      const d = t.data();
      d[0] = 100;
      assert.equal(t.data()[0], 1);
    });

    itTidy('toString is readable and elides large tensors', () => {
      const s = jl.tensor([[1, 2.5], [-3, 4]]).toString();
      assert.match(s, /shape=\[2, 2\]/);
      assert.match(s, /dtype=float32/);
      assert.match(s, /device=cpu/);
      assert.match(s, /2\.5/);
      assert.match(s, /-3/);
      assert.match(jl.tensor(7).toString(), /7/);
      assert.match(jl.tensor([1, 2], { dtype: 'int32' }).toString(), /\[1, 2\]/);
      const big = jl.arange(100_000).reshape([100, 1000]).toString();
      assert.ok(big.length < 2000, `toString of 100000 elements is ${big.length} characters long`);
      assert.match(big, /\.\.\./);
      assert.match(big, /99999/);
      assert.match(big, /^Tensor\(shape=\[100, 1000\]/);
      assert.match(jl.zeros([0, 3]).toString(), /shape=\[0, 3\]/);
      const t = jl.zeros([2]);
      t.dispose();
      assert.match(t.toString(), /disposed/);
    });
  });
});
