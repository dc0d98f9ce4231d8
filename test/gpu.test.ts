// GPU tests: each CUDA kernel against the CPU reference. Without a GPU they skip, saying why;
// `npm run test:gpu` (JOULE_REQUIRE_GPU=1) makes a missing GPU a failure instead.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';

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

describe('CUDA unavailable', function () {
  it('says why, and creating a CUDA tensor is a DEVICE error', function () {
    if (cuda.available) this.skip();
    assert.ok(cuda.reason.length > 0);
    assert.throws(() => jl.zeros([2], { device: 'cuda:0' }), (e: unknown) => e instanceof jl.JouleError && e.code === 'DEVICE' && /CUDA/.test(e.message));
    assert.throws(() => jl.ones([2]).to('cuda:1'), (e: unknown) => e instanceof jl.JouleError && e.code === 'DEVICE');
  });
});
