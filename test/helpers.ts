// Shared test utilities: a seeded PRNG, float64 reference arrays (with strided views, NumPy
// broadcasting and reductions), tolerant comparison aware of NaN and ±Infinity, error checks and
// a leak check built on jl.memory().
import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';

// ---------------------------------------------------------------- random numbers

/** A small seeded PRNG (mulberry32): the same sequence on every machine. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  bool(p = 0.5): boolean {
    return this.next() < p;
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
  /** n float32-representable values in [lo, hi). */
  floats(n: number, lo = -1, hi = 1): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.fround(this.uniform(lo, hi));
    return out;
  }
  ints(n: number, lo: number, hi: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(lo, hi);
    return out;
  }
}

// ---------------------------------------------------------------- float64 reference arrays

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= Math.max(shape[i], 1);
  }
  return s;
}

/** A dense row-major float64 array with a shape: the reference the library is compared with. */
export class Ref {
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {
    if (numel(shape) !== data.length) throw new Error(`Ref: shape [${shape}] does not match ${data.length} values`);
  }
  static fromTensor(t: jl.Tensor): Ref {
    return new Ref(t.shape, Float64Array.from(t.data() as ArrayLike<number>));
  }
  static fill(shape: number[], v: number): Ref {
    return new Ref(shape, new Float64Array(numel(shape)).fill(v));
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.data.length;
  }
  at(idx: number[]): number {
    let off = 0;
    const st = contiguousStrides(this.shape);
    for (let i = 0; i < idx.length; i++) off += idx[i] * st[i];
    return this.data[off];
  }
  map(f: (x: number, i: number) => number): Ref {
    return new Ref(this.shape.slice(), this.data.map(f));
  }
  /** Materialises a strided view of this (contiguous) array's storage. */
  strided(shape: number[], strides: number[], offset: number): Ref {
    const out = new Float64Array(numel(shape));
    const idx = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < out.length; i++) {
      let off = offset;
      for (let d = 0; d < shape.length; d++) off += idx[d] * strides[d];
      out[i] = this.data[off];
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    return new Ref(shape.slice(), out);
  }
  reshape(shape: number[]): Ref {
    return new Ref(shape.slice(), this.data);
  }
  permute(order: number[]): Ref {
    const st = contiguousStrides(this.shape);
    return this.strided(order.map((a) => this.shape[a]), order.map((a) => st[a]), 0);
  }
  transpose(a: number, b: number): Ref {
    const order = this.shape.map((_, i) => i);
    a = a < 0 ? a + this.ndim : a;
    b = b < 0 ? b + this.ndim : b;
    [order[a], order[b]] = [order[b], order[a]];
    return this.permute(order);
  }
  /** Python slice semantics (step > 0). */
  slice(axis: number, start = 0, end = Number.MAX_SAFE_INTEGER, step = 1): Ref {
    axis = axis < 0 ? axis + this.ndim : axis;
    const n = this.shape[axis];
    const clampi = (v: number) => (v < 0 ? Math.max(v + n, 0) : Math.min(v, n));
    const s = clampi(start);
    const e = clampi(end);
    const len = e > s ? Math.ceil((e - s) / step) : 0;
    const st = contiguousStrides(this.shape);
    const shape = this.shape.slice();
    shape[axis] = len;
    const strides = st.slice();
    strides[axis] = st[axis] * step;
    return this.strided(shape, strides, len > 0 ? s * st[axis] : 0);
  }
  select(axis: number, index: number): Ref {
    axis = axis < 0 ? axis + this.ndim : axis;
    const n = this.shape[axis];
    const i = index < 0 ? index + n : index;
    const st = contiguousStrides(this.shape);
    const shape = this.shape.filter((_, d) => d !== axis);
    const strides = st.filter((_, d) => d !== axis);
    return this.strided(shape, strides, i * st[axis]);
  }
  expand(shape: number[]): Ref {
    const lead = shape.length - this.ndim;
    const st = contiguousStrides(this.shape);
    const strides = shape.map((d, i) => (i < lead ? 0 : this.shape[i - lead] === d ? st[i - lead] : 0));
    return this.strided(shape, strides, 0);
  }
  toNested(): unknown {
    if (this.ndim === 0) return this.data[0];
    let pos = 0;
    const build = (d: number): unknown[] => {
      const out: unknown[] = [];
      for (let i = 0; i < this.shape[d]; i++) out.push(d === this.ndim - 1 ? this.data[pos++] : build(d + 1));
      return out;
    };
    return build(0);
  }
}

