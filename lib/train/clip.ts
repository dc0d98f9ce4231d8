// Gradient clipping by global norm.
import { noGrad } from '../autograd';
import { checkFinite, fail } from '../errors';
import { Tensor, tidy } from '../tensor';

/**
 * Scales the gradients of `params` in place so that their global L2 norm is at most maxNorm;
 * returns the norm before clipping. Parameters without a gradient are skipped.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number): number {
  checkFinite(maxNorm, 'maxNorm');
  if (!(maxNorm > 0)) fail('INVALID_ARGUMENT', `clipGradNorm: expected maxNorm > 0, got ${maxNorm}`);
  return noGrad(() => tidy(() => {
    const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null && !g.isDisposed);
    if (grads.length === 0) return 0;
    let total = 0;
    for (const g of grads) total += g.square().sum().item();
    const norm = Math.sqrt(total);
    const scale = maxNorm / (norm + 1e-6);
    if (scale < 1) for (const g of grads) g.mul_(scale);
    return norm;
  }));
}
