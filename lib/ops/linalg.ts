// Matrix products, through the one GEMM entry point of the core.
import { needsGrad, record } from '../autograd';
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
