// Views (sharing storage), copies, joins and splits, and their gradients.
import { needsGrad, record } from '../autograd';
import { checkInt, describe, fail } from '../errors';
import { native } from '../native';
import { checkDevice, checkDType, Device, DType, Tensor } from '../tensor';
import { axesArg, axisArg, sumTo, tensorArg, wrap } from './helpers';

function shapeArg(shape: unknown, name = 'shape'): number[] {
  if (!Array.isArray(shape)) fail('INVALID_ARGUMENT', `expected ${name} to be an array of integers, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < -1) {
      fail('INVALID_ARGUMENT', `expected ${name} to contain integers >= 0 (or -1), got ${describe(d)}`);
    }
  }
  return shape as number[];
}

/** Unary view ops share one shape: the gradient is the inverse view of the output gradient. */
function viewOp(name: string, a: Tensor, make: () => Tensor, back: (g: Tensor) => Tensor): Tensor {
  const out = make();
  if (needsGrad(a)) record(out, name, [a], (g) => [back(g)]);
  return out;
}

const reshapeTo = (g: Tensor, shape: number[]) => wrap(native.reshape(g.handle, shape));

/** A view when the strides allow it, otherwise a copy. One dimension may be -1. */
export function reshape(x: Tensor, shape: number[]): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('reshape', a, () => wrap(native.reshape(a.handle, shapeArg(shape))), (g) => reshapeTo(g, a.shape));
}

/** Always a view: SHAPE_MISMATCH when the strides do not allow one. */
export function view(x: Tensor, shape: number[]): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('view', a, () => wrap(native.view(a.handle, shapeArg(shape))), (g) => reshapeTo(g, a.shape));
}

/** Merges dimensions startAxis..endAxis into one. */
export function flatten(x: Tensor, startAxis = 0, endAxis = -1): Tensor {
  const a = tensorArg(x, 'input');
  if (a.ndim === 0) return reshape(a, [1]);
  const s = axisArg(startAxis, a.ndim, 'startAxis');
  const e = axisArg(endAxis, a.ndim, 'endAxis');
  if (s > e) fail('INVALID_ARGUMENT', `flatten: startAxis ${startAxis} comes after endAxis ${endAxis}`);
  const shape = a.shape;
  const merged = shape.slice(s, e + 1).reduce((p, d) => p * d, 1);
  return reshape(a, [...shape.slice(0, s), merged, ...shape.slice(e + 1)]);
}

export function squeeze(x: Tensor, axis?: number | number[]): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('squeeze', a, () => wrap(native.squeeze(a.handle, axesArg(axis, a.ndim))), (g) => reshapeTo(g, a.shape));
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = tensorArg(x, 'input');
  checkInt(axis, 'axis');
  return viewOp('unsqueeze', a, () => wrap(native.unsqueeze(a.handle, axis)), (g) => reshapeTo(g, a.shape));
}

/** Swaps two axes (default: the last two). */
export function transpose(x: Tensor, axis0 = -2, axis1 = -1): Tensor {
  const a = tensorArg(x, 'input');
  if (a.ndim < 2 && axis0 === -2 && axis1 === -1) return viewOp('transpose', a, () => wrap(native.reshape(a.handle, a.shape)), (g) => g);
  checkInt(axis0, 'axis0');
  checkInt(axis1, 'axis1');
  return viewOp('transpose', a, () => wrap(native.transpose(a.handle, axis0, axis1)), (g) => wrap(native.transpose(g.handle, axis0, axis1)));
}

export function permute(x: Tensor, axes: number[]): Tensor {
  const a = tensorArg(x, 'input');
  const order = axesArg(axes, a.ndim, 'axes').map((v) => (v < 0 ? v + a.ndim : v));
  return viewOp('permute', a, () => wrap(native.permute(a.handle, order)), (g) => {
    const inverse = new Array<number>(order.length);
    order.forEach((src, i) => (inverse[src] = i));
    return wrap(native.permute(g.handle, inverse));
  });
}

function scatterInto(shape: number[], g: Tensor, place: (zeros: Tensor) => Tensor): Tensor {
  const z = wrap(native.full(shape, 0, 'float32', g.device));
  native.copyInto(place(z).handle, g.handle);
  return z;
}

/** Elements start..end-1 (step) along axis, as a view. Bounds follow Python's slice rules. */
export function slice(x: Tensor, axis: number, start = 0, end?: number, step = 1): Tensor {
  const a = tensorArg(x, 'input');
  checkInt(axis, 'axis');
  checkInt(start, 'start');
  const stop = end === undefined ? Number.MAX_SAFE_INTEGER : checkInt(end, 'end');
  checkInt(step, 'step', 1);
  return viewOp('slice', a, () => wrap(native.slice(a.handle, axis, start, stop, step)),
    (g) => scatterInto(a.shape, g, (z) => wrap(native.slice(z.handle, axis, start, stop, step))));
}

/** `length` elements from `start` along axis, as a view. */
export function narrow(x: Tensor, axis: number, start: number, length: number): Tensor {
  const a = tensorArg(x, 'input');
  const ax = axisArg(axis, a.ndim);
  checkInt(start, 'start', 0);
  checkInt(length, 'length', 0);
  if (start + length > a.shape[ax]) {
    fail('INVALID_ARGUMENT', `narrow: start ${start} + length ${length} exceeds the size ${a.shape[ax]} of axis ${axis}`);
  }
  return slice(a, ax, start, start + length);
}

/** The sub-tensor at `index` along axis (that axis removed), as a view. */
export function select(x: Tensor, axis: number, index: number): Tensor {
  const a = tensorArg(x, 'input');
  checkInt(axis, 'axis');
  checkInt(index, 'index');
  return viewOp('select', a, () => wrap(native.select(a.handle, axis, index)),
    (g) => scatterInto(a.shape, g, (z) => wrap(native.select(z.handle, axis, index))));
}

/** Broadcasts size-1 dimensions (and new leading ones) to `shape` without copying; -1 keeps a size. */
export function expand(x: Tensor, shape: number[]): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('expand', a, () => wrap(native.expand(a.handle, shapeArg(shape))), (g) => sumTo(g, a.shape));
}

export function broadcastTo(x: Tensor, shape: number[]): Tensor {
  return expand(x, shape);
}

export function contiguous(x: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('contiguous', a, () => wrap(native.contiguous(a.handle)), (g) => g);
}

export function clone(x: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  return viewOp('clone', a, () => wrap(native.clone(a.handle)), (g) => g);
}

/** The same data, cut from the autograd graph (shares storage). */
export function detach(x: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  return wrap(native.reshape(a.handle, a.shape));
}

/** A copy converted to dtype (the tensor itself when it already has it). Float -> int truncates and saturates. */
export function astype(x: Tensor, dtype: DType): Tensor {
  const a = tensorArg(x, 'input');
  const dt = checkDType(dtype);
  if (dt === a.dtype) return a;
  const out = wrap(native.cast(a.handle, dt));
  if (dt === 'float32' && needsGrad(a)) record(out, 'astype', [a], (g) => [g]);
  return out;
}

/** The tensor on `device` (itself when already there). */
export function to(x: Tensor, device: Device): Tensor {
  const a = tensorArg(x, 'input');
  const dev = checkDevice(device);
  if (dev === a.device) return a;
  const out = wrap(native.to(a.handle, dev));
  if (needsGrad(a)) record(out, 'to', [a], (g) => [wrap(native.to(g.handle, a.device))]);
  return out;
}

function tensorList(xs: unknown, name: string): Tensor[] {
  if (!Array.isArray(xs) || xs.length === 0) fail('INVALID_ARGUMENT', `expected ${name} to be a non-empty array of tensors, got ${describe(xs)}`);
  return xs.map((t, i) => tensorArg(t, `${name}[${i}]`));
}

/** Joins tensors along an existing axis. */
export function concat(xs: Tensor[], axis = 0): Tensor {
  const parts = tensorList(xs, 'tensors');
  checkInt(axis, 'axis');
  const out = wrap(native.concat(parts.map((p) => p.handle), axis));
  if (needsGrad(...parts)) {
    const ax = axis < 0 ? axis + parts[0].ndim : axis;
    record(out, 'concat', parts, (g) => {
      let at = 0;
      return parts.map((p) => {
        const len = p.shape[ax];
        const piece = wrap(native.slice(g.handle, ax, at, at + len, 1));
        at += len;
        return piece;
      });
    });
  }
  return out;
}

/** Joins tensors of one shape along a new axis. */
export function stack(xs: Tensor[], axis = 0): Tensor {
  const parts = tensorList(xs, 'tensors');
  const ax = axisArg(axis, parts[0].ndim + 1);
  return concat(parts.map((p) => unsqueeze(p, ax)), ax);
}

/** Views of consecutive pieces along axis: of `sizes` each, or of equal size `sizeOrSizes`. */
export function split(x: Tensor, sizeOrSizes: number | number[], axis = 0): Tensor[] {
  const a = tensorArg(x, 'input');
  const ax = axisArg(axis, a.ndim);
  const total = a.shape[ax];
  let sizes: number[];
  if (typeof sizeOrSizes === 'number') {
    checkInt(sizeOrSizes, 'size', 1);
    sizes = [];
    for (let at = 0; at < total; at += sizeOrSizes) sizes.push(Math.min(sizeOrSizes, total - at));
  } else {
    if (!Array.isArray(sizeOrSizes)) fail('INVALID_ARGUMENT', `split: expected a size or a list of sizes, got ${describe(sizeOrSizes)}`);
    sizes = sizeOrSizes.map((s) => checkInt(s, 'size', 0));
    const sum = sizes.reduce((p, q) => p + q, 0);
    if (sum !== total) fail('SHAPE_MISMATCH', `split: sizes add up to ${sum}, but axis ${axis} has ${total}`);
  }
  let at = 0;
  return sizes.map((s) => {
    const piece = slice(a, ax, at, at + s);
    at += s;
    return piece;
  });
}

/** `chunks` pieces of (nearly) equal size along axis. */
export function chunk(x: Tensor, chunks: number, axis = 0): Tensor[] {
  const a = tensorArg(x, 'input');
  checkInt(chunks, 'chunks', 1);
  const ax = axisArg(axis, a.ndim);
  return split(a, Math.max(1, Math.ceil(a.shape[ax] / chunks)), ax);
}
