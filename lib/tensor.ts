// The Tensor class, its storage handle and lifetime (dispose, tidy, keep), and creation.
// Operations are defined in ops/ and attached to Tensor.prototype there.
import { checkFinite, checkInt, checkOptions, checkShape, describe, fail, JouleError } from './errors';
import { DTypeName, Handle, native } from './native';

export type DType = DTypeName;
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type TypedArray = Float32Array | Int32Array | Int8Array | Uint8Array;
export type NestedArray = number | boolean | NestedArray[];
export type TensorLike = Tensor | number;

export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  /** Given the gradient of the output, the gradients of the inputs (null where not needed). */
  backward(grad: Tensor): (Tensor | null)[];
  /** Tensors only the backward uses (not graph nodes): freed with the graph after backward(). */
  readonly saved?: readonly Tensor[];
}

const DTYPES: readonly DType[] = ['float32', 'int32', 'int8', 'uint8'];

export function checkDType(value: unknown, name = 'dtype'): DType {
  if (!DTYPES.includes(value as DType)) {
    fail('DTYPE', `expected ${name} to be one of ${DTYPES.join(', ')}, got ${describe(value)}`);
  }
  return value as DType;
}

export function checkDevice(value: unknown, name = 'device'): Device {
  if (typeof value !== 'string' || !/^(cpu|cuda(:\d{1,3})?)$/.test(value)) {
    fail('DEVICE', `expected ${name} to be 'cpu', 'cuda' or 'cuda:N', got ${describe(value)}`);
  }
  return (value === 'cuda' ? 'cuda:0' : value) as Device;
}

// ---- lifetime: scopes opened by tidy() ----

const scopes: Set<Tensor>[] = [];

function track(t: Tensor): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

export class Tensor {
  /** @internal */ _handle: Handle | null;
  /** @internal */ _kept = false;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;
  private _device: Device | undefined;

  /** Whether gradients flow to this tensor; set on leaves (parameters) with requiresGrad_(). */
  requiresGrad = false;
  /** The accumulated gradient of a leaf after backward(). */
  grad: Tensor | null = null;
  /** The operation that produced this tensor, when it is part of an autograd graph. */
  gradFn: GradNode | null = null;

  /** @internal Wraps a handle the addon returned; library code only. */
  constructor(handle: Handle) {
    this._handle = handle;
    track(this);
  }

  /** @internal */
  get handle(): Handle {
    if (this._handle === null) fail('DISPOSED', 'this tensor was disposed and can no longer be used');
    return this._handle;
  }

  private meta(): void {
    const [shape, dtype, device] = native.meta(this.handle);
    this._shape = shape;
    this._dtype = dtype;
    this._device = device as Device;
  }

  get shape(): number[] {
    if (this._shape === undefined) this.meta();
    return this._shape!.slice();
  }
  get dtype(): DType {
    if (this._dtype === undefined) this.meta();
    return this._dtype!;
  }
  get device(): Device {
    if (this._device === undefined) this.meta();
    return this._device!;
  }
  get ndim(): number {
    if (this._shape === undefined) this.meta();
    return this._shape!.length;
  }
  /** Number of elements. */
  get size(): number {
    if (this._shape === undefined) this.meta();
    return this._shape!.reduce((a, b) => a * b, 1);
  }
  get isDisposed(): boolean {
    return this._handle === null;
  }
  /** Whether this tensor is a leaf of the autograd graph (not produced by a recorded op). */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** Frees the tensor now. Views of it keep their shared storage alive. Safe to call twice. */
  dispose(): void {
    if (this._handle === null) return;
    native.dispose(this._handle);
    this._handle = null;
    for (const s of scopes) s.delete(this);
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
    this.gradFn = null;
  }

  /** Excludes this tensor from every enclosing tidy(): it lives until dispose(). */
  keep(): this {
    this._kept = true;
    for (const s of scopes) s.delete(this);
    return this;
  }

  /** Marks a leaf as requiring gradients (in place) and returns it. */
  requiresGrad_(value = true): this {
    if (value && this.dtype !== 'float32') fail('DTYPE', `only float32 tensors can require gradients, got ${this.dtype}`);
    if (!this.isLeaf) fail('INVALID_ARGUMENT', 'requiresGrad_ can only be set on a leaf tensor; use detach() first');
    this.requiresGrad = value;
    return this;
  }

