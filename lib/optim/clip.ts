// Gradient clipping over whole parameter lists: one native call for the norm, one for the scale.
import { describe, fail } from '../errors';
import { native } from '../native';
import { Tensor, wrap } from '../tensor';

function gradsOf(params: Iterable<Tensor> | Tensor): Tensor[] {
  const list = params instanceof Tensor ? [params] : [...params];
  const out: Tensor[] = [];
  for (const p of list) {
    if (!(p instanceof Tensor)) fail('INVALID_ARGUMENT', `clipGradNorm: expected tensors, got ${describe(p)}`);
    if (p.grad && !p.grad.isDisposed) {
      if (!native.layout(p.grad.handle).contiguous) {
        const c = wrap(native.contiguous(p.grad.handle)).keep();
        p.grad.dispose();
        p.grad = c;
      }
      out.push(p.grad);
    }
  }
  return out;
}

/**
 * Scales the gradients in place so that their total normType-norm (over all of them together)
 * is at most maxNorm, and returns the norm before clipping. normType may be Infinity.
 */
export function clipGradNorm(params: Iterable<Tensor> | Tensor, maxNorm: number, normType = 2, options: { errorIfNonfinite?: boolean } = {}): number {
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) fail('INVALID_ARGUMENT', `clipGradNorm: expected maxNorm >= 0, got ${describe(maxNorm)}`);
  if (typeof normType !== 'number' || !(normType > 0)) fail('INVALID_ARGUMENT', `clipGradNorm: expected normType > 0 (or Infinity), got ${describe(normType)}`);
  const grads = gradsOf(params);
  if (grads.length === 0) return 0;
  const total = native.totalNorm(grads.map((g) => g.handle), normType);
  if (options.errorIfNonfinite && !Number.isFinite(total)) {
    fail('INVALID_ARGUMENT', `clipGradNorm: the total norm of the gradients is ${total}`);
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) native.scaleInplace(grads.map((g) => g.handle), coef);
  return total;
}

/** The total normType-norm of the gradients, without changing them. */
export function gradNorm(params: Iterable<Tensor> | Tensor, normType = 2): number {
  const grads = gradsOf(params);
  return grads.length === 0 ? 0 : native.totalNorm(grads.map((g) => g.handle), normType);
}

/** Clamps every gradient element to [-clipValue, clipValue] in place. */
export function clipGradValue(params: Iterable<Tensor> | Tensor, clipValue: number): void {
  if (typeof clipValue !== 'number' || !(clipValue >= 0)) fail('INVALID_ARGUMENT', `clipGradValue: expected clipValue >= 0, got ${describe(clipValue)}`);
  for (const g of gradsOf(params)) {
    const c = wrap(native.clamp(g.handle, -clipValue, clipValue));
    native.copyInto(g.handle, c.handle);
    c.dispose();
  }
}
