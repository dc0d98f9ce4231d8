// The fused attention kernel against a naive float64 reference that forms the whole score
// matrix: values, log-sum-exp and gradients, causal and not, odd sizes, every ISA. The forward
// has two paths: the decode path (few query rows, K and V read in place) and the tiled kernel;
// both are checked against the reference and against each other on extreme values, and the
// KV-cache op (attentionQkvCached) against recomputing the whole sequence.
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

/**
 * A [B, H, T, D] tensor with the values of `a` (contiguous [B, H, T, D]) as a strided view: stored
 * [B, T, H, D + 3] with NaN in the 3 padding floats of every row, narrowed to D and permuted. A
 * kernel that reads past a row's D floats gets NaN.
 */
function stridedView(a: Float32Array, B: number, H: number, T: number, D: number): jl.Tensor {
  const P = D + 3;
  const s = new Float32Array(B * T * H * P).fill(NaN);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        for (let d = 0; d < D; d++) s[((b * T + t) * H + h) * P + d] = a[((b * H + h) * T + t) * D + d];
      }
    }
  }
  return jl.tensor(s, { shape: [B, T, H, P] }).narrow(3, 0, D).permute([0, 2, 1, 3]);
}

/** out and lse of the fused forward (native, no autograd). */
function forward(q: jl.Tensor, k: jl.Tensor, v: jl.Tensor, causal: boolean, scale: number | null = null) {
  const [ho, hl] = native.attentionForward(q.handle, k.handle, v.handle, causal, scale);
  const out = new jl.Tensor(ho);
  const lse = new jl.Tensor(hl);
  return { out: out.data() as Float32Array, lse: lse.data() as Float32Array };
}

/** Elementwise agreement where NaN must meet NaN and an infinity the same infinity. */
function same(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = 2e-4): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      assert.ok(Object.is(a, e), `${what}: element ${i} is ${a}, expected ${e}`);
    } else {
      assert.ok(Math.abs(a - e) / (1 + Math.abs(e)) <= tol, `${what}: element ${i} is ${a}, expected ${e}`);
    }
  }
}

