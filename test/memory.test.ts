import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertNoLeak, expectJouleError, itTidy, snapshot } from './helpers';

describe('memory', () => {
  let start: ReturnType<typeof snapshot>;
  beforeEach(() => {
    start = snapshot();
  });
  afterEach(function () {
    // Tests in this file clean up after themselves; a failed test may not have, so skip then.
    if (this.currentTest?.state === 'passed') assert.deepEqual(snapshot(), start, 'memory() changed across the test');
  });

  it('memory() counts live tensors and their bytes per device', () => {
    const m0 = jl.memory();
    assert.ok(m0.devices.cpu, 'cpu is always reported');
    assert.equal(typeof m0.devices.cpu.cachedBytes, 'number');
    const a = jl.zeros([10, 10]);
    const b = jl.zeros([7], { dtype: 'int8' });
    const m1 = jl.memory();
    assert.equal(m1.tensors - m0.tensors, 2);
    assert.equal(m1.bytes - m0.bytes, 400 + 7);
    assert.equal(m1.devices.cpu.tensors - m0.devices.cpu.tensors, 2);
    // A view is one more tensor but no more bytes.
    const v = a.t();
    const m2 = jl.memory();
    assert.equal(m2.tensors - m1.tensors, 1);
    assert.equal(m2.bytes, m1.bytes);
    // Disposing the base keeps the storage alive while the view lives.
    a.dispose();
    assert.equal(jl.memory().bytes, m1.bytes);
    v.dispose();
    b.dispose();
    assert.deepEqual(snapshot(), { tensors: m0.tensors, bytes: m0.bytes });
  });

  it('freed small tensors are reused: the process does not grow with alloc/dispose churn', () => {
    // 20,000 x 16 KiB = 328 MB allocated and disposed one by one, each handle object left for the
    // garbage collector (as in a training loop). Reuse keeps the resident set flat; before the
    // allocator stopped using aligned_alloc it grew by the full 328 MB.
    const before = process.memoryUsage().rss;
    const handles: jl.Tensor[] = [];
    for (let i = 0; i < 20_000; i++) {
      const t = jl.zeros([4096]);
      t.dispose();
      handles.push(t);
    }
    const grown = (process.memoryUsage().rss - before) / 1e6;
    assert.ok(grown < 64, `resident set grew by ${grown.toFixed(0)} MB`);
  });

  it('dispose() twice is safe, and jl.dispose walks arrays and objects', () => {
    const a = jl.ones([3]);
    a.dispose();
    a.dispose();
    assert.equal(a.isDisposed, true);
    const xs = [jl.ones([2]), { w: jl.ones([3]), nested: [jl.ones([4])] }];
    const before = snapshot();
    jl.dispose(xs);
    jl.dispose(xs);
    const after = snapshot();
    assert.equal(before.tensors - after.tensors, 3);
    assert.equal(before.bytes - after.bytes, 4 * (2 + 3 + 4));
  });

  it('tidy disposes what fn made, except the result and kept tensors', () => {
    const kept = jl.tidy(() => {
      jl.ones([100]);
      const k = jl.ones([5]).keep();
      jl.ones([5]).add(1);
      return k;
    });
    assert.equal(kept.isDisposed, false);
    assert.equal(jl.memory().tensors - start.tensors, 1);
    const result = jl.tidy(() => jl.ones([3]).mul(2));
    assert.deepEqual(result.toArray(), [2, 2, 2]);
    assert.equal(jl.memory().tensors - start.tensors, 2);
    kept.dispose();
    result.dispose();
  });

  it('nested tidy hands arrays and objects of tensors to the parent, which then frees them', () => {
    let inner: { a: jl.Tensor; list: jl.Tensor[]; map: Map<string, jl.Tensor> } | undefined;
    const outerResult = jl.tidy(() => {
      inner = jl.tidy(() => {
        jl.zeros([9]);
        return { a: jl.ones([2]), list: [jl.ones([3]), jl.ones([4])], map: new Map([['m', jl.ones([5])]]) };
      });
      assert.equal(inner.a.isDisposed, false);
      assert.equal(inner.list[1].isDisposed, false);
      assert.equal(inner.map.get('m')!.isDisposed, false);
      return [inner.list[0]];
    });
    // The parent returned only list[0]: everything else from the inner scope is gone.
    assert.equal(outerResult[0].isDisposed, false);
    assert.equal(inner!.a.isDisposed, true);
    assert.equal(inner!.list[1].isDisposed, true);
    assert.equal(inner!.map.get('m')!.isDisposed, true);
    assert.equal(jl.memory().tensors - start.tensors, 1);
    outerResult[0].dispose();
  });

  it('tidy keeps tensors that were made outside it, even when used inside', () => {
    const outside = jl.ones([4]);
    jl.tidy(() => {
      outside.add(1);
      outside.reshape([2, 2]);
    });
    assert.equal(outside.isDisposed, false);
    assert.equal(jl.memory().tensors - start.tensors, 1);
    outside.dispose();
  });

  it('tidy disposes everything on throw and rethrows', () => {
    const made: jl.Tensor[] = [];
    assert.throws(() =>
      jl.tidy(() => {
        made.push(jl.ones([10]));
        made.push(jl.ones([10]).t());
        jl.tidy(() => {
          made.push(jl.ones([3]));
          throw new Error('boom');
        });
      }),
    /boom/);
    assert.ok(made.every((t) => t.isDisposed));
    // A JouleError from an op inside tidy also cleans up.
    expectJouleError(() => jl.tidy(() => jl.ones([2]).add(jl.ones([3]))), 'SHAPE_MISMATCH', /broadcast/);
  });

  it('tidy refuses a Promise-returning function and frees what it made', () => {
    let t: jl.Tensor | undefined;
    const err = expectJouleError(
      () => jl.tidy((() => {
        t = jl.ones([8]);
        return Promise.resolve(t);
      }) as never),
      'INVALID_ARGUMENT',
      /Promise/,
    );
    assert.match(err.message, /synchronous/);
    assert.equal(t!.isDisposed, true);
    expectJouleError(() => jl.tidy(42 as never), 'INVALID_ARGUMENT', /function/);
  });

  it('keep() survives nested tidies; dispose() frees it', () => {
    let k: jl.Tensor | undefined;
    jl.tidy(() => {
      jl.tidy(() => {
        k = jl.ones([6]).keep();
      });
    });
    assert.equal(k!.isDisposed, false);
    k!.dispose();
    assert.equal(k!.isDisposed, true);
  });

  it('a disposed tensor refuses every use', () => {
    const a = jl.ones([2, 2]);
    const b = jl.ones([2, 2]);
    b.dispose();
    expectJouleError(() => b.data(), 'DISPOSED', /disposed/);
    expectJouleError(() => b.item(), 'DISPOSED', /disposed/);
    expectJouleError(() => b.toArray(), 'DISPOSED', /disposed/);
    expectJouleError(() => b.add(1), 'DISPOSED', /disposed/);
    expectJouleError(() => a.add(b), 'DISPOSED', /'b'|b is/);
    expectJouleError(() => jl.mul(2, b), 'DISPOSED', /disposed/);
    expectJouleError(() => a.matmul(b), 'DISPOSED', /disposed/);
    expectJouleError(() => jl.concat([a, b]), 'DISPOSED', /tensors\[1\]/);
    expectJouleError(() => jl.stack([a, b]), 'DISPOSED', /tensors\[1\]/);
    expectJouleError(() => jl.where(b, a, a), 'DISPOSED', /condition/);
    expectJouleError(() => a.copy_(b), 'DISPOSED', /src/);
    expectJouleError(() => b.copy_(a), 'DISPOSED', /disposed/);
    expectJouleError(() => a.add_(b), 'DISPOSED', /disposed/);
    expectJouleError(() => b.reshape([4]), 'DISPOSED', /disposed/);
    expectJouleError(() => b.sum(), 'DISPOSED', /disposed/);
    expectJouleError(() => a.gather(0, b), 'DISPOSED', /index/);
    expectJouleError(() => b.clone(), 'DISPOSED', /disposed/);
    expectJouleError(() => b.astype('int32'), 'DISPOSED', /disposed/);
    expectJouleError(() => b.to('cpu'), 'DISPOSED', /disposed/);
    expectJouleError(() => jl.zerosLike(b), 'DISPOSED', /disposed/);
    a.dispose();
  });

  it('a huge allocation fails cleanly with OUT_OF_MEMORY and leaks nothing', () => {
    assertNoLeak(() => {
      expectJouleError(() => jl.zeros([2 ** 40]), 'OUT_OF_MEMORY', /bytes/);
      expectJouleError(() => jl.ones([2 ** 20, 2 ** 20]), 'OUT_OF_MEMORY', /bytes/);
      expectJouleError(() => jl.randn([2 ** 42]), 'OUT_OF_MEMORY', /bytes/);
      expectJouleError(() => jl.arange(0, 2 ** 50), 'OUT_OF_MEMORY', /bytes/);
      expectJouleError(() => jl.zeros([2 ** 20]).expand([2 ** 21, 2 ** 20]).contiguous(), 'OUT_OF_MEMORY', /bytes/);
      // Reading a huge (cheap, expanded) view back into JavaScript must not abort V8.
      const huge = jl.ones([1]).expand([2 ** 40]);
      expectJouleError(() => huge.data(), 'OUT_OF_MEMORY', /JavaScript/);
      expectJouleError(() => huge.toArray(), 'OUT_OF_MEMORY', /JavaScript/);
      expectJouleError(() => huge.toString(), 'OUT_OF_MEMORY', /JavaScript/);
      expectJouleError(() => jl.ones([1], { dtype: 'int8' }).expand([2 ** 33]).data(), 'OUT_OF_MEMORY', /JavaScript/);
    });
    // ...and the library keeps working afterwards.
    assertNoLeak(() => assert.equal(jl.ones([3]).sum().item(), 3));
  });

  itTidy('memory stays flat across many iterations of a tidy loop', () => {
    const before = snapshot();
    for (let i = 0; i < 200; i++) {
      jl.tidy(() => {
        jl.randn([33, 7]).matmul(jl.randn([7, 5])).relu().sum();
      });
    }
    assert.deepEqual(snapshot(), before);
  });

  it('releaseCachedMemory empties the allocator cache', () => {
    jl.tidy(() => {
      jl.zeros([1 << 20]);
    });
    const cached = jl.memory().devices.cpu.cachedBytes;
    assert.ok(cached >= 4 << 20, `a freed 4 MiB block is cached (cachedBytes ${cached})`);
    jl.releaseCachedMemory();
    assert.equal(jl.memory().devices.cpu.cachedBytes, 0);
  });

  it('big blocks (mapped on their own, huge-page aligned) hold their values through reuse and release', () => {
    // Around the 2 MiB threshold and past it; each value written is read back, the block is freed
    // into the cache, taken again by a tensor of the same size, and finally unmapped.
    for (const floats of [(2 << 20) / 4 - 16, (2 << 20) / 4, (2 << 20) / 4 + 1, 5 * 262144 + 3]) {
      for (let round = 0; round < 2; round++) {
        jl.tidy(() => {
          const t = jl.arange(0, floats, 1, { dtype: 'float32' });
          const back = t.toArray() as Float32Array;
          assert.equal(back.length, floats);
          for (const i of [0, 1, floats >> 1, floats - 2, floats - 1]) assert.equal(back[i], Math.fround(i));
          const sum = t.sum().item();
          assert.ok(Math.abs(sum - (floats * (floats - 1)) / 2) / sum < 1e-4, `sum of arange(${floats}) = ${sum}`);
        });
      }
    }
    jl.releaseCachedMemory();
    assert.equal(jl.memory().devices.cpu.cachedBytes, 0);
  });
});
