// Shared by the op files: operand checks and the gradient of broadcasting.
import { describe, fail } from '../errors';
import { native } from '../native';
import { checkTensor, Tensor, TensorLike, wrap } from '../tensor';

// Every handle the addon returns is wrapped at once, so that tidy() and backward() can free it:
// never chain native calls on bare handles.
export { wrap };

export function operand(x: unknown, name: string): Tensor | number {
  if (typeof x === 'number') return x;
  if (typeof x === 'boolean') return x ? 1 : 0;
  if (x instanceof Tensor) return checkTensor(x, name);
  return fail('INVALID_ARGUMENT', `expected ${name} to be a Tensor or a number, got ${describe(x)}`);
}

export function tensorArg(x: unknown, name: string): Tensor {
  return checkTensor(x, name);
}

export function isTensorLike(x: unknown): x is TensorLike {
  return typeof x === 'number' || x instanceof Tensor;
}

/** Normalises one axis or a list of them (negative counts from the end); undefined = all. */
export function axesArg(axes: unknown, ndim: number, name = 'axis'): number[] {
  if (axes === undefined || axes === null) return [];
  const list = Array.isArray(axes) ? axes : [axes];
  for (const a of list) {
    if (typeof a !== 'number' || !Number.isInteger(a)) fail('INVALID_ARGUMENT', `expected ${name} to be an integer or a list of integers, got ${describe(a)}`);
    const lo = ndim === 0 ? -1 : -ndim;
    const hi = ndim === 0 ? 0 : ndim - 1;
    if (a < lo || a > hi) fail('INVALID_ARGUMENT', `${name} ${a} is out of range for a tensor of ${ndim} dimension(s) (expected ${lo}..${hi})`);
  }
  return list as number[];
}

export function axisArg(axis: unknown, ndim: number, name = 'axis'): number {
  if (typeof axis !== 'number' || !Number.isInteger(axis)) fail('INVALID_ARGUMENT', `expected ${name} to be an integer, got ${describe(axis)}`);
  const n = Math.max(ndim, 1);
  if (axis < -n || axis >= n) fail('INVALID_ARGUMENT', `${name} ${axis} is out of range for a tensor of ${ndim} dimension(s)`);
  return axis < 0 ? axis + n : axis;
}

/** Sums a broadcast gradient back down to `shape`. */
export function sumTo(g: Tensor, shape: number[]): Tensor {
  const gs = g.shape;
  if (gs.length === shape.length && gs.every((d, i) => d === shape[i])) return g;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && gs[i] !== 1)) axes.push(i);
  }
  const summed = wrap(native.reduce('sum', g.handle, axes, true));
  return wrap(native.reshape(summed.handle, shape));
}

/** Re-inserts reduced axes (as size 1) so a reduced gradient broadcasts against the input. */
export function unreduce(g: Tensor, inputShape: number[], axes: number[], keepDims: boolean): Tensor {
  if (keepDims) return g;
  const ndim = inputShape.length;
  const all = axes.length === 0 ? inputShape.map((_, i) => i) : axes.map((a) => (a < 0 ? a + ndim : a));
  const shape = inputShape.map((d, i) => (all.includes(i) ? 1 : d));
  return wrap(native.reshape(g.handle, shape));
}
