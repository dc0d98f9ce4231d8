// The fused attention kernel against a naive float64 reference that forms the whole score
// matrix: values, log-sum-exp and gradients, causal and not, odd sizes, every ISA.
import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { native } from '../lib/native';
import { Rng } from './helpers';

type Case = { B: number; H: number; Tq: number; Tk: number; D: number };

function randArray(rng: Rng, n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** out, dq, dk, dv of softmax(q k^T s + mask) v for contiguous [B, H, T, D] arrays, in float64. */
function reference(c: Case, q: Float32Array, k: Float32Array, v: Float32Array, dout: Float32Array, causal: boolean, scale: number) {
  const { B, H, Tq, Tk, D } = c;
  const out = new Float64Array(B * H * Tq * D);
  const lse = new Float64Array(B * H * Tq);
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  const off = Tk - Tq;
  for (let bh = 0; bh < B * H; bh++) {
    const qb = bh * Tq * D;
    const kb = bh * Tk * D;
    for (let i = 0; i < Tq; i++) {
      const s = new Float64Array(Tk).fill(-Infinity);
      let m = -Infinity;
      for (let j = 0; j < Tk; j++) {
        if (causal && j > i + off) continue;
        let acc = 0;
        for (let d = 0; d < D; d++) acc += q[qb + i * D + d] * k[kb + j * D + d];
        s[j] = acc * scale;
        m = Math.max(m, s[j]);
      }
      if (m === -Infinity) {
        lse[bh * Tq + i] = -Infinity;
        continue;
      }
      let sum = 0;
      const p = new Float64Array(Tk);
      for (let j = 0; j < Tk; j++) sum += p[j] = s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
      for (let j = 0; j < Tk; j++) p[j] /= sum;
      lse[bh * Tq + i] = m + Math.log(sum);
      for (let j = 0; j < Tk; j++) for (let d = 0; d < D; d++) out[qb + i * D + d] += p[j] * v[kb + j * D + d];
      // backward of this row
      const dp = new Float64Array(Tk);
      let dot = 0;
      for (let j = 0; j < Tk; j++) {
        for (let d = 0; d < D; d++) dp[j] += dout[qb + i * D + d] * v[kb + j * D + d];
        dot += dp[j] * p[j];
      }
      for (let j = 0; j < Tk; j++) {
        const ds = p[j] * (dp[j] - dot) * scale;
        for (let d = 0; d < D; d++) {
          dv[kb + j * D + d] += p[j] * dout[qb + i * D + d];
          dq[qb + i * D + d] += ds * k[kb + j * D + d];
          dk[kb + j * D + d] += ds * q[qb + i * D + d];
        }
      }
    }
  }
  return { out, lse, dq, dk, dv };
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 2e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e === -Infinity && a === -Infinity) continue;
    const err = Math.abs(a - e) / (1 + Math.abs(e));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  assert.ok(worst <= tol, `${what}: max error ${worst} at ${at} (got ${actual[at]}, expected ${expected[at]})`);
}

function isas(): jl.Isa[] {
  const cpu = jl.buildInfo().cpu;
  const out: jl.Isa[] = ['generic'];
  if (cpu.avx2 && cpu.fma) out.push('avx2');
  if (cpu.avx512f && cpu.avx512bw && cpu.avx512vl) out.push('avx512');
  return out;
}

const CASES: Case[] = [
  { B: 1, H: 1, Tq: 1, Tk: 1, D: 8 },
  { B: 2, H: 3, Tq: 7, Tk: 7, D: 17 },
  { B: 1, H: 2, Tq: 33, Tk: 33, D: 64 },
  { B: 1, H: 1, Tq: 3, Tk: 12, D: 8 }, // fewer queries than keys: the KV-cache case
  { B: 1, H: 1, Tq: 9, Tk: 5, D: 5 }, // more queries than keys: causal rows that see nothing
  { B: 1, H: 2, Tq: 150, Tk: 150, D: 33 }, // more than one key block
];