  /** A copy of the elements in row-major order, as a TypedArray of the tensor's dtype. */
  data(): TypedArray {
    const buf = native.toBuffer(this.handle);
    switch (this.dtype) {
      case 'float32': return new Float32Array(buf);
      case 'int32': return new Int32Array(buf);
      case 'int8': return new Int8Array(buf);
      case 'uint8': return new Uint8Array(buf);
    }
  }

  /** The elements as nested arrays (a plain number for a 0-d tensor). */
  toArray(): NestedArray {
    const flat = this.data();
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    let pos = 0;
    const build = (d: number): NestedArray[] => {
      const out: NestedArray[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? flat[pos++] : build(d + 1));
      return out;
    };
    return build(0);
  }

  /** The value of a one-element tensor. */
  item(): number {
    return native.item(this.handle);
  }

  toString(): string {
    if (this._handle === null) return 'Tensor(disposed)';
    const shape = this.shape;
    const head = `Tensor(shape=[${shape.join(', ')}], dtype=${this.dtype}, device=${this.device}${this.requiresGrad ? ', requiresGrad' : ''})`;
    const n = this.size;
    const flat = this.data();
    const fmt = (v: number) => (this.dtype === 'float32' ? formatFloat(v) : String(v));
    if (shape.length === 0) return `${head}\n${fmt(flat[0])}`;
    const edge = 3;
    let pos = 0;
    const render = (d: number, indent: string): string => {
      const len = shape[d];
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      const parts: string[] = [];
      const start = pos;
      for (let i = 0; i < len; i++) {
        if (n > 1000 && len > 2 * edge && i === edge) {
          parts.push('...');
          i = len - edge - 1;
          pos = start + (i + 1) * stride;
          continue;
        }
        pos = start + i * stride;
        parts.push(d === shape.length - 1 ? fmt(flat[pos]) : render(d + 1, indent + ' '));
      }
      return d === shape.length - 1 ? `[${parts.join(', ')}]` : `[${parts.join(',\n' + indent + ' ')}]`;
    };
    return `${head}\n${render(0, '')}`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function formatFloat(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 1e7) return v.toFixed(1);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-4 || a >= 1e7) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
}

/** @internal Wraps a native result. */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}

// ---- tidy / memory ----

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs fn and disposes every tensor made inside it that it does not return (in a tensor, an
 * array or a plain object) and that was not kept. Nestable. fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  if (typeof fn !== 'function') fail('INVALID_ARGUMENT', `tidy: expected a function, got ${describe(fn)}`);
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of scope) t.dispose();
    fail('INVALID_ARGUMENT', 'tidy: the function returned a Promise; tidy only works with synchronous functions');
  }
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keepers.has(t)) {
      if (parent) parent.add(t);
    } else {
      t.dispose();
    }
  }
  return result;
}

/** Disposes tensors (in any nesting of arrays and plain objects). */
export function dispose(value: unknown): void {
  const all = new Set<Tensor>();
  collect(value, all);
  for (const t of all) t.dispose();
}

export interface MemoryInfo {
  /** Live tensors on all devices. */
  tensors: number;
  /** Bytes held by live tensors on all devices. */
  bytes: number;
  devices: Record<string, { tensors: number; bytes: number; cachedBytes: number }>;
}

/** Live tensors and bytes, in total and per device. */
export function memory(): MemoryInfo {
  const out: MemoryInfo = { tensors: 0, bytes: 0, devices: {} };
  for (const d of native.memory()) {
    out.tensors += d.tensors;
    out.bytes += d.bytes;
    out.devices[d.device] = { tensors: d.tensors, bytes: d.bytes, cachedBytes: d.cachedBytes };
  }
  return out;
}

// ---- creation ----

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function createOptions(options: unknown, defaultDType: DType = 'float32'): Required<CreateOptions> {
  const o = checkOptions(options, 'options');
  for (const k of Object.keys(o)) {
    if (!['dtype', 'device', 'requiresGrad', 'shape'].includes(k)) fail('INVALID_ARGUMENT', `unknown option '${k}'`);
  }
  return {
    dtype: o.dtype === undefined ? defaultDType : checkDType(o.dtype),
    device: o.device === undefined ? 'cpu' : checkDevice(o.device),
    requiresGrad: o.requiresGrad === undefined ? false : Boolean(o.requiresGrad),
  };
}

