// The float32 matmul precision (jl.setMatmulPrecision): validation everywhere, and on a GPU the
// three CUDA GEMM kernels (exact fp32, TF32, BF16) and the CUDA int8 linear against the CPU.
import assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { expectJouleError } from './helpers';

const cuda = jl.cudaAvailable();

describe('matmul precision', () => {
  afterEach(() => jl.setMatmulPrecision('highest'));

  it("defaults to 'highest' and round-trips every accepted value", () => {
    assert.equal(jl.getMatmulPrecision(), 'highest');
    for (const p of ['high', 'medium', 'highest'] as const) {
      jl.setMatmulPrecision(p);
      assert.equal(jl.getMatmulPrecision(), p);
    }
  });

  it('rejects anything else with INVALID_ARGUMENT and keeps the old value', () => {
    jl.setMatmulPrecision('high');
    for (const bad of ['low', 'HIGH', '', 'tf32', 1, null, undefined]) {
      expectJouleError(() => jl.setMatmulPrecision(bad as never), 'INVALID_ARGUMENT', /'highest', 'high' or 'medium'/);
    }
    assert.equal(jl.getMatmulPrecision(), 'high');
  });

  it('has no effect on the CPU: the CPU GEMM stays exact fp32', () => {
    const a = jl.randn([33, 65]);
    const b = jl.randn([65, 17]);
    const exact = a.matmul(b).toArray() as number[][];
    for (const p of ['high', 'medium'] as const) {
      jl.setMatmulPrecision(p);
      assert.deepEqual(a.matmul(b).toArray(), exact);
    }
    jl.dispose([a, b]);
  });
});

describe('CUDA GEMM precisions @gpu', function () {
  before(function () {
    if (cuda.available) return;
    if (process.env.JOULE_REQUIRE_GPU) throw new Error(`a GPU is required (JOULE_REQUIRE_GPU) but CUDA is unavailable: ${cuda.reason}`);
    console.log(`      skipped: no usable GPU (${cuda.reason})`);
    this.skip();
  });
  afterEach(() => jl.setMatmulPrecision('highest'));

  // Relative to the magnitude sum_p |a_ip b_pj| of each dot product (see cuda/tools/check_gemm.cpp):
  // fp32 ~ k * 2^-24, TF32 operands carry 2^-11 relative rounding, BF16 2^-8.
  const tolerances = { highest: 1e-5, high: 2e-3, medium: 1.6e-2 } as const;

  for (const precision of ['highest', 'high', 'medium'] as const) {
    it(`matmul '${precision}' matches the CPU on awkward and transposed shapes @gpu`, () => {
      jl.setMatmulPrecision(precision);
      for (const [m, k, n] of [[1, 1, 1], [3, 17, 31], [65, 127, 33], [257, 255, 129]]) {
        jl.tidy(() => {
          for (const transpose of [false, true]) {
            const a = transpose ? jl.randn([k, m]).t() : jl.randn([m, k]);
            const b = transpose ? jl.randn([n, k]).t() : jl.randn([k, n]);
            const want = a.matmul(b).toArray() as number[][];
            const mag = a.abs().matmul(b.abs()).toArray() as number[][];
            const got = a.to('cuda').matmul(b.to('cuda')).to('cpu').toArray() as number[][];
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                assert.ok(Math.abs(got[i][j] - want[i][j]) <= tolerances[precision] * mag[i][j] + 1e-6,
                  `${precision} ${m}x${k}x${n}${transpose ? ' transposed' : ''} at (${i}, ${j}): ${got[i][j]} vs ${want[i][j]}`);
              }
            }
          }
        });
      }
    });
  }

  it('linear with bias on CUDA matches the CPU @gpu', () => {
    jl.tidy(() => {
      const x = jl.randn([37, 29]);
      const w = jl.randn([19, 29]);
      const bias = jl.randn([19]);
      const want = jl.nn.functional.linear(x, w, bias).relu().toArray() as number[][];
      const got = jl.nn.functional.linear(x.to('cuda'), w.to('cuda'), bias.to('cuda')).relu().to('cpu').toArray() as number[][];
      for (let i = 0; i < 37; i++) for (let j = 0; j < 19; j++) assert.ok(Math.abs(got[i][j] - want[i][j]) <= 1e-4 * (1 + Math.abs(want[i][j])));
    });
  });

  it('QuantizedLinear on CUDA matches the CPU @gpu', () => {
    jl.tidy(() => {
      const lin = new jl.nn.Linear(70, 33);
      const q = jl.quant.QuantizedLinear.fromLinear(lin);
      const x = jl.randn([9, 70]);
      const want = q.forward(x).toArray() as number[][];
      q.to('cuda');
      const got = q.forward(x.to('cuda')).to('cpu').toArray() as number[][];
      for (let i = 0; i < 9; i++) for (let j = 0; j < 33; j++) assert.ok(Math.abs(got[i][j] - want[i][j]) <= 1e-5 * (1 + Math.abs(want[i][j])));
      lin.dispose();
      q.dispose();
    });
  });
});
