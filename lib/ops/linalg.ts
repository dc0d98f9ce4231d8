// Matrix products, through the one GEMM entry point of the core.
import { needsGrad, record } from '../autograd';
import { checkFinite, checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { sumTo, tensorArg, wrap } from './helpers';
import { squeeze, unsqueeze } from './shape';

/**
 * NumPy matmul: 2-D products, batched products with broadcast batch dimensions, and 1-D
 * operands treated as a row (left) or a column (right) whose axis is then dropped.
 */
export function matmul(x: Tensor, y: Tensor): Tensor {
  const a = tensorArg(x, 'a');
  const b = tensorArg(y, 'b');
  if (a.ndim === 1 || b.ndim === 1) {
    // Composite form, so that the gradient comes from the 2-D rule below.
    if (!needsGrad(a, b)) return wrap(native.matmul(a.handle, b.handle));
    const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
    const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
    let out = matmul(a2, b2);
    if (b.ndim === 1) out = squeeze(out, -1);
    if (a.ndim === 1) out = squeeze(out, b.ndim === 1 ? -1 : -2);
    return out;
  }
  const out = wrap(native.matmul(a.handle, b.handle));
  if (needsGrad(a, b)) {
    record(out, 'matmul', [a, b], (g) => [
      a.requiresGrad ? sumTo(wrap(native.matmul(g.handle, wrap(native.transpose(b.handle, -1, -2)).handle)), a.shape) : null,
      b.requiresGrad ? sumTo(wrap(native.matmul(wrap(native.transpose(a.handle, -1, -2)).handle, g.handle)), b.shape) : null,
    ]);
  }
  return out;
}

export interface AddmmOptions {
  alpha?: number;
  beta?: number;
  /** Added to every row of the product ([n]). */
  bias?: Tensor | null;
  activation?: 'none' | 'relu' | 'gelu';
}

/**
 * In place, as BLAS sgemm: c = activation(alpha * a @ b + beta * c + bias) for 2-D float32 tensors
 * of any strides (transposed views need no copy). With beta = 0 (the default) c is not read.
 * No autograd: for inference and hand-written updates.
 */
export function addmm_(c: Tensor, a: Tensor, b: Tensor, options: AddmmOptions = {}): Tensor {
  const C = tensorArg(c, 'c');
  const A = tensorArg(a, 'a');
  const B = tensorArg(b, 'b');
  const o = checkOptions(options, 'options');
  const alpha = o.alpha === undefined ? 1 : checkFinite(o.alpha, 'alpha');
  const beta = o.beta === undefined ? 0 : checkFinite(o.beta, 'beta');
  const bias = o.bias === undefined || o.bias === null ? null : tensorArg(o.bias, 'bias');
  const activation = o.activation ?? 'none';
  if (activation !== 'none' && activation !== 'relu' && activation !== 'gelu') {
    fail('INVALID_ARGUMENT', `addmm_: expected activation 'none', 'relu' or 'gelu', got ${describe(activation)}`);
  }
  if (needsGrad(C, A, B, bias)) fail('INVALID_ARGUMENT', 'addmm_: in-place GEMM does not record gradients; wrap it in noGrad()');
  native.addmm_(C.handle, A.handle, B.handle, alpha, beta, bias ? bias.handle : null, activation);
  return C;
}