describe('attention (fused, tiled online softmax)', () => {
  const original = jl.getIsa();
  afterEach(() => jl.setIsa(original));

  for (const isa of isas()) {
    for (const causal of [false, true]) {
      it(`${isa}, causal=${causal}: values, log-sum-exp and gradients match the naive reference`, () => {
        jl.setIsa(isa);
        const rng = new Rng(7);
        for (const c of CASES) {
          const { B, H, Tq, Tk, D } = c;
          const qa = randArray(rng, B * H * Tq * D);
          const ka = randArray(rng, B * H * Tk * D);
          const va = randArray(rng, B * H * Tk * D);
          const ga = randArray(rng, B * H * Tq * D);
          const scale = c.D === 17 ? 0.3 : 1 / Math.sqrt(D);
          const ref = reference(c, qa, ka, va, ga, causal, scale);
          jl.tidy(() => {
            const q = jl.tensor(qa, { shape: [B, H, Tq, D] }).requiresGrad_();
            const k = jl.tensor(ka, { shape: [B, H, Tk, D] }).requiresGrad_();
            const v = jl.tensor(va, { shape: [B, H, Tk, D] }).requiresGrad_();
            const opts = c.D === 17 ? { causal, scale } : { causal };
            const out = jl.nn.scaledDotProductAttention(q, k, v, opts);
            const where = `${isa} ${JSON.stringify(c)} causal=${causal}`;
            close(out.data(), ref.out, `out ${where}`);
            const [, hl] = native.attentionForward(q.handle, k.handle, v.handle, causal, c.D === 17 ? scale : null);
            const lse = new jl.Tensor(hl);
            close(lse.data(), ref.lse, `lse ${where}`);
            out.backward(jl.tensor(ga, { shape: [B, H, Tq, D] }));
            close(q.grad!.data(), ref.dq, `dq ${where}`, 5e-4);
            close(k.grad!.data(), ref.dk, `dk ${where}`, 5e-4);
            close(v.grad!.data(), ref.dv, `dv ${where}`, 5e-4);
            for (const t of [q, k, v]) t.grad!.dispose();
          });
        }
      });
    }
  }

  it('takes strided q, k, v (permuted views) and the fused-qkv form agrees with the separate one', () => {
    const rng = new Rng(3);
    const [B, T, H, D] = [2, 11, 3, 17];
    const C = H * D;
    jl.tidy(() => {
      const qkvData = randArray(rng, B * T * 3 * C);
      const qkv = jl.tensor(qkvData, { shape: [B, T, 3 * C] }).requiresGrad_();
      const y = jl.nn.selfAttentionQkv(qkv, H, { causal: true });
      assert.deepEqual(y.shape, [B, T, C]);
      const g = jl.tensor(randArray(rng, B * T * C), { shape: [B, T, C] });
      y.backward(g);
      const fused = qkv.grad!.data();

      const qkv2 = jl.tensor(qkvData, { shape: [B, T, 3 * C] }).requiresGrad_();
      const parts = qkv2.reshape([B, T, 3, H, D]);
      const [q, k, v] = [0, 1, 2].map((i) => parts.select(2, i).transpose(1, 2));
      const o = jl.nn.scaledDotProductAttention(q, k, v, { causal: true });
      close(o.transpose(1, 2).reshape([B, T, C]).data(), y.data(), 'values');
      o.transpose(1, 2).reshape([B, T, C]).backward(g);
      close(qkv2.grad!.data(), fused, 'gradients');
      qkv.grad!.dispose();
      qkv2.grad!.dispose();
    });
  });

  it('rejects wrong shapes, dtypes and head sizes with clear errors', () => {
    jl.tidy(() => {
      const q = jl.zeros([1, 2, 3, 4]);
      assert.throws(() => jl.nn.scaledDotProductAttention(q, jl.zeros([1, 2, 3, 5]), jl.zeros([1, 2, 3, 5])), /SHAPE|shape|expected q/);
      assert.throws(() => jl.nn.scaledDotProductAttention(q, q, jl.zeros([1, 2, 4, 4])), /expected q/);
      assert.throws(() => jl.nn.scaledDotProductAttention(jl.zeros([2, 3, 4]), q, q), /expected q/);
      const big = jl.zeros([1, 1, 1, 300]);
      assert.throws(() => jl.nn.scaledDotProductAttention(big, big, big), /head size/);
      assert.throws(() => jl.nn.scaledDotProductAttention(q, q, q, { scale: NaN }), /scale/);
    });
  });

  it('maskedFill fills where the mask is set and passes gradients elsewhere', () => {
    jl.tidy(() => {
      const x = jl.tensor([[1, 2], [3, 4]]).requiresGrad_();
      const mask = jl.tensor([[1, 0], [0, 1]], { dtype: 'int32' });
      const y = jl.maskedFill(x, mask, -5);
      assert.deepEqual(y.toArray(), [[-5, 2], [3, -5]]);
      y.sum().backward();
      assert.deepEqual(x.grad!.toArray(), [[0, 1], [1, 0]]);
      x.grad!.dispose();
    });
  });

  it('CUDA forward matches the CPU kernel @gpu', function () {
    if (!jl.cudaAvailable().available) {
      if (process.env.JOULE_REQUIRE_GPU) assert.fail('JOULE_REQUIRE_GPU is set but no GPU is available');
      this.skip();
    }
    const rng = new Rng(11);
    for (const c of CASES) {
      for (const causal of [false, true]) {
        jl.tidy(() => {
          const q = jl.tensor(randArray(rng, c.B * c.H * c.Tq * c.D), { shape: [c.B, c.H, c.Tq, c.D] });
          const k = jl.tensor(randArray(rng, c.B * c.H * c.Tk * c.D), { shape: [c.B, c.H, c.Tk, c.D] });
          const v = jl.tensor(randArray(rng, c.B * c.H * c.Tk * c.D), { shape: [c.B, c.H, c.Tk, c.D] });
          const cpu = jl.nn.scaledDotProductAttention(q, k, v, { causal });
          const gpu = jl.nn.scaledDotProductAttention(q.to('cuda:0'), k.to('cuda:0'), v.to('cuda:0'), { causal });
          close(gpu.to('cpu').data(), cpu.data(), `cuda ${JSON.stringify(c)} causal=${causal}`, 1e-4);
        });
      }
    }
  });

  it('CUDA backward gives the CPU kernel\'s gradients @gpu', function () {
    if (!jl.cudaAvailable().available) {
      if (process.env.JOULE_REQUIRE_GPU) assert.fail('JOULE_REQUIRE_GPU is set but no GPU is available');
      this.skip();
    }
    for (const c of CASES) {
      for (const causal of [false, true]) {
        jl.tidy(() => {
          const grads = (device: string) => {
            const make = (t: number, seed: number) => {
              const r = new Rng(seed);
              return jl.tensor(randArray(r, c.B * c.H * t * c.D), { shape: [c.B, c.H, t, c.D] }).to(device).requiresGrad_();
            };
            const q = make(c.Tq, 1), k = make(c.Tk, 2), v = make(c.Tk, 3);
            const w = jl.tensor(randArray(new Rng(4), c.B * c.H * c.Tq * c.D), { shape: [c.B, c.H, c.Tq, c.D] }).to(device);
            jl.nn.scaledDotProductAttention(q, k, v, { causal }).mul(w).sum().backward();
            return [q, k, v].map((t) => t.grad!.to('cpu').data());
          };
          const cpu = grads('cpu');
          const gpu = grads('cuda:0');
          ['dq', 'dk', 'dv'].forEach((name, i) => close(gpu[i], cpu[i], `cuda ${name} ${JSON.stringify(c)} causal=${causal}`, 1e-3));
        });
      }
    }
  });
});
