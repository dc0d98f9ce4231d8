import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import * as jl from '../lib/index';
import { assertClose, expectJouleError, itTidy, makeTensor, Ref, refMatmul, Rng } from './helpers';

describe('runtime', () => {
  let threads: number;
  let isa: jl.Isa;
  beforeEach(() => {
    threads = jl.getNumThreads();
    isa = jl.getIsa();
  });
  afterEach(() => {
    jl.setNumThreads(threads);
    jl.setIsa(isa);
  });

  itTidy('setNumThreads / getNumThreads', () => {
    assert.ok(Number.isInteger(threads) && threads >= 1);
    jl.setNumThreads(1);
    assert.equal(jl.getNumThreads(), 1);
    jl.setNumThreads(3);
    assert.equal(jl.getNumThreads(), 3);
    expectJouleError(() => jl.setNumThreads(0), 'INVALID_ARGUMENT', /threads/);
    expectJouleError(() => jl.setNumThreads(1.5), 'INVALID_ARGUMENT', /threads/);
    expectJouleError(() => jl.setNumThreads(257), 'INVALID_ARGUMENT', /256/);
    assert.equal(jl.getNumThreads(), 3);
  });

  itTidy('1 and 2 threads give the same reductions, matmuls and elementwise results', () => {
    const rng = new Rng(1);
    const big = makeTensor(rng, [300_000], 'contiguous').t;
    const mat = makeTensor(rng, [257, 1024], 'transposed').t;
    const a = makeTensor(rng, [257, 129], 'contiguous').t;
    const b = makeTensor(rng, [129, 257], 'stepped').t;
    const run = () => ({
      sum: big.sum().item(),
      mean: big.mean().item(),
      max: big.max().item(),
      argmax: big.argmax().item(),
      cols: mat.sum(0).data(),
      rows: mat.sum(1).data(),
      vr: mat.var(1).data(),
      mm: a.matmul(b).data(),
      bmm: a.reshape([1, 257, 129]).expand([3, 257, 129]).matmul(b).data(),
      ew: big.exp().mul(big).data(),
      sm: mat.softmax(0).data(),
    });
    jl.setNumThreads(1);
    const one = run();
    jl.setNumThreads(2);
    const two = run();
    jl.setNumThreads(4);
    const four = run();
    for (const other of [two, four]) {
      for (const key of Object.keys(one) as (keyof typeof one)[]) {
        const x = one[key];
        const y = other[key];
        if (typeof x === 'number') assert.ok(Math.abs(x - (y as number)) <= 1e-5 * Math.abs(x) + 1e-6, `${key}: ${x} vs ${y}`);
        else assertClose(y as Float32Array, x as Float32Array, { rtol: 1e-5, atol: 1e-6 }, key);
      }
    }
    const expected = refMatmul(
      new Ref([257, 129], Float64Array.from(a.data())),
      new Ref([129, 257], Float64Array.from(b.data())),
    );
    assertClose(one.mm, expected.data, { rtol: 1e-5, atol: 1e-4 }, 'matmul vs reference');
  });

  itTidy('every ISA the CPU supports gives matmul results that match the float64 reference', () => {
    const info = jl.buildInfo().cpu;
    const supported: jl.Isa[] = ['generic'];
    if (info.avx2 && info.fma) supported.push('avx2');
    if (info.avx512f && info.avx512bw && info.avx512vl && info.fma) supported.push('avx512');
    const rng = new Rng(2);
    const cases: [number[], number[], 'contiguous' | 'transposed' | 'stepped'][] = [
      [[1, 1], [1, 1], 'contiguous'], [[7, 33], [33, 7], 'transposed'], [[33, 257], [257, 33], 'stepped'],
      [[257, 7], [7, 1], 'contiguous'], [[3, 7, 33], [33, 257], 'transposed'], [[1, 257], [257, 257], 'contiguous'],
    ];
    const inputs = cases.map(([sa, sb, l]) => ({ A: makeTensor(rng, sa, l), B: makeTensor(rng, sb, 'contiguous') }));
    for (const name of ['generic', 'avx2', 'avx512'] as jl.Isa[]) {
      if (!supported.includes(name)) {
        expectJouleError(() => jl.setIsa(name), 'INVALID_ARGUMENT', /not supported/);
        continue;
      }
      jl.setIsa(name);
      assert.equal(jl.getIsa(), name);
      assert.equal(jl.buildInfo().cpu.isa, name);
      for (const { A, B } of inputs) {
        const out = A.t.matmul(B.t);
        const k = A.ref.shape[A.ref.ndim - 1];
        assertClose(out, refMatmul(A.ref, B.ref), { rtol: 1e-5, atol: 1e-5 * Math.sqrt(k) }, `${name} [${A.ref.shape}]@[${B.ref.shape}]`);
      }
    }
    expectJouleError(() => jl.setIsa('neon' as never), 'INVALID_ARGUMENT', /neon/);
  });

  itTidy('buildInfo describes the build, the CPU and CUDA', () => {
    const info = jl.buildInfo();
    assert.match(info.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof info.buildSystem, 'string');
    assert.ok(info.buildSystem.length > 0);
    for (const k of ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512vnni', 'avx512bf16', 'avxvnni'] as const) {
      assert.equal(typeof info.cpu[k], 'boolean', k);
    }
    assert.equal(typeof info.cpu.model, 'string');
    assert.ok(['generic', 'avx2', 'avx512'].includes(info.cpu.isa));
    assert.equal(typeof info.cuda.compiled, 'boolean');
    assert.equal(typeof info.cuda.deviceCount, 'number');
    assert.equal(info.cuda.devices.length, info.cuda.deviceCount);
    // The package version and the addon's agree.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    assert.equal(info.version, require('../package.json').version);
  });

  itTidy('cudaAvailable says whether CUDA can be used, and why not', () => {
    const c = jl.cudaAvailable();
    assert.equal(typeof c.available, 'boolean');
    assert.ok(Array.isArray(c.devices));
    if (!c.available) {
      assert.equal(c.devices.length, 0);
      assert.ok(c.reason.length > 10, `a reason is given: '${c.reason}'`);
      assert.match(c.reason, /CUDA|GPU|driver|device/i);
    } else {
      assert.ok(c.devices.length > 0);
    }
  });

  it('a worker thread terminated in the middle of Joule calls neither aborts the process nor leaves tensors behind', function () {
    this.timeout(120_000);
    // In a child process: before the fix, the interrupted call's error, thrown into the dying
    // worker, aborted the whole process, and a result being wrapped for it was never freed.
    const res = spawnSync(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, 'fixtures/worker_terminate.ts')], {
      cwd: path.join(__dirname, '..'),
      encoding: 'utf8',
      timeout: 110_000,
    });
    assert.equal(res.status, 0, `status ${res.status}, signal ${res.signal}\n${res.stdout}${res.stderr}`);
    assert.match(res.stdout, /^OK 12$/m);
  });
});
