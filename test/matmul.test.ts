import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertClose, assertValues, expectJouleError, itTidy, Layout, makeTensor, refMatmul, Rng } from './helpers';

// Tolerance for float32 products of K terms of size ~1: relative error grows like sqrt(K)·eps.
const tolFor = (k: number) => ({ rtol: 1e-5, atol: 2e-6 * Math.max(1, Math.sqrt(k)) * 4 });

function check(rng: Rng, sa: number[], sb: number[], la: Layout = 'contiguous', lb: Layout = 'contiguous'): void {
  const A = makeTensor(rng, sa, la);
  const B = makeTensor(rng, sb, lb);
  const out = A.t.matmul(B.t);
  const expected = refMatmul(A.ref, B.ref);
  const k = sa[sa.length - 1];
  assertClose(out, expected, tolFor(k), `matmul [${sa}] (${la}) @ [${sb}] (${lb})`);
  assert.equal(out.dtype, 'float32');
}

describe('matmul', () => {
  itTidy('2-D products at sizes 1, 7, 33, 257 in every dimension', () => {
    const rng = new Rng(1);
    const sizes = [1, 7, 33];
    for (const m of sizes) for (const k of sizes) for (const n of sizes) check(rng, [m, k], [k, n]);
    check(rng, [257, 33], [33, 7]);
    check(rng, [7, 257], [257, 33]);
    check(rng, [33, 7], [7, 257]);
    check(rng, [257, 257], [257, 1]);
    check(rng, [1, 257], [257, 257]);
    check(rng, [65, 129], [129, 97]);
  });

  itTidy('1-D operands: vector·matrix, matrix·vector, dot product', () => {
    const rng = new Rng(2);
    for (const n of [1, 7, 33, 257]) {
      check(rng, [n], [n, 7]);
      check(rng, [7, n], [n]);
      check(rng, [n], [n]);
      check(rng, [3, 5, n], [n]);
      check(rng, [n], [2, n, 5]);
    }
    const d = jl.tensor([1, 2, 3]).matmul(jl.tensor([4, 5, 6]));
    assert.deepEqual(d.shape, []);
    assert.equal(d.item(), 32);
    assert.deepEqual(jl.tensor([1, 2]).matmul(jl.tensor([[1, 2, 3], [4, 5, 6]])).toArray(), [9, 12, 15]);
    assert.deepEqual(jl.tensor([[1, 2, 3], [4, 5, 6]]).matmul(jl.tensor([1, 0, -1])).toArray(), [-2, -2]);
  });

  itTidy('batched products with broadcast batch dimensions', () => {
    const rng = new Rng(3);
    check(rng, [4, 7, 5], [4, 5, 3]);
    check(rng, [4, 7, 5], [5, 3]);
    check(rng, [7, 5], [4, 5, 3]);
    check(rng, [2, 1, 7, 5], [3, 5, 33]);
    check(rng, [1, 3, 7, 5], [2, 1, 5, 1]);
    check(rng, [5, 1, 1, 33], [1, 33, 7]);
    check(rng, [0, 7, 5], [5, 3]);
    assert.deepEqual(jl.zeros([1, 0, 3, 4]).matmul(jl.zeros([5, 1, 4, 2])).shape, [5, 0, 3, 2]);
  });

  itTidy('transposed, permuted, sliced-with-step and expanded operands', () => {
    const rng = new Rng(4);
    const layouts: Layout[] = ['transposed', 'permuted', 'stepped', 'expanded', 'offset', 'contiguous'];
    for (const la of layouts) {
      for (const lb of layouts) {
        check(rng, [33, 7], [7, 9], la, lb);
        check(rng, [3, 7, 33], [3, 33, 5], la, lb);
      }
    }
    // The transpose of a square matrix times itself: A^T A is symmetric.
    const a = jl.randn([33, 33]);
    const ata = a.t().matmul(a);
    assertClose(ata, ata.t(), { rtol: 1e-5, atol: 1e-5 });
    // Batch dims given by an expanded (stride 0) view.
    const b = makeTensor(rng, [1, 7, 5], 'contiguous');
    const bx = b.t.expand([4, 7, 5]);
    const c = makeTensor(rng, [4, 5, 3], 'stepped');
    assertClose(bx.matmul(c.t), refMatmul(b.ref.expand([4, 7, 5]), c.ref), tolFor(5));
  });

  itTidy('K = 0 gives zeros; M or N = 0 gives empty', () => {
    assertValues(jl.zeros([3, 0]).matmul(jl.zeros([0, 4])), new Array(12).fill(0), 'float32', [3, 4]);
    assertValues(jl.zeros([0]).matmul(jl.zeros([0])), [0], 'float32', []);
    assertValues(jl.zeros([2, 3, 0]).matmul(jl.zeros([0, 5])), new Array(30).fill(0), 'float32', [2, 3, 5]);
    assert.deepEqual(jl.zeros([0, 3]).matmul(jl.zeros([3, 4])).shape, [0, 4]);
    assert.deepEqual(jl.zeros([3, 3]).matmul(jl.zeros([3, 0])).shape, [3, 0]);
    // Writing into the result of K = 0 must not see stale memory from the allocator.
    const big = jl.full([64, 64], 7);
    big.dispose();
    assertValues(jl.zeros([64, 0]).matmul(jl.zeros([0, 64])), new Array(64 * 64).fill(0));
  });

  itTidy('special values: identity, NaN and Infinity propagate', () => {
    const rng = new Rng(5);
    const { t, ref } = makeTensor(rng, [33, 33], 'transposed');
    assertClose(t.matmul(jl.eye(33)), ref, { rtol: 0, atol: 0 });
    assertClose(jl.eye(33).matmul(t), ref, { rtol: 0, atol: 0 });
    const x = jl.tensor([[1, NaN], [1, 1]]);
    assertClose(x.matmul(jl.tensor([[1, 1], [1, 1]])), [[NaN, NaN], [2, 2]]);
    assertClose(jl.tensor([[Infinity, 1]]).matmul(jl.tensor([[1], [1]])), [[Infinity]]);
    assertClose(jl.tensor([[1e30, 1e30]]).matmul(jl.tensor([[1e10], [1e10]])), [[Infinity]]);
  });

  itTidy('errors: inner dimensions, batch dimensions, dtypes, 0-d', () => {
    expectJouleError(() => jl.zeros([2, 3]).matmul(jl.zeros([4, 2])), 'SHAPE_MISMATCH', /inner dimensions.*3 vs 4/);
    expectJouleError(() => jl.zeros([3]).matmul(jl.zeros([4])), 'SHAPE_MISMATCH', /inner/);
    expectJouleError(() => jl.zeros([2, 2, 3]).matmul(jl.zeros([3, 3, 2])), 'SHAPE_MISMATCH', /broadcast/);
    expectJouleError(() => jl.tensor(1).matmul(jl.zeros([1])), 'SHAPE_MISMATCH', /at least 1 dimension/);
    expectJouleError(() => jl.zeros([2, 2], { dtype: 'int32' }).matmul(jl.zeros([2, 2])), 'DTYPE', /float32/);
    expectJouleError(() => jl.zeros([2, 2]).matmul(jl.zeros([2, 2], { dtype: 'int8' })), 'DTYPE', /int8/);
    expectJouleError(() => jl.matmul(jl.zeros([2, 2]), 2 as never), 'INVALID_ARGUMENT', /Tensor/);
  });
});

