import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { native } from '../lib/native';
import { assertClose, assertValues, contiguousStrides, expectJouleError, itTidy, LAYOUTS, makeTensor, numel, Ref, Rng } from './helpers';

function unravel(i: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}
const offsetOf = (idx: number[], shape: number[]) => idx.reduce((o, v, d) => o + v * contiguousStrides(shape)[d], 0);

function refIndexSelect(a: Ref, axis: number, index: number[]): Ref {
  const ax = axis < 0 ? axis + a.ndim : axis;
  const shape = a.shape.slice();
  shape[ax] = index.length;
  const out = new Float64Array(numel(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    const k = index[idx[ax]];
    idx[ax] = k < 0 ? k + a.shape[ax] : k;
    out[i] = a.data[offsetOf(idx, a.shape)];
  }
  return new Ref(shape, out);
}

function refGather(a: Ref, axis: number, index: Ref): Ref {
  const ax = axis < 0 ? axis + a.ndim : axis;
  const out = new Float64Array(index.size);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, index.shape);
    const k = index.data[i];
    idx[ax] = k < 0 ? k + a.shape[ax] : k;
    out[i] = a.data[offsetOf(idx, a.shape)];
  }
  return new Ref(index.shape.slice(), out);
}

function refScatterAdd(a: Ref, axis: number, index: Ref, src: Ref): Ref {
  const ax = axis < 0 ? axis + a.ndim : axis;
  const out = Float64Array.from(a.data);
  for (let i = 0; i < index.size; i++) {
    const idx = unravel(i, index.shape);
    const s = src.data[offsetOf(idx, src.shape)];
    const k = index.data[i];
    idx[ax] = k < 0 ? k + a.shape[ax] : k;
    out[offsetOf(idx, a.shape)] += s;
  }
  return new Ref(a.shape.slice(), out);
}

const idx = (values: number[], shape?: number[]) => jl.tensor(Int32Array.from(values), { shape: shape ?? [values.length] });