function finish(t: Tensor, o: Required<CreateOptions>): Tensor {
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

function typedFor(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'int32': return new Int32Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': return new Uint8Array(n);
  }
}

function dtypeOfTyped(a: ArrayBufferView): DType | null {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array) return 'uint8';
  return null;
}

const INT_RANGE: Record<Exclude<DType, 'float32'>, [number, number]> = {
  int32: [-2147483648, 2147483647],
  int8: [-128, 127],
  uint8: [0, 255],
};

// The core's rule for a number stored in an integer dtype (as astype): truncate toward zero and
// saturate, NaN -> 0. A TypedArray store would wrap modulo 2^bits instead.
function saturate(v: number, dtype: DType): number {
  const [lo, hi] = INT_RANGE[dtype as Exclude<DType, 'float32'>];
  if (Number.isNaN(v)) return 0;
  return v <= lo ? lo : v >= hi ? hi : Math.trunc(v);
}

function inferShape(data: NestedArray, path: number[] = []): number[] {
  if (!Array.isArray(data)) return [];
  if (path.length > 16) fail('INVALID_ARGUMENT', 'tensor: nested arrays deeper than 16 levels');
  if (data.length === 0) return [0];
  return [data.length, ...inferShape(data[0], [...path, 0])];
}

function flatten(data: NestedArray, shape: number[], out: TypedArray, dtype: DType): void {
  let pos = 0;
  const visit = (v: NestedArray, d: number, where: string): void => {
    if (d === shape.length) {
      if (typeof v === 'boolean') v = v ? 1 : 0;
      if (typeof v !== 'number') fail('INVALID_ARGUMENT', `tensor: expected a number at ${where}, got ${describe(v)}`);
      if (dtype !== 'float32' && !Number.isFinite(v)) {
        fail('INVALID_ARGUMENT', `tensor: ${v} at ${where} cannot be stored as ${dtype}`);
      }
      out[pos++] = dtype === 'float32' ? v : saturate(v, dtype);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[d]) {
      fail('SHAPE_MISMATCH', `tensor: the nested arrays are ragged: expected ${shape[d]} entries at ${where}, got ${Array.isArray(v) ? v.length : describe(v)}`);
    }
    for (let i = 0; i < v.length; i++) visit(v[i], d + 1, `${where}[${i}]`);
  };
  visit(data, 0, 'data');
}

/**
 * A tensor from nested arrays, a number, or a TypedArray (then `shape` defaults to 1-D and
 * `dtype` to the array's type). Plain numbers become float32 unless dtype says otherwise.
 */
export function tensor(data: NestedArray | TypedArray | number[], options?: CreateOptions & { shape?: number[] }): Tensor {
  const o = checkOptions(options, 'options');
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTyped(data);
    if (own === null) fail('DTYPE', `tensor: unsupported TypedArray ${describe(data)} (use Float32Array, Int32Array, Int8Array or Uint8Array)`);
    const opts = createOptions(o, own);
    const shape = o.shape === undefined ? [data.length] : checkShape(o.shape);
    let src: TypedArray = data as TypedArray;
    if (opts.dtype !== own) {
      const conv = typedFor(opts.dtype, src.length);
      // Float to integer saturates; integer to narrower integer wraps, as astype does.
      if (own === 'float32' && opts.dtype !== 'float32') for (let i = 0; i < src.length; i++) conv[i] = saturate(src[i], opts.dtype);
      else for (let i = 0; i < src.length; i++) conv[i] = src[i];
      src = conv;
    }
    return finish(wrap(native.fromBuffer(src, shape, opts.dtype, opts.device)), opts);
  }
  if (typeof data !== 'number' && typeof data !== 'boolean' && !Array.isArray(data)) {
    fail('INVALID_ARGUMENT', `tensor: expected nested arrays of numbers, a number or a TypedArray, got ${describe(data)}`);
  }
  const opts = createOptions(o);
  const inferred = inferShape(data);
  const n = inferred.reduce((a, b) => a * b, 1);
  const flat = typedFor(opts.dtype, n);
  flatten(data, inferred, flat, opts.dtype);
  const shape = o.shape === undefined ? inferred : checkShape(o.shape);
  return finish(wrap(native.fromBuffer(flat, shape, opts.dtype, opts.device)), opts);
}