export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = i < n - a.length ? 1 : a[i - (n - a.length)];
    const y = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (x !== y && x !== 1 && y !== 1) throw new Error(`cannot broadcast [${a}] and [${b}]`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function refBinary(a: Ref, b: Ref, f: (x: number, y: number) => number): Ref {
  const shape = broadcastShapes(a.shape, b.shape);
  const ea = a.expand(shape);
  const eb = b.expand(shape);
  return new Ref(shape, ea.data.map((x, i) => f(x, eb.data[i])));
}

export function refWhere(c: Ref, a: Ref, b: Ref): Ref {
  const shape = broadcastShapes(broadcastShapes(c.shape, a.shape), b.shape);
  const ec = c.expand(shape);
  const ea = a.expand(shape);
  const eb = b.expand(shape);
  return new Ref(shape, ec.data.map((x, i) => (x !== 0 ? ea.data[i] : eb.data[i])));
}

/**
 * Reduces over `axes` (empty = all): `f` gets the reduced values (in row-major order of the
 * reduced axes) and returns one number.
 */
export function refReduce(a: Ref, axes: number[], keepDims: boolean, f: (xs: number[]) => number): Ref {
  const nd = a.ndim;
  const red = new Set(axes.length === 0 ? a.shape.map((_, i) => i) : axes.map((x) => (x < 0 ? x + Math.max(nd, 1) : x)));
  const keptAxes = a.shape.map((_, i) => i).filter((i) => !red.has(i));
  const redAxes = a.shape.map((_, i) => i).filter((i) => red.has(i));
  const outShape: number[] = [];
  for (let d = 0; d < nd; d++) {
    if (!red.has(d)) outShape.push(a.shape[d]);
    else if (keepDims) outShape.push(1);
  }
  const keptShape = keptAxes.map((d) => a.shape[d]);
  const redShape = redAxes.map((d) => a.shape[d]);
  const st = contiguousStrides(a.shape);
  const out = new Float64Array(numel(keptShape));
  const unravel = (i: number, shape: number[]): number[] => {
    const idx = new Array<number>(shape.length);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = i % shape[d];
      i = Math.floor(i / shape[d]);
    }
    return idx;
  };
  for (let o = 0; o < out.length; o++) {
    const ki = unravel(o, keptShape);
    let base = 0;
    keptAxes.forEach((d, j) => (base += ki[j] * st[d]));
    const xs: number[] = [];
    const nr = numel(redShape);
    for (let r = 0; r < nr; r++) {
      const ri = unravel(r, redShape);
      let off = base;
      redAxes.forEach((d, j) => (off += ri[j] * st[d]));
      xs.push(a.data[off]);
    }
    out[o] = f(xs);
  }
  return new Ref(outShape, out);
}

export function refMatmul2d(a: Ref, b: Ref): Ref {
  const [m, k] = a.shape;
  const n = b.shape[1];
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a.data[i * k + p] * b.data[p * n + j];
      out[i * n + j] = s;
    }
  }
  return new Ref([m, n], out);
}