describe('indexing', () => {
  itTidy('indexSelect along every axis, with negative and repeated indices, on views', () => {
    const rng = new Rng(1);
    for (const layout of LAYOUTS) {
      const shape = [7, 5, 33];
      const { t, ref } = makeTensor(rng, shape, layout);
      for (const axis of [0, 1, 2, -1, -3]) {
        const n = shape[axis < 0 ? axis + 3 : axis];
        const index = Array.from({ length: rng.int(0, 9) }, () => rng.int(-n, n));
        const out = t.indexSelect(axis, idx(index));
        assertValues(out, refIndexSelect(ref, axis, index), 'float32');
        assert.deepEqual(jl.indexSelect(t, axis, idx(index)).data(), out.data());
      }
    }
    // A 0-d index selects one entry and keeps the axis (size 1).
    assert.deepEqual(jl.tensor([[1, 2], [3, 4]]).indexSelect(0, jl.tensor(1, { dtype: 'int32' })).toArray(), [[3, 4]]);
    // Integer inputs keep their dtype; a strided index works.
    const i8 = jl.tensor(new Int8Array([10, 20, 30, 40]));
    assertValues(i8.indexSelect(0, idx([3, 2, 1, 0, 5, 5]).slice(0, 0, 4, 2)), [40, 20], 'int8');
  });

  itTidy('indexSelect errors: out of range, dtype, rank', () => {
    const t = jl.zeros([3, 4]);
    expectJouleError(() => t.indexSelect(0, idx([3])), 'INVALID_ARGUMENT', /index 3 is out of range.*size 3/);
    expectJouleError(() => t.indexSelect(1, idx([-5])), 'INVALID_ARGUMENT', /-5/);
    expectJouleError(() => t.indexSelect(2, idx([0])), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => t.indexSelect(0, jl.tensor([0])), 'DTYPE', /int32/);
    expectJouleError(() => t.indexSelect(0, idx([0, 1], [1, 2])), 'SHAPE_MISMATCH', /1-D/);
    expectJouleError(() => jl.tensor(1).indexSelect(0, idx([0])), 'INVALID_ARGUMENT', /0-d/);
    expectJouleError(() => t.indexSelect(0, [0] as never), 'INVALID_ARGUMENT', /Tensor/);
  });

  itTidy('indexAdd (indexSelect\'s gradient) adds slices at repeated and negative indices, on views', () => {
    const rng = new Rng(4);
    for (const layout of LAYOUTS) {
      const shape = [6, 5, 17];
      const { t, ref } = makeTensor(rng, shape, layout);
      for (const axis of [0, 1, 2, -1]) {
        const ax = axis < 0 ? axis + 3 : axis;
        const n = shape[ax];
        const index = Array.from({ length: rng.int(0, 12) }, () => rng.int(-n, n));
        const sshape = shape.map((d, i) => (i === ax ? index.length : d));
        const S = makeTensor(rng, sshape, layout);
        const out = new jl.Tensor(native.indexAdd(t.handle, axis, idx(index).handle, S.t.handle));
        // The same sum through scatterAdd with the index spread over src's shape.
        const spread = new Float64Array(numel(sshape));
        for (let i = 0; i < spread.length; i++) {
          let rem = i;
          let c = 0;
          for (let d = 2; d >= 0; d--) {
            if (d === ax) c = rem % sshape[d];
            rem = Math.floor(rem / sshape[d]);
          }
          spread[i] = index[c] < 0 ? index[c] + n : index[c];
        }
        assertClose(out, refScatterAdd(ref, ax, new Ref(sshape, spread), S.ref), { rtol: 1e-6, atol: 1e-6 });
        out.dispose();
      }
    }
    const ints = jl.tensor(Int32Array.from([1, 2, 3]));
    const summed = new jl.Tensor(native.indexAdd(ints.handle, 0, idx([2, 2, 0]).handle, jl.tensor(Int32Array.from([10, 20, 5])).handle));
    assert.deepEqual(Array.from(summed.data()), [6, 2, 33]);
    summed.dispose();
    const z = jl.zeros([3, 4]);
    expectJouleError(() => native.indexAdd(z.handle, 0, idx([3]).handle, jl.zeros([1, 4]).handle), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => native.indexAdd(z.handle, 0, idx([0, 1]).handle, jl.zeros([1, 4]).handle), 'SHAPE_MISMATCH', /expected src of shape \[2, 4\]/);
    expectJouleError(() => native.indexAdd(z.handle, 1, jl.zeros([1]).handle, jl.zeros([3, 1]).handle), 'DTYPE', /int32/);
  });

  itTidy('gather along every axis with smaller index shapes and negative indices', () => {
    const rng = new Rng(2);
    for (const layout of LAYOUTS) {
      const shape = [7, 5, 6];
      const { t, ref } = makeTensor(rng, shape, layout);
      for (const axis of [0, 1, 2, -2]) {
        const ax = axis < 0 ? axis + 3 : axis;
        const ishape = shape.map((d, i) => (i === ax ? rng.int(1, 9) : rng.int(1, d + 1)));
        const ivals = Array.from({ length: numel(ishape) }, () => rng.int(-shape[ax], shape[ax]));
        const index = new Ref(ishape, Float64Array.from(ivals));
        const it = idx(ivals, ishape);
        const out = t.gather(axis, rng.bool() ? it : it.t().contiguous().t());
        assertValues(out, refGather(ref, axis, index), 'float32');
      }
    }
    assert.deepEqual(jl.tensor([[1, 2], [3, 4]]).gather(1, idx([0, 0, 1, 0], [2, 2])).toArray(), [[1, 1], [4, 3]]);
    assert.deepEqual(jl.zeros([3, 3]).gather(0, idx([], [0, 3])).shape, [0, 3]);
  });

  itTidy('gather errors', () => {
    const t = jl.zeros([3, 4]);
    expectJouleError(() => t.gather(0, idx([3, 0], [1, 2])), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => t.gather(1, idx([0, -5], [1, 2])), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => t.gather(0, idx([0, 1])), 'SHAPE_MISMATCH', /dimensions/);
    expectJouleError(() => t.gather(0, idx([0, 0, 0, 0, 0], [1, 5])), 'SHAPE_MISMATCH', /exceeds/);
    expectJouleError(() => t.gather(0, jl.zeros([1, 1], { dtype: 'int8' })), 'DTYPE', /int32/);
  });

  itTidy('scatterAdd accumulates duplicates, is out of place, and matches the reference', () => {
    const rng = new Rng(3);
    for (const layout of LAYOUTS) {
      const shape = [6, 5, 7];
      const { t, ref } = makeTensor(rng, shape, layout);
      for (const axis of [0, 2, -2]) {
        const ax = axis < 0 ? axis + 3 : axis;
        const ishape = shape.map((d, i) => (i === ax ? rng.int(1, 12) : rng.int(1, d + 1)));
        const sshape = ishape.map((d) => d + rng.int(0, 2));
        const ivals = Array.from({ length: numel(ishape) }, () => rng.int(-shape[ax], shape[ax]));
        const S = makeTensor(rng, sshape, rng.pick(LAYOUTS));
        const before = t.data();
        const out = t.scatterAdd(axis, idx(ivals, ishape), S.t);
        assertClose(out, refScatterAdd(ref, axis, new Ref(ishape, Float64Array.from(ivals)), S.ref), { rtol: 1e-6, atol: 1e-6 });
        assert.deepEqual(t.data(), before, 'scatterAdd must not modify its input');
      }
    }
    const dup = jl.zeros([3]).scatterAdd(0, idx([0, 2, 0, 0, -1]), jl.tensor([1, 2, 3, 4, 5]));
    assert.deepEqual(dup.toArray(), [8, 0, 7]);
    const counts = jl.zeros([4], { dtype: 'int32' }).scatterAdd(0, idx([1, 1, 3]), jl.ones([3], { dtype: 'int32' }));
    assertValues(counts, [0, 2, 0, 1], 'int32');
    // src is converted to the input's dtype.
    assertValues(jl.zeros([2], { dtype: 'int32' }).scatterAdd(0, idx([0, 0]), jl.tensor([1.7, 1.7])), [2, 0], 'int32');
  });

  itTidy('scatterAdd errors', () => {
    const t = jl.zeros([3, 4]);
    expectJouleError(() => t.scatterAdd(0, idx([3], [1, 1]), jl.ones([1, 1])), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => t.scatterAdd(0, idx([0, 0], [1, 2]), jl.ones([1, 1])), 'SHAPE_MISMATCH', /fit/);
    expectJouleError(() => t.scatterAdd(0, idx([0]), jl.ones([1])), 'SHAPE_MISMATCH', /dimensions/);
    expectJouleError(() => t.scatterAdd(0, jl.zeros([1, 1]), jl.ones([1, 1])), 'DTYPE', /int32/);
    expectJouleError(() => t.scatterAdd(0, idx([0], [1, 1]), null as never), 'INVALID_ARGUMENT', /Tensor/);
  });
});