export function full(shape: number[], value: number, options?: CreateOptions): Tensor {
  const o = createOptions(options);
  if (typeof value !== 'number') fail('INVALID_ARGUMENT', `full: expected a number for value, got ${describe(value)}`);
  return finish(wrap(native.full(checkShape(shape), value, o.dtype, o.device)), o);
}
export function zeros(shape: number[], options?: CreateOptions): Tensor {
  return full(shape, 0, options);
}
export function ones(shape: number[], options?: CreateOptions): Tensor {
  return full(shape, 1, options);
}
export function empty(shape: number[], options?: CreateOptions): Tensor {
  return full(shape, 0, options);
}
export function zerosLike(t: Tensor, options?: CreateOptions): Tensor {
  checkTensor(t, 'input');
  return full(t.shape, 0, { dtype: t.dtype, device: t.device, ...checkOptions(options, 'options') });
}
export function onesLike(t: Tensor, options?: CreateOptions): Tensor {
  checkTensor(t, 'input');
  return full(t.shape, 1, { dtype: t.dtype, device: t.device, ...checkOptions(options, 'options') });
}
export function fullLike(t: Tensor, value: number, options?: CreateOptions): Tensor {
  checkTensor(t, 'input');
  return full(t.shape, value, { dtype: t.dtype, device: t.device, ...checkOptions(options, 'options') });
}

/** Values from start (inclusive) to end (exclusive) by step; arange(n) counts 0..n-1. */
export function arange(start: number, end?: number, step = 1, options?: CreateOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  checkFinite(start, 'start');
  checkFinite(end, 'end');
  checkFinite(step, 'step');
  const isInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const o = createOptions(options, isInt ? 'int32' : 'float32');
  return finish(wrap(native.arange(start, end, step, o.dtype, o.device)), o);
}

export function linspace(start: number, end: number, steps: number, options?: CreateOptions): Tensor {
  const o = createOptions(options);
  return finish(wrap(native.linspace(checkFinite(start, 'start'), checkFinite(end, 'end'), checkInt(steps, 'steps', 0), o.dtype, o.device)), o);
}

export function eye(rows: number, cols?: number, options?: CreateOptions): Tensor {
  const o = createOptions(options);
  checkInt(rows, 'rows', 0);
  return finish(wrap(native.eye(rows, cols === undefined ? rows : checkInt(cols, 'cols', 0), o.dtype, o.device)), o);
}

/** Seeds the generator behind rand/randn/randint/dropout: the same seed gives the same numbers on every machine. */
export function manualSeed(seed: number): void {
  native.manualSeed(checkInt(seed, 'seed', 0));
}

export interface RngState {
  seed: string;
  offset: string;
}
export function getRngState(): RngState {
  return native.rngState();
}
export function setRngState(state: RngState): void {
  const s = checkOptions(state, 'state');
  native.setRngState(String(s.seed), String(s.offset));
}

function randomOptions(options: unknown): Required<CreateOptions> {
  const o = createOptions(options);
  if (o.dtype !== 'float32') fail('DTYPE', `rand/randn produce float32, got dtype ${o.dtype}`);
  return o;
}

/** Uniform in [0, 1). */
export function rand(shape: number[], options?: CreateOptions): Tensor {
  const o = randomOptions(options);
  return finish(wrap(native.rand(checkShape(shape), o.device)), o);
}
/** Standard normal. */
export function randn(shape: number[], options?: CreateOptions): Tensor {
  const o = randomOptions(options);
  return finish(wrap(native.randn(checkShape(shape), o.device)), o);
}
/** Integers in [low, high), int32. */
export function randint(low: number, high: number, shape: number[], options?: { device?: Device }): Tensor {
  const o = createOptions(options, 'int32');
  return wrap(native.randint(checkInt(low, 'low'), checkInt(high, 'high'), checkShape(shape), o.device));
}

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

/** @internal Throws unless x is a live tensor. */
export function checkTensor(x: unknown, name: string): Tensor {
  if (!(x instanceof Tensor)) fail('INVALID_ARGUMENT', `expected ${name} to be a Tensor, got ${describe(x)}`);
  if (x.isDisposed) fail('DISPOSED', `${name} is a tensor that was disposed`);
  return x;
}

export { JouleError };