/** NumPy matmul on references (1-D promotion, broadcast batch dims). */
export function refMatmul(a: Ref, b: Ref): Ref {
  const a2 = a.ndim === 1 ? a.reshape([1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? b.reshape([b.shape[0], 1]) : b;
  const [m, k] = a2.shape.slice(-2);
  const n = b2.shape[b2.ndim - 1];
  const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const ea = a2.expand([...batch, m, k]);
  const eb = b2.expand([...batch, k, n]);
  const nb = numel(batch);
  const out = new Float64Array(nb * m * n);
  for (let i = 0; i < nb; i++) {
    const r = refMatmul2d(
      new Ref([m, k], ea.data.subarray(i * m * k, (i + 1) * m * k)),
      new Ref([k, n], eb.data.subarray(i * k * n, (i + 1) * k * n)),
    );
    out.set(r.data, i * m * n);
  }
  let shape = [...batch, m, n];
  if (b.ndim === 1) shape = shape.slice(0, -1);
  if (a.ndim === 1) shape = b.ndim === 1 ? shape.slice(0, -1) : [...shape.slice(0, -2), n];
  return new Ref(shape, out);
}

// ---------------------------------------------------------------- special functions

/** erf to ~1e-15 (series for small |x|, continued fraction for the tail). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return 1;
  if (x === -Infinity) return -1;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return x > 0 ? 1 - erfc : erfc - 1;
}

/** Round half to even (what C's nearbyint does in the default rounding mode). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.round(x);
  if (Math.abs(x % 1) === 0.5 && r % 2 !== 0) return r - 1;
  return r === 0 ? (x < 0 || Object.is(x, -0) ? -0 : 0) : r;
}

export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));

// ---------------------------------------------------------------- comparison

export interface Tolerance {
  rtol?: number;
  atol?: number;
}

/**
 * Whether actual is within atol + rtol·|expected| of expected. NaN equals only NaN; an infinity
 * equals only the same infinity.
 */
export function approxEqual(actual: number, expected: number, { rtol = 1e-5, atol = 1e-6 }: Tolerance = {}): boolean {
  if (Number.isNaN(expected) || Number.isNaN(actual)) return Number.isNaN(expected) && Number.isNaN(actual);
  if (!Number.isFinite(expected) || !Number.isFinite(actual)) return actual === expected;
  return Math.abs(actual - expected) <= atol + rtol * Math.abs(expected);
}

/** What assertClose compares: tensors, references, flat or nested arrays, single numbers. */
export type Comparable = jl.Tensor | Ref | ArrayLike<number> | number | readonly unknown[];

function flatValues(x: Comparable): { shape: number[] | null; values: ArrayLike<number> } {
  if (x instanceof jl.Tensor) return { shape: x.shape, values: x.data() };
  if (x instanceof Ref) return { shape: x.shape, values: x.data };
  if (typeof x === 'number') return { shape: [], values: [x] };
  if (Array.isArray(x)) return { shape: null, values: (x as unknown[]).flat(Infinity) as number[] };
  return { shape: null, values: x as ArrayLike<number> };
}

/**
 * Asserts that actual matches expected element by element (shapes too, when both have one).
 * Float32 results are compared with the expected value rounded to float32, so that overflow to
 * ±Infinity in float32 counts as a match.
 */
export function assertClose(
  actual: Comparable,
  expected: Comparable,
  tol: Tolerance = {},
  what = '',
): void {
  const a = flatValues(actual);
  const e = flatValues(expected);
  const label = what ? `${what}: ` : '';
  if (a.shape && e.shape) assert.deepEqual(a.shape, e.shape, `${label}shape [${a.shape}] differs from expected [${e.shape}]`);
  assert.equal(a.values.length, e.values.length, `${label}${a.values.length} values, expected ${e.values.length}`);
  const f32 = actual instanceof jl.Tensor && actual.dtype === 'float32';
  let bad = 0;
  let first = '';
  for (let i = 0; i < a.values.length; i++) {
    const ev = f32 ? Math.fround(e.values[i]) : e.values[i];
    if (!approxEqual(a.values[i], ev, tol)) {
      if (bad === 0) first = `at flat index ${i}: got ${a.values[i]}, expected ${e.values[i]}`;
      bad++;
    }
  }
  assert.equal(bad, 0, `${label}${bad} of ${a.values.length} values differ (rtol ${tol.rtol ?? 1e-5}, atol ${tol.atol ?? 1e-6}); first ${first}`);
}

/** Asserts exact equality of values (and shape and, when given, dtype). */
export function assertValues(t: jl.Tensor, expected: ArrayLike<number> | Ref, dtype?: jl.DType, shape?: number[]): void {
  if (dtype) assert.equal(t.dtype, dtype, `dtype ${t.dtype}, expected ${dtype}`);
  if (shape) assert.deepEqual(t.shape, shape);
  if (expected instanceof Ref) assert.deepEqual(t.shape, expected.shape);
  const ev = expected instanceof Ref ? expected.data : expected;
  assert.deepEqual(Array.from(t.data() as ArrayLike<number>), Array.from(ev));
}

// ---------------------------------------------------------------- errors

/** Runs fn, asserts it throws a JouleError with `code`, and (optionally) a message matching `message`. */
export function expectJouleError(fn: () => unknown, code: jl.ErrorCode, message?: RegExp): jl.JouleError {
  let caught: unknown = undefined;
  let threw = false;
  try {
    fn();
  } catch (e) {
    threw = true;
    caught = e;
  }
  assert.ok(threw, `expected a JouleError ${code}, but nothing was thrown`);
  assert.ok(caught instanceof jl.JouleError, `expected a JouleError ${code}, got ${String(caught)} (${(caught as Error)?.constructor?.name})`);
  const err = caught as jl.JouleError;
  assert.equal(err.code, code, `expected code ${code}, got ${err.code}: ${err.message}`);
  assert.ok(err.message.length > 10, `the message should say what was expected, got '${err.message}'`);
  if (message) assert.match(err.message, message);
  return err;
}

// ---------------------------------------------------------------- memory

export interface MemorySnapshot {
  tensors: number;
  bytes: number;
}

export function snapshot(): MemorySnapshot {
  const m = jl.memory();
  return { tensors: m.tensors, bytes: m.bytes };
}

/**
 * Runs fn inside jl.tidy and asserts that live tensors and bytes are what they were before.
 * Finalizers of collected tensors run only from the event loop, so a synchronous fn sees no
 * changes other than its own.
 */
export function assertNoLeak(fn: () => unknown): void {
  const before = snapshot();
  jl.tidy(() => {
    fn();
  });
  const after = snapshot();
  assert.deepEqual(after, before, `memory changed: ${JSON.stringify(before)} before, ${JSON.stringify(after)} after`);
}

/** mocha `it` whose body runs inside tidy, followed by the leak check. */
export function itTidy(title: string, fn: () => void): Mocha.Test {
  return it(title, () => assertNoLeak(fn));
}

// ---------------------------------------------------------------- tensors with a known reference

export type Layout = 'contiguous' | 'transposed' | 'permuted' | 'stepped' | 'expanded' | 'offset';
export const LAYOUTS: readonly Layout[] = ['contiguous', 'transposed', 'permuted', 'stepped', 'expanded', 'offset'];

/**
 * A float32 (or other dtype) tensor of `shape` laid out as `layout` (a non-contiguous view where
 * the shape allows one), with its float64 reference computed independently in JavaScript.
 */
export function makeTensor(
  rng: Rng,
  shape: number[],
  layout: Layout = 'contiguous',
  { lo = -2, hi = 2, dtype = 'float32' as jl.DType, ints = false } = {},
): { t: jl.Tensor; ref: Ref } {
  const gen = (n: number) => (ints || dtype !== 'float32' ? rng.ints(n, lo, hi) : rng.floats(n, lo, hi));
  const base = (bshape: number[]) => {
    const ref = new Ref(bshape, gen(numel(bshape)));
    return { bt: jl.tensor(toTyped(ref.data, dtype), { shape: bshape, dtype }), bref: ref };
  };
  const nd = shape.length;
  if (layout === 'transposed' && nd >= 2) {
    const bshape = shape.slice();
    [bshape[nd - 2], bshape[nd - 1]] = [bshape[nd - 1], bshape[nd - 2]];
    const { bt, bref } = base(bshape);
    return { t: bt.transpose(-2, -1), ref: bref.transpose(-2, -1) };
  }
  if (layout === 'permuted' && nd >= 2) {
    // out axis i is base axis order[i]
    const order = rng.shuffle(shape.map((_, i) => i));
    if (order.every((v, i) => v === i)) order.reverse();
    const bshape = new Array<number>(nd);
    order.forEach((src, i) => (bshape[src] = shape[i]));
    const { bt, bref } = base(bshape);
    return { t: bt.permute(order), ref: bref.permute(order) };
  }
  if (layout === 'stepped' && nd >= 1) {
    const d = rng.int(0, nd);
    const bshape = shape.slice();
    bshape[d] = shape[d] * 2 + 1;
    const { bt, bref } = base(bshape);
    return { t: bt.slice(d, 1, undefined, 2), ref: bref.slice(d, 1, undefined, 2) };
  }
  if (layout === 'expanded' && nd >= 1) {
    const d = rng.int(0, nd);
    const bshape = shape.slice();
    bshape[d] = 1;
    const { bt, bref } = base(bshape);
    return { t: bt.expand(shape), ref: bref.expand(shape) };
  }
  if (layout === 'offset' && nd >= 1) {
    // A slice that starts inside its storage and stops before its end.
    const d = nd - 1;
    const bshape = shape.slice();
    bshape[d] = shape[d] + 3;
    const { bt, bref } = base(bshape);
    return { t: bt.narrow(d, 2, shape[d]), ref: bref.slice(d, 2, 2 + shape[d]) };
  }
  const { bt, bref } = base(shape);
  return { t: bt, ref: bref };
}

export function toTyped(values: ArrayLike<number>, dtype: jl.DType): jl.TypedArray {
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'int32': return Int32Array.from(values);
    case 'int8': return Int8Array.from(values);
    case 'uint8': return Uint8Array.from(values);
  }
}

/** Whether a tensor's layout is contiguous (through the addon's own view of it). */
export function isContiguous(t: jl.Tensor): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../lib/native') as typeof import('../lib/native');
  return native.layout(t.handle).contiguous;
}

export function sharesStorage(a: jl.Tensor, b: jl.Tensor): boolean {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { native } = require('../lib/native') as typeof import('../lib/native');
  return native.sameStorage(a.handle, b.handle);
}