/** Query rows up to which the forward takes the decode path (kDecodeMaxTq in attention_impl.h). */
const DECODE_MAX_TQ = 4;

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

  for (const isa of isas()) {
    it(`${isa}: decode path (Tq 1 and 2) over Tk 1..300 and D 1..256, causal and not, strided views, matches the reference`, () => {
      jl.setIsa(isa);
      const rng = new Rng(21);
      const [B, H] = [1, 2];
      // D: below, at and above one vector of each ISA (4, 8 and 16 lanes), with and without a tail;
      // Tk: one key, partial 4-key groups, more than one 128-key block.
      for (const D of [1, 5, 16, 17, 32, 33, 64, 256]) {
        for (const Tk of [1, 2, 17, 33, 130, 300]) {
          for (const Tq of [1, 2]) {
            const c = { B, H, Tq, Tk, D };
            const qa = randArray(rng, B * H * Tq * D);
            const ka = randArray(rng, B * H * Tk * D);
            const va = randArray(rng, B * H * Tk * D);
            const ga = new Float32Array(B * H * Tq * D);
            const scale = D === 17 ? 0.3 : 1 / Math.sqrt(D);
            for (const causal of [false, true]) {
              const ref = reference(c, qa, ka, va, ga, causal, scale);
              jl.tidy(() => {
                const q = stridedView(qa, B, H, Tq, D);
                const k = stridedView(ka, B, H, Tk, D);
                const v = stridedView(va, B, H, Tk, D);
                const r = forward(q, k, v, causal, D === 17 ? scale : null);
                const where = `${isa} ${JSON.stringify(c)} causal=${causal}`;
                close(r.out, ref.out, `out ${where}`);
                close(r.lse, ref.lse, `lse ${where}`);
              });
            }
          }
        }
      }
    });

    it(`${isa}: decode path and tiled kernel agree on huge scores, NaN and inf`, () => {
      jl.setIsa(isa);
      const rng = new Rng(5);
      // One query row through the decode path (Tq = 1) and the same row as the last of a batch of
      // 40 (the tiled kernel): causal or not, the last row sees every key.
      const [Tk, D, big] = [300, 33, 40];
      const base = {
        q: randArray(rng, big * D),
        k: randArray(rng, Tk * D),
        v: randArray(rng, Tk * D),
      };
      const row = (big - 1) * D;
      const sign = (d: number) => (base.q[row + d] < 0 ? -1 : 1);
      type Inputs = { q: Float32Array; k: Float32Array; v: Float32Array };
      const scenarios: [string, (x: Inputs) => void, (out: Float32Array, lse: Float32Array, x: Inputs) => void][] = [
        ['key 5 scores ~ +1e30, key 200 ~ -1e30: all weight on key 5', (x) => {
          for (let d = 0; d < D; d++) {
            x.k[5 * D + d] = 3e29 * sign(d);
            x.k[200 * D + d] = -3e29 * sign(d);
          }
        }, (out, lse, x) => {
          same(out, x.v.subarray(5 * D, 6 * D), 'out = v[5]', 1e-6);
          assert.ok(lse[0] > 1e29 && Number.isFinite(lse[0]), `lse ${lse[0]}`);
        }],
        ['NaN in q: every score NaN, the row sees no key', (x) => {
          x.q[row + 3] = NaN;
        }, (out, lse) => {
          assert.ok(out.every((o) => o === 0), 'out 0');
          assert.equal(lse[0], -Infinity);
        }],
        ['NaN in one key: NaN row', (x) => {
          x.k[7 * D + 4] = NaN;
        }, (out, lse) => {
          assert.ok(out.every((o) => Number.isNaN(o)), 'out NaN');
          assert.ok(Number.isNaN(lse[0]));
        }],
        ['NaN in every key of the first 128-key block: that block is skipped', (x) => {
          for (let j = 0; j < 128; j++) x.k[j * D + (j % D)] = NaN;
        }, (out, lse) => {
          assert.ok(out.every((o) => Number.isFinite(o)), 'out finite');
          assert.ok(Number.isFinite(lse[0]));
        }],
        ['a score overflowing to +inf: NaN row', (x) => {
          for (let d = 0; d < D; d++) x.k[9 * D + d] = 3e38 * sign(d);
        }, (out) => {
          assert.ok(out.every((o) => Number.isNaN(o)), 'out NaN');
        }],
        ['inf in the value of a key of weight 0: 0 * inf = NaN in that column', (x) => {
          for (let d = 0; d < D; d++) x.k[11 * D + d] = -3e29 * sign(d);
          x.v[11 * D + 2] = Infinity;
        }, (out) => {
          out.forEach((o, d) => assert.ok(d === 2 ? Number.isNaN(o) : Number.isFinite(o), `out[${d}] = ${o}`));
        }],
      ];
      for (const [name, setup, expect] of scenarios) {
        const x = { q: base.q.slice(), k: base.k.slice(), v: base.v.slice() };
        setup(x);
        for (const causal of [false, true]) {
          jl.tidy(() => {
            const k = jl.tensor(x.k, { shape: [1, 1, Tk, D] });
            const v = jl.tensor(x.v, { shape: [1, 1, Tk, D] });
            const qBig = jl.tensor(x.q, { shape: [1, 1, big, D] });
            const q1 = jl.tensor(x.q.slice(row), { shape: [1, 1, 1, D] });
            assert.ok(big > DECODE_MAX_TQ);
            const tiled = forward(qBig, k, v, causal);
            const decode = forward(q1, k, v, causal);
            const where = `${isa} ${name} causal=${causal}`;
            same(decode.out, tiled.out.subarray(row), `out ${where}`);
            same(decode.lse, tiled.lse.subarray(big - 1), `lse ${where}`);
            expect(decode.out, decode.lse, x);
          });
        }
      }
    });

    it(`${isa}: decode path for every Tq it takes, against the tiled kernel (Tq = ${DECODE_MAX_TQ} vs the same rows in a batch)`, () => {
      jl.setIsa(isa);
      const rng = new Rng(9);
      for (const [Tk, D] of [[5, 17], [150, 32], [300, 64]]) {
        const big = 24;
        const qa = randArray(rng, big * D);
        const ka = randArray(rng, Tk * D);
        const va = randArray(rng, Tk * D);
        for (const causal of [false, true]) {
          jl.tidy(() => {
            const k = jl.tensor(ka, { shape: [1, 1, Tk, D] });
            const v = jl.tensor(va, { shape: [1, 1, Tk, D] });
            // The last DECODE_MAX_TQ rows of the batch: causal alignment is at the end in both.
            const n = DECODE_MAX_TQ;
            const tiled = forward(jl.tensor(qa, { shape: [1, 1, big, D] }), k, v, causal);
            const decode = forward(jl.tensor(qa.slice((big - n) * D), { shape: [1, 1, n, D] }), k, v, causal);
            const where = `${isa} Tk=${Tk} D=${D} causal=${causal}`;
            same(decode.out, tiled.out.subarray((big - n) * D), `out ${where}`);
            same(decode.lse, tiled.lse.subarray(big - n), `lse ${where}`);
          });
        }
      }
    });

    it(`${isa}: attentionQkvCached (prefill, then 1-3 positions a step) equals recomputing the whole sequence`, () => {
      jl.setIsa(isa);
      const rng = new Rng(13);
      // [B, H, D, total positions, cache layout]: 'plain' = createLayerCache's [B, H, capacity, D];
      // 'strided' = [B, capacity, H, D] permuted (unit-stride rows, other strides); 'columns' =
      // [B, H, D, capacity] transposed (head dim not unit-stride: the general copy path).
      const configs: [number, number, number, number, string][] = [
        [2, 3, 1, 20, 'plain'],
        [1, 4, 5, 30, 'strided'],
        [2, 2, 17, 40, 'strided'],
        [1, 4, 32, 140, 'plain'],
        [1, 1, 33, 45, 'columns'],
        [1, 2, 64, 35, 'plain'],
      ];
      for (const [B, H, D, total, layout] of configs) {
        const C = H * D;
        const cap = total + 3;
        const xa = randArray(rng, B * total * 3 * C);
        jl.tidy(() => jl.noGrad(() => {
          const x = jl.tensor(xa, { shape: [B, total, 3 * C] });
          const full = jl.nn.selfAttentionQkv(x, H, { causal: true }).data();
          const x5 = x.reshape([B, total, 3, H, D]);
          const [qAll, kAll, vAll] = [0, 1, 2].map((i) => x5.select(2, i).transpose(1, 2));
          const makeCache = (): jl.nn.LayerKVCache => {
            const store = () => {
              if (layout === 'plain') return jl.zeros([B, H, cap, D]);
              if (layout === 'strided') return jl.zeros([B, cap, H, D]).permute([0, 2, 1, 3]);
              return jl.zeros([B, H, D, cap]).transpose(2, 3);
            };
            return { k: store(), v: store(), length: 0, capacity: cap };
          };
          const cache = makeCache();
          const open = makeCache();  // the same steps without the causal mask
          const steps = [13];
          while (steps.reduce((a, b) => a + b, 0) < total) steps.push(1 + (steps.length % 3));
          let pos = 0;
          for (const step of steps) {
            const n = Math.min(step, total - pos);
            const where = `${isa} B=${B} H=${H} D=${D} ${layout} positions ${pos}..${pos + n - 1}`;
            const xs = x.narrow(1, pos, n);  // a strided view when B > 1
            const y = jl.nn.selfAttentionQkv(xs, H, { causal: true }, cache).data();
            const want = full.subarray(pos * C, (pos + n) * C);
            if (B === 1) {
              close(y, want, where);
            } else {
              for (let b = 0; b < B; b++) {
                close(y.subarray(b * n * C, (b + 1) * n * C), full.subarray((b * total + pos) * C, (b * total + pos + n) * C), `${where} b=${b}`);
              }
            }
            // Without the mask every new query sees every key up to pos + n.
            const yo = jl.nn.selfAttentionQkv(xs, H, { causal: false }, open).data();
            const ref = jl.nn.scaledDotProductAttention(qAll.narrow(2, pos, n), kAll.narrow(2, 0, pos + n), vAll.narrow(2, 0, pos + n))
              .transpose(1, 2).reshape([B, n, C]).data();
            close(yo, ref, `${where} causal=false`);
            pos += n;
          }
          assert.equal(cache.length, total);
          close(cache.k.narrow(2, 0, total).data(), kAll.data(), `${isa} ${layout} cached keys`, 0);
          close(cache.v.narrow(2, 0, total).data(), vAll.data(), `${isa} ${layout} cached values`, 0);
        }));
      }
    });
  }

  /**
   * A [B, H, T, D] gradient target as the backward's `into` arguments take it: a strided view of
   * [B, T, H, D + 3] storage filled with NaN. Returns the view and a reader of the values (as
   * contiguous [B, H, T, D]) that also checks that the padding floats were not written.
   */
  function intoView(B: number, H: number, T: number, D: number) {
    const P = D + 3;
    const base = jl.tensor(new Float32Array(B * T * H * P).fill(NaN), { shape: [B, T, H, P] });
    const view = base.narrow(3, 0, D).permute([0, 2, 1, 3]);
    const read = (what: string): Float32Array => {
      const s = base.data() as Float32Array;
      const out = new Float32Array(B * H * T * D);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < T; i++) {
            const row = ((b * T + i) * H + h) * P;
            for (let d = 0; d < D; d++) out[((b * H + h) * T + i) * D + d] = s[row + d];
            for (let d = D; d < P; d++) assert.ok(Number.isNaN(s[row + d]), `${what}: padding written at b=${b} h=${h} t=${i}`);
          }
        }
      }
      return out;
    };
    return { view, read };
  }

  /** Forward and backward through the native ops on strided views, gradients written into strided targets. */
  function runStrided(c: Case, qa: Float32Array, ka: Float32Array, va: Float32Array, ga: Float32Array, causal: boolean, scale: number | null) {
    const { B, H, Tq, Tk, D } = c;
    return jl.tidy(() => {
      const q = stridedView(qa, B, H, Tq, D);
      const k = stridedView(ka, B, H, Tk, D);
      const v = stridedView(va, B, H, Tk, D);
      const g = stridedView(ga, B, H, Tq, D);
      const [ho, hl] = native.attentionForward(q.handle, k.handle, v.handle, causal, scale);
      const out = new jl.Tensor(ho);
      const lse = new jl.Tensor(hl);
      const dq = intoView(B, H, Tq, D);
      const dk = intoView(B, H, Tk, D);
      const dv = intoView(B, H, Tk, D);
      const hs = native.attentionBackward(g.handle, q.handle, k.handle, v.handle, out.handle, lse.handle, causal, scale,
        dq.view.handle, dk.view.handle, dv.view.handle);
      assert.deepEqual(hs, [null, null, null]);
      return {
        out: out.contiguous().data() as Float32Array, lse: lse.data() as Float32Array,
        dq: dq.read('dq'), dk: dk.read('dk'), dv: dv.read('dv'),
      };
    });
  }

  // The tiled kernels: 8-row tiles (tails of 1..7 rows), 32-row backward chunks, 128-key blocks,
  // head sizes around every ISA's vector width, queries fewer or more than keys (the causal
  // diagonal shifted either way), several heads (each prefetches the next one's rows).
  const TILED: Case[] = [
    { B: 1, H: 2, Tq: 9, Tk: 9, D: 1 },
    { B: 2, H: 1, Tq: 7, Tk: 7, D: 5 },  // the backward of a tail-only tile (the forward decodes)
    { B: 1, H: 2, Tq: 17, Tk: 17, D: 17 },
    { B: 1, H: 3, Tq: 31, Tk: 31, D: 33 },
    { B: 2, H: 2, Tq: 33, Tk: 33, D: 32 },
    { B: 1, H: 2, Tq: 40, Tk: 300, D: 32 },  // three key blocks, diagonal at key 260
    { B: 1, H: 2, Tq: 65, Tk: 20, D: 64 },  // the first 45 rows see no key when causal
    { B: 1, H: 1, Tq: 130, Tk: 130, D: 16 },
    { B: 1, H: 1, Tq: 20, Tk: 257, D: 256 },
  ];

  for (const isa of isas()) {
    it(`${isa}: tiled forward and backward (row tails, chunks, key blocks, D 1..256) on strided views, gradients into strided targets`, () => {
      jl.setIsa(isa);
      const rng = new Rng(31);
      for (const c of TILED) {
        const { B, H, Tq, Tk, D } = c;
        const qa = randArray(rng, B * H * Tq * D);
        const ka = randArray(rng, B * H * Tk * D);
        const va = randArray(rng, B * H * Tk * D);
        const ga = randArray(rng, B * H * Tq * D);
        const scale = D === 17 ? 0.3 : 1 / Math.sqrt(D);
        for (const causal of [false, true]) {
          const ref = reference(c, qa, ka, va, ga, causal, scale);
          const r = runStrided(c, qa, ka, va, ga, causal, D === 17 ? scale : null);
          const where = `${isa} ${JSON.stringify(c)} causal=${causal}`;
          close(r.out, ref.out, `out ${where}`);
          close(r.lse, ref.lse, `lse ${where}`);
          close(r.dq, ref.dq, `dq ${where}`, 5e-4);
          close(r.dk, ref.dk, `dk ${where}`, 5e-4);
          close(r.dv, ref.dv, `dv ${where}`, 5e-4);
        }
      }
    });

    it(`${isa}: a masked (query, key) pair takes no part: inf in a future value, NaN in a gradient row`, () => {
      jl.setIsa(isa);
      const rng = new Rng(17);
      const c = { B: 1, H: 1, Tq: 40, Tk: 40, D: 33 };
      const { Tq, Tk, D } = c;
      const qa = randArray(rng, Tq * D);
      const ka = randArray(rng, Tk * D);
      const va = randArray(rng, Tk * D);
      const ga = randArray(rng, Tq * D);
      const finiteRow = (a: Float32Array, i: number) => a.subarray(i * D, (i + 1) * D).every(Number.isFinite);
      // inf in the value of key 10 (inside a tile whose other rows do not see it).
      const vInf = va.slice();
      vInf[10 * D + 2] = Infinity;
      const r = runStrided(c, qa, ka, vInf, ga, true, null);
      for (let i = 0; i < Tq; i++) {
        if (i < 10) assert.ok(finiteRow(r.out, i), `${isa}: row ${i} does not see key 10 but got ${r.out.subarray(i * D, i * D + 4)}`);
        else assert.ok(!Number.isFinite(r.out[i * D + 2]) && r.out.subarray(i * D, (i + 1) * D).every((x, d) => d === 2 || Number.isFinite(x)), `${isa}: row ${i}`);
      }
      // NaN in the output gradient of row 20: the keys after 20 (masked for row 20) keep finite
      // gradients, the other rows' dq stays finite.
      const gNaN = ga.slice();
      gNaN[20 * D + 7] = NaN;
      const b = runStrided(c, qa, ka, va, gNaN, true, null);
      for (let j = 0; j < Tk; j++) {
        if (j > 20) {
          assert.ok(finiteRow(b.dk, j) && finiteRow(b.dv, j), `${isa}: key ${j} is masked for row 20 but its gradient is not finite`);
        } else {
          assert.ok(!finiteRow(b.dv, j), `${isa}: key ${j} is seen by row 20: NaN expected in dv`);
        }
      }
      for (let i = 0; i < Tq; i++) assert.equal(finiteRow(b.dq, i), i !== 20, `${isa}: dq row ${i}`);
    });
  }

  it('gives bit-identical values and gradients on 1 and 2 threads', () => {
    const rng = new Rng(41);
    const c = { B: 2, H: 3, Tq: 70, Tk: 70, D: 33 };
    const { B, H, Tq, Tk, D } = c;
    const qa = randArray(rng, B * H * Tq * D);
    const ka = randArray(rng, B * H * Tk * D);
    const va = randArray(rng, B * H * Tk * D);
    const ga = randArray(rng, B * H * Tq * D);
    const threads = jl.getNumThreads();
    try {
      jl.setNumThreads(1);
      const one = runStrided(c, qa, ka, va, ga, true, null);
      jl.setNumThreads(2);
      const two = runStrided(c, qa, ka, va, ga, true, null);
      for (const key of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
        assert.ok(Buffer.from(one[key].buffer).equals(Buffer.from(two[key].buffer)), `${key} differs between 1 and 2 threads`);
      }
    } finally {
      jl.setNumThreads(threads);
    }
  });

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
