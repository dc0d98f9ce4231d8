// Reductions over any axes (keepDims like NumPy's keepdims), softmax, and their gradients.
import { needsGrad, record } from '../autograd';
import { checkInt, fail } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { div, eq, exp, mul, sub } from './arith';
import { axesArg, axisArg, tensorArg, unreduce, wrap } from './helpers';
import { expand } from './shape';

export interface ReduceOptions {
  keepDims?: boolean;
}

function keepArg(options: ReduceOptions | undefined): boolean {
  if (options === undefined) return false;
  if (typeof options !== 'object' || options === null) fail('INVALID_ARGUMENT', 'expected an options object like {keepDims: true}');
  return Boolean(options.keepDims);
}

function reducedCount(shape: number[], axes: number[]): number {
  if (axes.length === 0) return shape.reduce((a, b) => a * b, 1);
  return axes.reduce((n, a) => n * shape[a < 0 ? a + shape.length : a], 1);
}

export function sum(x: Tensor, axis?: number | number[], options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const keep = keepArg(options);
  const out = wrap(native.reduce('sum', a.handle, axes, keep));
  if (needsGrad(a)) record(out, 'sum', [a], (g) => [expand(unreduce(g, a.shape, axes, keep), a.shape)]);
  return out;
}

export function mean(x: Tensor, axis?: number | number[], options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const keep = keepArg(options);
  const out = wrap(native.reduce('mean', a.handle, axes, keep));
  if (needsGrad(a)) {
    const n = reducedCount(a.shape, axes);
    record(out, 'mean', [a], (g) => [expand(div(unreduce(g, a.shape, axes, keep), n), a.shape)]);
  }
  return out;
}

function extreme(op: 'max' | 'min', x: Tensor, axis?: number | number[], options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const keep = keepArg(options);
  const out = wrap(native.reduce(op, a.handle, axes, keep));
  if (needsGrad(a)) {
    // The gradient goes to the extreme elements, shared equally among ties.
    record(out, op, [a], (g) => {
      const o = unreduce(out, a.shape, axes, keep);
      const mask = eq(a, o);
      const count = wrap(native.reduce('sum', mask.handle, axes, true));
      return [div(mul(unreduce(g, a.shape, axes, keep), mask), count)];
    });
  }
  return out;
}
export const max = (x: Tensor, axis?: number | number[], options?: ReduceOptions) => extreme('max', x, axis, options);
export const min = (x: Tensor, axis?: number | number[], options?: ReduceOptions) => extreme('min', x, axis, options);

export function prod(x: Tensor, axis?: number | number[], options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const out = wrap(native.reduce('prod', a.handle, axes, keepArg(options)));
  if (needsGrad(a)) {
    // d(prod)/dx_i = prod / x_i (inputs with zeros are not handled specially).
    record(out, 'prod', [a], (g) => {
      const keep = keepArg(options);
      return [div(mul(unreduce(g, a.shape, axes, keep), unreduce(out, a.shape, axes, keep)), a)];
    });
  }
  return out;
}

/** Index of the largest element (int32): over all elements (flat index) or along one axis. */
export function argmax(x: Tensor, axis?: number, options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  return wrap(native.reduce('argmax', a.handle, axis === undefined ? [] : [axisArg(axis, a.ndim)], keepArg(options)));
}
export function argmin(x: Tensor, axis?: number, options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  return wrap(native.reduce('argmin', a.handle, axis === undefined ? [] : [axisArg(axis, a.ndim)], keepArg(options)));
}

export interface VarOptions extends ReduceOptions {
  /** Subtracted from the count in the denominator: 1 (default) is the unbiased estimate. */
  correction?: number;
}

export function variance(x: Tensor, axis?: number | number[], options?: VarOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const keep = keepArg(options);
  const correction = options?.correction === undefined ? 1 : checkInt(options.correction, 'correction', 0);
  const out = wrap(native.variance(a.handle, axes, correction, keep));
  if (needsGrad(a)) {
    const n = reducedCount(a.shape, axes);
    record(out, 'var', [a], (g) => {
      const m = wrap(native.reduce('mean', a.handle, axes, true));
      return [mul(unreduce(g, a.shape, axes, keep), mul(sub(a, m), 2 / (n - correction)))];
    });
  }
  return out;
}

export function std(x: Tensor, axis?: number | number[], options?: VarOptions): Tensor {
  const v = variance(x, axis, options);
  const out = wrap(native.unary('sqrt', v.handle));
  if (needsGrad(v)) record(out, 'std', [v], (g) => [div(g, mul(out, 2))]);
  return out;
}

export function logsumexp(x: Tensor, axis?: number | number[], options?: ReduceOptions): Tensor {
  const a = tensorArg(x, 'input');
  const axes = axesArg(axis, a.ndim);
  const keep = keepArg(options);
  const out = wrap(native.logsumexp(a.handle, axes, keep));
  if (needsGrad(a)) {
    record(out, 'logsumexp', [a], (g) => [mul(unreduce(g, a.shape, axes, keep), exp(sub(a, unreduce(out, a.shape, axes, keep))))]);
  }
  return out;
}

export function softmax(x: Tensor, axis = -1): Tensor {
  const a = tensorArg(x, 'input');
  const ax = axisArg(axis, a.ndim);
  const out = wrap(native.softmax(a.handle, ax));
  if (needsGrad(a)) {
    record(out, 'softmax', [a], (g) => [mul(out, sub(g, wrap(native.reduce('sum', mul(g, out).handle, [ax], true))))]);
  }
  return out;
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const a = tensorArg(x, 'input');
  const ax = axisArg(axis, a.ndim);
  const out = wrap(native.logSoftmax(a.handle, ax));
  if (needsGrad(a)) {
    record(out, 'logSoftmax', [a], (g) => [sub(g, mul(exp(out), wrap(native.reduce('sum', g.handle, [ax], true))))]);
  }
  return out;
}
