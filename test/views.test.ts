import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertValues, expectJouleError, isContiguous, itTidy, LAYOUTS, makeTensor, numel, Ref, Rng, sharesStorage } from './helpers';

const seq = (shape: number[]) => {
  const t = jl.arange(numel(shape), undefined, 1, { dtype: 'float32' }).reshape(shape);
  return { t, ref: new Ref(shape, Float64Array.from({ length: numel(shape) }, (_, i) => i)) };
};

describe('views and shape', () => {
  describe('reshape / view / flatten', () => {
    itTidy('reshape of a contiguous tensor is a view, with -1 inferred', () => {
      const { t } = seq([2, 3, 4]);
      const r = t.reshape([4, -1]);
      assert.deepEqual(r.shape, [4, 6]);
      assert.ok(sharesStorage(r, t));
      assertValues(r, t.data());
      assert.deepEqual(t.reshape([-1]).shape, [24]);
      assert.deepEqual(t.reshape([2, -1, 3]).shape, [2, 4, 3]);
      assert.deepEqual(jl.zeros([0, 5]).reshape([-1, 5]).shape, [0, 5]);
      assert.deepEqual(jl.tensor(3).reshape([1, 1]).shape, [1, 1]);
      assert.deepEqual(jl.tensor([3]).reshape([]).shape, []);
      expectJouleError(() => t.reshape([5, -1]), 'SHAPE_MISMATCH', /\[2, 3, 4\]/);
      expectJouleError(() => t.reshape([-1, -1]), 'INVALID_ARGUMENT', /-1/);
      expectJouleError(() => t.reshape([7]), 'SHAPE_MISMATCH', /24 elements/);
      expectJouleError(() => t.reshape([-2, 12]), 'INVALID_ARGUMENT', /-1/);
      expectJouleError(() => jl.zeros([0, 5]).reshape([0, -1]), 'SHAPE_MISMATCH', /reshape/);
    });

    itTidy('reshape of a non-viewable layout copies, with the right values', () => {
      const rng = new Rng(11);
      for (const layout of LAYOUTS) {
        const { t, ref } = makeTensor(rng, [3, 4, 5], layout);
        const r = t.reshape([5, -1]);
        assert.deepEqual(r.shape, [5, 12]);
        assertValues(r, ref.data, 'float32');
        assertValues(t.flatten(), ref.data);
      }
      const { t } = seq([3, 4]);
      const tt = t.t();
      const c = tt.reshape([12]);
      assert.ok(!sharesStorage(c, t), 'a transposed tensor cannot be flattened without a copy');
      assertValues(c, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    });

    itTidy('view follows PyTorch: splitting and merging compatible dims of non-contiguous tensors', () => {
      const { t, ref } = seq([4, 6]);
      const tt = t.t(); // [6, 4], strides [1, 6]
      assertValues(tt.view([2, 3, 4]), ref.transpose(0, 1).data);
      assert.ok(sharesStorage(tt.view([2, 3, 4]), t));
      const s = t.slice(1, 0, 6, 2); // [4, 3], strides [6, 2]
      assertValues(s.view([2, 2, 3]), ref.slice(1, 0, 6, 2).data);
      assertValues(s.unsqueeze(1).view([4, 3]), ref.slice(1, 0, 6, 2).data);
      expectJouleError(() => tt.view([24]), 'SHAPE_MISMATCH', /without a copy/);
      assertValues(s.view([12]), ref.slice(1, 0, 6, 2).data, 'float32', [12]);
      expectJouleError(() => t.slice(1, 0, 4, 2).view([8]), 'SHAPE_MISMATCH', /reshape\(\)/);
      expectJouleError(() => t.view([5, 5]), 'SHAPE_MISMATCH', /\[4, 6\]/);
      assertValues(jl.zeros([2, 0]).t().view([0]), []);
    });

    itTidy('flatten merges a range of axes', () => {
      const { t } = seq([2, 3, 4, 5]);
      assert.deepEqual(t.flatten().shape, [120]);
      assert.deepEqual(t.flatten(1).shape, [2, 60]);
      assert.deepEqual(t.flatten(1, 2).shape, [2, 12, 5]);
      assert.deepEqual(t.flatten(-2, -1).shape, [2, 3, 20]);
      assert.deepEqual(jl.tensor(5).flatten().shape, [1]);
      expectJouleError(() => t.flatten(2, 1), 'INVALID_ARGUMENT', /after/);
      expectJouleError(() => t.flatten(4), 'INVALID_ARGUMENT', /out of range/);
    });
  });

  describe('squeeze / unsqueeze / transpose / permute', () => {
    itTidy('squeeze drops size-1 axes (all, or the ones named)', () => {
      const t = jl.zeros([1, 3, 1, 2, 1]);
      assert.deepEqual(t.squeeze().shape, [3, 2]);
      assert.deepEqual(t.squeeze(0).shape, [3, 1, 2, 1]);
      assert.deepEqual(t.squeeze(-1).shape, [1, 3, 1, 2]);
      assert.deepEqual(t.squeeze([0, 2]).shape, [3, 2, 1]);
      assert.deepEqual(t.squeeze(1).shape, [1, 3, 1, 2, 1], 'a named axis that is not size 1 stays');
      assert.deepEqual(jl.tensor(1).squeeze().shape, []);
      assert.deepEqual(jl.tensor(1).squeeze(0).shape, []);
      assert.deepEqual(jl.tensor(1).squeeze(-1).shape, []);
      expectJouleError(() => jl.tensor(1).squeeze(1), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => t.squeeze(5), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => t.squeeze(0.5), 'INVALID_ARGUMENT', /integer/);
    });

    itTidy('unsqueeze inserts an axis anywhere, negative counting from the end', () => {
      const { t, ref } = seq([3, 4]);
      assert.deepEqual(t.unsqueeze(0).shape, [1, 3, 4]);
      assert.deepEqual(t.unsqueeze(1).shape, [3, 1, 4]);
      assert.deepEqual(t.unsqueeze(2).shape, [3, 4, 1]);
      assert.deepEqual(t.unsqueeze(-1).shape, [3, 4, 1]);
      assert.deepEqual(t.unsqueeze(-3).shape, [1, 3, 4]);
      assert.deepEqual(jl.tensor(2).unsqueeze(0).shape, [1]);
      assertValues(t.t().unsqueeze(1).contiguous(), ref.transpose(0, 1).data);
      expectJouleError(() => t.unsqueeze(3), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => t.unsqueeze(-4), 'INVALID_ARGUMENT', /out of range/);
      let x = jl.zeros([1]);
      for (let i = 0; i < 15; i++) x = x.unsqueeze(0);
      assert.equal(x.ndim, 16);
      expectJouleError(() => x.unsqueeze(0), 'INVALID_ARGUMENT', /16/);
    });

    itTidy('transpose and permute move data as the reference does', () => {
      const { t, ref } = seq([2, 3, 4]);
      assertValues(t.transpose(0, 2), ref.transpose(0, 2));
      assertValues(t.transpose(-1, -3), ref.transpose(0, 2));
      assertValues(t.transpose(), ref.transpose(1, 2));
      assertValues(t.t(), ref.transpose(1, 2));
      assertValues(t.permute([2, 0, 1]), ref.permute([2, 0, 1]));
      assertValues(t.permute([-1, 0, -2]), ref.permute([2, 0, 1]));
      assert.ok(!isContiguous(t.permute([2, 0, 1])));
      assert.ok(isContiguous(t.permute([2, 0, 1]).contiguous()));
      // 0-d and 1-d: transpose with default axes is the identity.
      assert.deepEqual(jl.tensor(1).transpose().shape, []);
      assertValues(jl.tensor([1, 2]).t(), [1, 2]);
      expectJouleError(() => t.permute([0, 1]), 'INVALID_ARGUMENT', /3 axes/);
      expectJouleError(() => t.permute([0, 0, 1]), 'INVALID_ARGUMENT', /twice/);
      expectJouleError(() => t.permute([0, 1, 3]), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => t.transpose(0, 3), 'INVALID_ARGUMENT', /out of range/);
    });
  });

  describe('slice / narrow / select / expand', () => {
    itTidy('slice follows Python slice rules (negative and out-of-range bounds, steps)', () => {
      const { t, ref } = seq([7, 33]);
      const cases: [number, number, number | undefined, number][] = [
        [0, 0, undefined, 1], [0, 2, 5, 1], [0, -3, undefined, 1], [0, -100, 100, 1], [0, 5, 2, 1],
        [1, 1, -1, 3], [1, -10, -2, 4], [1, 0, 33, 32], [1, 0, 33, 100], [-1, 3, 3, 1], [1, 40, 50, 1],
      ];
      for (const [axis, start, end, step] of cases) {
        const s = t.slice(axis, start, end, step);
        const r = ref.slice(axis, start, end, step);
        assertValues(s, r);
        assert.ok(sharesStorage(s, t));
      }
      // Slices of slices.
      assertValues(t.slice(1, 1, undefined, 2).slice(1, -5, undefined, 3), ref.slice(1, 1, undefined, 2).slice(1, -5, undefined, 3));
      expectJouleError(() => t.slice(0, 0, 5, 0), 'INVALID_ARGUMENT', /step/);
      expectJouleError(() => t.slice(0, 0, 5, -1), 'INVALID_ARGUMENT', /step/);
      expectJouleError(() => t.slice(2, 0), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => jl.tensor(1).slice(0, 0), 'INVALID_ARGUMENT', /0-d/);
      expectJouleError(() => t.slice(0, 0.5), 'INVALID_ARGUMENT', /start/);
    });

    itTidy('narrow takes length elements from start', () => {
      const { t, ref } = seq([5, 6]);
      assertValues(t.narrow(1, 2, 3), ref.slice(1, 2, 5));
      assertValues(t.narrow(-2, 4, 1), ref.slice(0, 4, 5));
      assert.deepEqual(t.narrow(0, 5, 0).shape, [0, 6]);
      expectJouleError(() => t.narrow(0, 3, 3), 'INVALID_ARGUMENT', /exceeds/);
      expectJouleError(() => t.narrow(0, -1, 2), 'INVALID_ARGUMENT', /start/);
    });

    itTidy('select removes an axis, negative indices count from the end', () => {
      const { t, ref } = seq([3, 4, 5]);
      assertValues(t.select(0, 1), ref.select(0, 1));
      assertValues(t.select(1, -1), ref.select(1, 3));
      assertValues(t.select(-1, 2), ref.select(2, 2));
      assertValues(t.transpose(0, 2).select(0, 4), ref.transpose(0, 2).select(0, 4));
      assert.deepEqual(t.select(0, 0).select(0, 0).select(0, 0).shape, []);
      expectJouleError(() => t.select(0, 3), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => t.select(0, -4), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => jl.tensor(1).select(0, 0), 'INVALID_ARGUMENT', /0-d/);
    });

    itTidy('expand broadcasts size-1 and new leading dims without copying; -1 keeps a size', () => {
      const { t, ref } = seq([3, 1]);
      const e = t.expand([2, 3, 4]);
      assertValues(e, ref.expand([2, 3, 4]));
      assert.ok(sharesStorage(e, t));
      assertValues(t.expand([-1, 5]), ref.expand([3, 5]));
      assertValues(t.expand([2, -1, -1]), ref.expand([2, 3, 1]));
      assertValues(jl.tensor(2).expand([2, 2]), [2, 2, 2, 2]);
      assert.deepEqual(t.expand([0, 3, 2]).shape, [0, 3, 2]);
      assert.deepEqual(jl.broadcastTo(t, [3, 3]).shape, [3, 3]);
      expectJouleError(() => t.expand([4, 1]), 'SHAPE_MISMATCH', /size-1/);
      expectJouleError(() => t.expand([3]), 'SHAPE_MISMATCH', /fewer/);
      expectJouleError(() => t.expand([-1, 3, 1]), 'INVALID_ARGUMENT', /leading/);
    });
  });

  describe('storage sharing', () => {
    itTidy('writes through views (copy_, add_, fill_, zero_) change the base', () => {
      const base = jl.zeros([4, 5]);
      base.slice(0, 1, 3).copy_(jl.ones([2, 5]));
      assert.deepEqual(base.sum(1).toArray(), [0, 5, 5, 0]);
      base.select(1, 0).add_(10);
      assert.deepEqual(base.select(1, 0).toArray(), [10, 11, 11, 10]);
      base.t().select(0, 4).fill_(-1);
      assert.deepEqual(base.select(1, 4).toArray(), [-1, -1, -1, -1]);
      base.slice(1, 1, 4, 2).zero_();
      assert.deepEqual(base.toArray(), [
        [10, 0, 0, 0, -1], [11, 0, 1, 0, -1], [11, 0, 1, 0, -1], [10, 0, 0, 0, -1],
      ]);
      const r = base.reshape([20]);
      r.mul_(2);
      assert.equal(base.sum().item(), 80);
      // A view keeps the storage alive after the base is disposed.
      const v = base.select(0, 0);
      base.dispose();
      assert.deepEqual(v.toArray(), [20, 0, 0, 0, -2]);
    });

    itTidy('copy_ broadcasts and converts, and refuses an expanded target', () => {
      const dst = jl.zeros([2, 3], { dtype: 'int32' });
      dst.copy_(jl.tensor([1.7, -2.7, 3e10]));
      assert.deepEqual(dst.toArray(), [[1, -2, 2147483647], [1, -2, 2147483647]]);
      expectJouleError(() => dst.copy_(jl.zeros([3, 3])), 'SHAPE_MISMATCH', /expand/);
      const e = jl.zeros([1, 3]).expand([2, 3]);
      expectJouleError(() => e.copy_(jl.ones([2, 3])), 'INVALID_ARGUMENT', /expanded/);
    });

    itTidy('copy_ and add_ between overlapping views of one storage act as if the source were read first', () => {
      const { t } = seq([3, 3]);
      t.add_(t.t());
      assert.deepEqual(t.toArray(), [[0, 4, 8], [4, 8, 12], [8, 12, 16]]);
      const u = seq([3, 3]).t;
      u.copy_(u.t());
      assert.deepEqual(u.toArray(), [[0, 3, 6], [1, 4, 7], [2, 5, 8]]);
      const w = jl.arange(6, undefined, 1, { dtype: 'float32' });
      w.slice(0, 1).copy_(w.slice(0, 0, 5));
      assert.deepEqual(w.toArray(), [0, 0, 1, 2, 3, 4]);
    });

    itTidy('contiguous returns the tensor itself when already contiguous, else a compact copy', () => {
      const { t, ref } = seq([3, 4]);
      assert.ok(sharesStorage(t.contiguous(), t));
      const c = t.t().contiguous();
      assert.ok(!sharesStorage(c, t));
      assert.ok(isContiguous(c));
      assertValues(c, ref.transpose(0, 1));
    });

    itTidy('clone copies; astype converts; to("cpu") is the same tensor', () => {
      const { t } = seq([2, 3]);
      const c = t.clone();
      c.add_(1);
      assert.deepEqual(t.select(0, 0).toArray(), [0, 1, 2]);
      assert.ok(!sharesStorage(c, t));
      assert.equal(t.to('cpu'), t);
      assert.equal(t.astype('float32'), t);
      const f = jl.tensor([1.9, -1.9, 1e10, -1e10, NaN, 300.5, -0.5]);
      assertValues(f.astype('int32'), [1, -1, 2147483647, -2147483648, 0, 300, 0], 'int32');
      assertValues(f.astype('int8'), [1, -1, 127, -128, 0, 127, 0], 'int8');
      assertValues(f.astype('uint8'), [1, 0, 255, 0, 0, 255, 0], 'uint8');
      assertValues(jl.tensor([Infinity, -Infinity]).astype('int32'), [2147483647, -2147483648]);
      assertValues(jl.tensor(new Int32Array([300, -1, 128])).astype('int8'), [44, -1, -128], 'int8');
      assertValues(jl.tensor(new Int32Array([300, -1])).astype('uint8'), [44, 255], 'uint8');
      assertValues(jl.tensor(new Uint8Array([200])).astype('int32'), [200], 'int32');
      assertValues(jl.tensor(new Int32Array([16777217])).astype('float32'), [16777216], 'float32');
      // astype of a strided view.
      assertValues(t.t().astype('int8'), [0, 3, 1, 4, 2, 5], 'int8');
      expectJouleError(() => t.astype('float16' as never), 'DTYPE', /float32/);
    });
  });

  describe('concat / stack / split / chunk', () => {
    itTidy('concat joins along any axis, with mixed layouts and dtype promotion', () => {
      const rng = new Rng(3);
      const a = makeTensor(rng, [2, 3, 4], 'transposed');
      const b = makeTensor(rng, [2, 1, 4], 'stepped');
      const c = makeTensor(rng, [2, 0, 4]);
      const out = jl.concat([a.t, b.t, c.t], 1);
      assert.deepEqual(out.shape, [2, 4, 4]);
      const expected: number[] = [];
      for (let i = 0; i < 2; i++) {
        expected.push(...a.ref.select(0, i).data, ...b.ref.select(0, i).data);
      }
      assertValues(out, expected);
      assertValues(jl.concat([a.t, a.t], -1), (() => {
        const e: number[] = [];
        for (let i = 0; i < 6; i++) e.push(...a.ref.reshape([6, 4]).select(0, i).data, ...a.ref.reshape([6, 4]).select(0, i).data);
        return e;
      })());
      const mixed = jl.concat([jl.tensor([1], { dtype: 'int32' }), jl.tensor([2.5])]);
      assertValues(mixed, [1, 2.5], 'float32');
      assertValues(jl.concat([jl.tensor(new Int8Array([1])), jl.tensor(new Uint8Array([200]))]), [1, 200], 'int32');
      expectJouleError(() => jl.concat([jl.zeros([2, 3]), jl.zeros([3, 3])], 1), 'SHAPE_MISMATCH', /outside axis/);
      expectJouleError(() => jl.concat([jl.zeros([2, 3]), jl.zeros([3])]), 'SHAPE_MISMATCH', /dimensions/);
      expectJouleError(() => jl.concat([jl.tensor(1), jl.tensor(2)]), 'INVALID_ARGUMENT', /0-d/);
      expectJouleError(() => jl.concat([]), 'INVALID_ARGUMENT', /non-empty/);
      expectJouleError(() => jl.concat([jl.zeros([2])], 1), 'INVALID_ARGUMENT', /out of range/);
    });

    itTidy('stack adds an axis', () => {
      const a = jl.tensor([[1, 2], [3, 4]]);
      const b = jl.tensor([[5, 6], [7, 8]]);
      assert.deepEqual(jl.stack([a, b]).toArray(), [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]);
      assert.deepEqual(jl.stack([a, b], 1).toArray(), [[[1, 2], [5, 6]], [[3, 4], [7, 8]]]);
      assert.deepEqual(jl.stack([a, b], -1).toArray(), [[[1, 5], [2, 6]], [[3, 7], [4, 8]]]);
      assert.deepEqual(jl.stack([jl.tensor(1), jl.tensor(2)]).toArray(), [1, 2]);
      expectJouleError(() => jl.stack([a, jl.zeros([2, 3])]), 'SHAPE_MISMATCH', /differ/);
      expectJouleError(() => jl.stack([a, b], 3), 'INVALID_ARGUMENT', /out of range/);
    });

    itTidy('split and chunk give views that cover the axis', () => {
      const { t, ref } = seq([7, 3]);
      const parts = t.split(3);
      assert.deepEqual(parts.map((p) => p.shape[0]), [3, 3, 1]);
      assertValues(parts[2], ref.slice(0, 6));
      assert.ok(parts.every((p) => sharesStorage(p, t)));
      const sized = t.split([2, 0, 5]);
      assert.deepEqual(sized.map((p) => p.shape), [[2, 3], [0, 3], [5, 3]]);
      assertValues(sized[2], ref.slice(0, 2));
      const cols = t.split(2, -1);
      assert.deepEqual(cols.map((p) => p.shape), [[7, 2], [7, 1]]);
      assertValues(cols[1], ref.slice(1, 2));
      assert.deepEqual(t.chunk(3).map((p) => p.shape[0]), [3, 3, 1]);
      assert.deepEqual(t.chunk(7).map((p) => p.shape[0]), [1, 1, 1, 1, 1, 1, 1]);
      assert.deepEqual(t.chunk(10).map((p) => p.shape[0]), [1, 1, 1, 1, 1, 1, 1]);
      assert.deepEqual(t.chunk(2, 1).map((p) => p.shape[1]), [2, 1]);
      assert.deepEqual(jl.concat(t.split(2)).toArray(), t.toArray());
      expectJouleError(() => t.split([2, 2]), 'SHAPE_MISMATCH', /add up/);
      expectJouleError(() => t.split(0), 'INVALID_ARGUMENT', /size/);
      expectJouleError(() => t.chunk(0), 'INVALID_ARGUMENT', /chunks/);
      expectJouleError(() => t.split('a' as never), 'INVALID_ARGUMENT', /size/);
    });
  });
});
