// A small seeded generator for shuffling and splitting. It is independent of the native RNG
// (manualSeed) on purpose: data order must not shift when a model draws more or fewer random
// numbers, and a permutation must be recomputable from (seed, epoch) alone when resuming.

/** sfc32 seeded through splitmix32: fast, 128-bit state, good statistical quality. */
export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(...seeds: number[]) {
    let s = 0x9e3779b9;
    const mix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    // Fold every seed (any safe integer, split into 32-bit halves) into the splitmix state.
    for (const seed of seeds) {
      const lo = seed >>> 0;
      const hi = Math.floor(seed / 4294967296) >>> 0;
      s = (s ^ lo) | 0;
      mix();
      s = (s ^ hi) | 0;
      mix();
    }
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  below(n: number): number {
    if (n <= 0x100000000) {
      // Rejection sampling on 32 bits.
      const limit = 0x100000000 - (0x100000000 % n);
      let v: number;
      do v = this.nextUint32();
      while (v >= limit);
      return v % n;
    }
    return Math.floor(this.next() * n);
  }
}

/** A permutation of 0..n-1 (Fisher-Yates), determined by the seeds. */
export function permutation(n: number, ...seeds: number[]): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const rng = new SeededRandom(...seeds);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}
