import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { expectJouleError, itTidy } from './helpers';

const hasCuda = jl.cudaAvailable().available;

describe('errors', () => {
  itTidy('JouleError is an Error with a stable code and name', () => {
    const err = expectJouleError(() => jl.zeros([2]).add(jl.zeros([3])), 'SHAPE_MISMATCH');
    assert.ok(err instanceof Error);
    assert.equal(err.name, 'JouleError');
    assert.ok(err.stack && err.stack.length > 0);
  });

  itTidy('SHAPE_MISMATCH names both shapes', () => {
    expectJouleError(() => jl.zeros([2, 3]).add(jl.zeros([4, 3])), 'SHAPE_MISMATCH', /\[2, 3\].*\[4, 3\]/);
    expectJouleError(() => jl.zeros([2, 3]).matmul(jl.zeros([2, 3])), 'SHAPE_MISMATCH', /\[2, 3\] @ \[2, 3\]/);
    expectJouleError(() => jl.zeros([6]).reshape([4, 2]), 'SHAPE_MISMATCH', /\[6\].*\[4, 2\]/);
    expectJouleError(() => jl.zeros([4, 6]).t().view([24]), 'SHAPE_MISMATCH', /view/);
    expectJouleError(() => jl.zeros([2]).expand([3]), 'SHAPE_MISMATCH', /\[2\].*\[3\]/);
    expectJouleError(() => jl.tensor([1, 2, 3], { shape: [2] }), 'SHAPE_MISMATCH', /shape \[2\]/);
    expectJouleError(() => jl.concat([jl.zeros([1, 2]), jl.zeros([1, 3])]), 'SHAPE_MISMATCH', /\[1, 2\].*\[1, 3\]/);
    expectJouleError(() => jl.zeros([3]).item(), 'SHAPE_MISMATCH', /\[3\]/);
    expectJouleError(() => jl.zeros([3]).add_(jl.zeros([2, 3])), 'SHAPE_MISMATCH', /\[2, 3\]/);
  });

  itTidy('DTYPE names the expected and the given dtype', () => {
    expectJouleError(() => jl.zeros([2], { dtype: 'float64' as never }), 'DTYPE', /float32.*float64/);
    expectJouleError(() => jl.zeros([2, 2], { dtype: 'int32' }).matmul(jl.zeros([2, 2])), 'DTYPE', /float32.*int32/);
    expectJouleError(() => jl.zeros([2], { dtype: 'int32' }).add_(0.5), 'DTYPE', /float32.*int32/);
    expectJouleError(() => jl.zeros([2]).indexSelect(0, jl.zeros([1])), 'DTYPE', /int32.*float32/);
    expectJouleError(() => jl.zeros([2]).astype('bool' as never), 'DTYPE', /bool/);
    expectJouleError(() => jl.rand([2], { dtype: 'int8' }), 'DTYPE', /float32.*int8/);
    expectJouleError(() => jl.tensor(new Uint16Array(2) as never), 'DTYPE', /Uint16Array/);
    expectJouleError(() => jl.zeros([2], { dtype: 'int8' }).requiresGrad_(), 'DTYPE', /float32.*int8/);
  });

  itTidy('DEVICE: unknown devices and, without a GPU, CUDA devices give a clear error', () => {
    expectJouleError(() => jl.zeros([2], { device: 'tpu' as never }), 'DEVICE', /'cpu', 'cuda' or 'cuda:N'.*tpu/);
    expectJouleError(() => jl.zeros([2]).to('tpu:0' as never), 'DEVICE', /tpu:0/);
    expectJouleError(() => jl.zeros([2]).to('cuda:x' as never), 'DEVICE', /cuda:x/);
    expectJouleError(() => jl.tensor([1], { device: 'CPU' as never }), 'DEVICE', /CPU/);
    expectJouleError(() => jl.zeros([2], { device: 5 as never }), 'DEVICE', /5/);
    if (!hasCuda) {
      const reason = jl.cudaAvailable().reason;
      for (const make of [
        () => jl.zeros([2], { device: 'cuda:0' }),
        () => jl.zeros([2], { device: 'cuda' }),
        () => jl.tensor([1, 2], { device: 'cuda:0' }),
        () => jl.randn([3], { device: 'cuda:1' }),
        () => jl.arange(4, undefined, 1, { device: 'cuda:0' }),
        () => jl.eye(2, 2, { device: 'cuda:0' }),
        () => jl.ones([2]).to('cuda:0'),
        () => jl.ones([2]).t().to('cuda'),
        () => jl.zeros([0]).to('cuda:0'),
      ]) {
        const err = expectJouleError(make, 'DEVICE', /CUDA/);
        assert.ok(err.message.includes(reason), `the message gives the reason: ${err.message}`);
      }
    } else {
      expectJouleError(() => jl.zeros([2], { device: 'cuda:999' }), 'DEVICE', /cuda/i);
    }
  });

  itTidy('DISPOSED for every use of a disposed tensor, first or second operand or inside arrays', () => {
    const a = jl.ones([2]);
    const d = jl.ones([2]);
    d.dispose();
    expectJouleError(() => d.neg(), 'DISPOSED', /disposed/);
    expectJouleError(() => a.sub(d), 'DISPOSED', /disposed/);
    expectJouleError(() => jl.maximum(a, d), 'DISPOSED', /disposed/);
    expectJouleError(() => jl.concat([a, a, d]), 'DISPOSED', /tensors\[2\]/);
    expectJouleError(() => jl.stack([d]), 'DISPOSED', /tensors\[0\]/);
    expectJouleError(() => a.scatterAdd(0, jl.zeros([1], { dtype: 'int32' }), d), 'DISPOSED', /src/);
    expectJouleError(() => d.shape.length && d.data(), 'DISPOSED', /disposed/);
    expectJouleError(() => d.softmax(), 'DISPOSED', /disposed/);
    expectJouleError(() => d.fill_(1), 'DISPOSED', /disposed/);
  });

  itTidy('INVALID_ARGUMENT for wrong types, non-integers and bad sizes, saying what was expected', () => {
    expectJouleError(() => jl.zeros('3' as never), 'INVALID_ARGUMENT', /array of integers.*"3"/);
    expectJouleError(() => jl.zeros([2.5]), 'INVALID_ARGUMENT', /non-negative integers.*2\.5/);
    expectJouleError(() => jl.zeros([NaN]), 'INVALID_ARGUMENT', /NaN/);
    expectJouleError(() => jl.zeros([Infinity]), 'INVALID_ARGUMENT', /Infinity/);
    expectJouleError(() => jl.zeros([-1]), 'INVALID_ARGUMENT', /non-negative/);
    expectJouleError(() => jl.zeros([2 ** 60]), 'INVALID_ARGUMENT', /integers/);
    expectJouleError(() => jl.zeros([2 ** 53]), 'INVALID_ARGUMENT', /integers|2\^53/);
    expectJouleError(() => jl.zeros([1e9, 1e9]), 'INVALID_ARGUMENT', /2\^53/);
    expectJouleError(() => jl.zeros(new Array(17).fill(1)), 'INVALID_ARGUMENT', /16/);
    expectJouleError(() => jl.zeros([2], 'float32' as never), 'INVALID_ARGUMENT', /options object/);
    expectJouleError(() => jl.arange(0, 10, NaN), 'INVALID_ARGUMENT', /step.*finite.*NaN/);
    expectJouleError(() => jl.eye(Infinity), 'INVALID_ARGUMENT', /rows.*integer/);
    expectJouleError(() => jl.randint(0, 10, [2 ** 53]), 'INVALID_ARGUMENT', /integers|2\^53/);
    expectJouleError(() => jl.manualSeed(NaN), 'INVALID_ARGUMENT', /seed/);
    const t = jl.zeros([2, 3]);
    expectJouleError(() => t.sum(2), 'INVALID_ARGUMENT', /axis 2 is out of range.*2 dimension/);
    expectJouleError(() => t.softmax(-3), 'INVALID_ARGUMENT', /out of range/);
    expectJouleError(() => t.select(0, NaN), 'INVALID_ARGUMENT', /index.*NaN/);
    expectJouleError(() => t.slice(0, 0, Infinity), 'INVALID_ARGUMENT', /end/);
    expectJouleError(() => t.narrow(1, 0, 2 ** 53), 'INVALID_ARGUMENT', /length/);
    expectJouleError(() => t.reshape('a' as never), 'INVALID_ARGUMENT', /array of integers/);
    expectJouleError(() => t.reshape([2 ** 53, 1]), 'INVALID_ARGUMENT', /integers|2\^53/);
    expectJouleError(() => t.transpose(0.5, 1), 'INVALID_ARGUMENT', /axis0/);
    expectJouleError(() => t.add({} as never), 'INVALID_ARGUMENT', /Tensor or a number.*Object/);
    expectJouleError(() => t.add(undefined as never), 'INVALID_ARGUMENT', /undefined/);
    expectJouleError(() => t.add('1' as never), 'INVALID_ARGUMENT', /"1"/);
    expectJouleError(() => jl.exp([1, 2] as never), 'INVALID_ARGUMENT', /Tensor.*array/);
    expectJouleError(() => jl.setNumThreads(0), 'INVALID_ARGUMENT', /threads/);
    expectJouleError(() => jl.setNumThreads(1000), 'INVALID_ARGUMENT', /256/);
    expectJouleError(() => jl.setIsa('sse' as never), 'INVALID_ARGUMENT', /avx512.*sse/);
    expectJouleError(() => jl.setIsa(undefined as never), 'INVALID_ARGUMENT', /isa/);
    expectJouleError(() => jl.noGrad(undefined as never), 'INVALID_ARGUMENT', /function/);
    expectJouleError(() => jl.enableGrad(3 as never), 'INVALID_ARGUMENT', /function/);
    expectJouleError(() => jl.zerosLike(undefined as never), 'INVALID_ARGUMENT', /Tensor/);
    expectJouleError(() => jl.onesLike([1, 2] as never), 'INVALID_ARGUMENT', /Tensor/);
    expectJouleError(() => jl.fullLike(jl.zeros([1]), 1, 'int8' as never), 'INVALID_ARGUMENT', /options/);
  });

  itTidy('OUT_OF_MEMORY for a single allocation larger than the machine', () => {
    expectJouleError(() => jl.zeros([2 ** 40]), 'OUT_OF_MEMORY', /cannot allocate \d+ bytes on cpu/);
    expectJouleError(() => jl.full([2 ** 38], 1, { dtype: 'int8' }), 'OUT_OF_MEMORY', /bytes/);
    expectJouleError(() => jl.linspace(0, 1, 2 ** 45), 'OUT_OF_MEMORY', /bytes/);
    expectJouleError(() => jl.eye(2 ** 24, 2 ** 24), 'OUT_OF_MEMORY', /bytes/);
  });
});
