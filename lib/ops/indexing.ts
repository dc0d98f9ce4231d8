// Selecting and scattering by int32 indices, and their gradients.
import { needsGrad, record } from '../autograd';
import { fail } from '../errors';
import { native } from '../native';
import { Tensor } from '../tensor';
import { axisArg, tensorArg, wrap } from './helpers';

function indexArg(index: unknown, name = 'index'): Tensor {
  const t = tensorArg(index, name);
  if (t.dtype !== 'int32') fail('DTYPE', `expected ${name} to be an int32 tensor, got ${t.dtype}`);
  return t;
}

/** The entries at `index` (1-D, int32) along axis. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  const idx = indexArg(index);
  const ax = axisArg(axis, a.ndim);
  const out = wrap(native.indexSelect(a.handle, ax, idx.handle));
  if (needsGrad(a)) {
    record(out, 'indexSelect', [a], (g) => {
      // Rows picked more than once receive the sum of their gradients.
      const zeros = wrap(native.full(a.shape, 0, 'float32', a.device));
      return [wrap(native.indexAdd(zeros.handle, ax, idx.handle, g.handle))];
    });
  }
  return out;
}

/** out[i][j] = input[index[i][j]][j] (for axis 0), and so on: index has input's number of dims. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  const idx = indexArg(index);
  const ax = axisArg(axis, a.ndim);
  const out = wrap(native.gather(a.handle, ax, idx.handle));
  if (needsGrad(a)) {
    record(out, 'gather', [a], (g) => {
      const zeros = wrap(native.full(a.shape, 0, 'float32', a.device));
      return [wrap(native.scatterAdd(zeros.handle, ax, idx.handle, g.handle))];
    });
  }
  return out;
}

/** A copy of input with src added at the positions index names along axis (out-of-place). */
export function scatterAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const a = tensorArg(x, 'input');
  const idx = indexArg(index);
  const s = tensorArg(src, 'src');
  const ax = axisArg(axis, a.ndim);
  const out = wrap(native.scatterAdd(a.handle, ax, idx.handle, s.handle));
  if (needsGrad(a, s)) {
    record(out, 'scatterAdd', [a, s], (g) => {
      if (!s.requiresGrad) return [g, null];
      // src entries outside the index's extent were not used: their gradient is zero.
      const gs = wrap(native.full(s.shape, 0, 'float32', s.device));
      let region = gs;
      idx.shape.forEach((d, i) => (region = wrap(native.slice(region.handle, i, 0, d, 1))));
      native.copyInto(region.handle, wrap(native.gather(g.handle, ax, idx.handle)).handle);
      return [g, gs];
    });
  }
  return out;
}
