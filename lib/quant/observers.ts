// Observers for static calibration: they watch the activations a layer receives on calibration
// batches and turn what they saw into a symmetric int8 scale.
import { native } from '../native';
import { Tensor, wrap } from '../tensor';

export interface Observer {
  observe(x: Tensor): void;
  /** The symmetric scale for [-qmax, qmax] (0 when nothing non-zero was seen). */
  scale(qmax?: number): number;
  readonly count: number;
}

/** Tracks the running min and max: scale = max(|min|, |max|) / qmax. */
export class MinMaxObserver implements Observer {
  min = Infinity;
  max = -Infinity;
  count = 0;
  observe(x: Tensor): void {
    const mx = wrap(native.reduce('max', x.handle, [], false));
    const mn = wrap(native.reduce('min', x.handle, [], false));
    this.max = Math.max(this.max, mx.item());
    this.min = Math.min(this.min, mn.item());
    mx.dispose();
    mn.dispose();
    this.count++;
  }
  scale(qmax = 127): number {
    if (this.count === 0) return 0;
    return Math.max(Math.abs(this.min), Math.abs(this.max)) / qmax;
  }
}

/**
 * Clips the range at a percentile of |x| (default 99.99), so that a few extreme activations do
 * not stretch the scale for all the others. Keeps a uniform sample (reservoir) of |x| values.
 */
export class PercentileObserver implements Observer {
  count = 0;
  private sample: Float32Array;
  private filled = 0;
  private seen = 0;
  private rng = 0x9e3779b9;
  constructor(readonly percentile = 99.99, readonly capacity = 1 << 18) {
    if (!(percentile > 0 && percentile <= 100)) throw new RangeError(`PercentileObserver: percentile must be in (0, 100], got ${percentile}`);
    this.sample = new Float32Array(capacity);
  }
  private random(): number {
    this.rng ^= this.rng << 13;
    this.rng ^= this.rng >>> 17;
    this.rng ^= this.rng << 5;
    return (this.rng >>> 0) / 4294967296;
  }
  observe(x: Tensor): void {
    const d = x.data() as Float32Array;
    for (let i = 0; i < d.length; i++) {
      const v = Math.abs(d[i]);
      if (this.filled < this.capacity) {
        this.sample[this.filled++] = v;
      } else {
        const j = Math.floor(this.random() * (this.seen + 1));
        if (j < this.capacity) this.sample[j] = v;
      }
      this.seen++;
    }
    this.count++;
  }
  scale(qmax = 127): number {
    if (this.filled === 0) return 0;
    const s = this.sample.slice(0, this.filled).sort();
    const idx = Math.min(this.filled - 1, Math.max(0, Math.ceil((this.percentile / 100) * this.filled) - 1));
    return s[idx] / qmax;
  }
}
