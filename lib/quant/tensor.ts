// Tensor-level quantization: parameters, quantize/dequantize, and fakeQuantize with a
// straight-through-estimator gradient (for quantization-aware training).
//
// Conventions (shared with the native kernels, cpp/kernels/quant/quant.h):
//   q = clamp(rne(x / scale) + zeroPoint, qmin, qmax)  (rne: round half to even), x' = (q - zeroPoint) * scale.
//   int8 is symmetric: scale = absmax / 127, zeroPoint 0, range [-127, 127] (-128 is never produced
//   by quantizeTensor, so the range stays symmetric; quantizing with a given scale may use [-128, 127]).
//   uint8 is affine: [min(lo, 0), max(hi, 0)] maps onto [0, 255] with an integer zeroPoint.
//   An all-zero tensor/channel gets scale 0 and quantizes to zeroPoint (dequantizes to 0, no NaN).
//   Non-finite inputs (NaN, ±Infinity) are rejected with INVALID_ARGUMENT.
import { needsGrad, noGrad, record } from '../autograd';
import { checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import * as ops from '../ops/index';
import { checkTensor, Tensor, tensor, tidy, wrap } from '../tensor';

export type QDType = 'int8' | 'uint8';

export interface QuantizeTensorOptions {
  /** One scale per slice along `axis` (default false: one per tensor). */
  perChannel?: boolean;
  /** The channel axis when perChannel (default 0, the output channels of a Linear weight). */
  axis?: number;
  /** 'int8' (symmetric, default) or 'uint8' (affine, with a zero point). */
  dtype?: QDType;
  /** Bits of the symmetric int8 range (2..8, default 8): qmax = 2^(bits-1) - 1. */
  bits?: number;
}

export interface QuantizedTensor {
  q: Tensor;
  /** float32 [] (per tensor) or [channels]. */
  scale: Tensor;
  /** int32, same shape as scale (uint8 only). */
  zeroPoint?: Tensor;
  /** The channel axis, or -1 per tensor. */
  axis: number;
  qmin: number;
  qmax: number;
}

function normAxis(axis: number, ndim: number): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) fail('INVALID_ARGUMENT', `quantization axis ${describe(axis)} is out of range for ${ndim} dimension(s)`);
  return axis < 0 ? axis + ndim : axis;
}

export function checkBits(bits: unknown): number {
  if (bits === undefined) return 8;
  if (typeof bits !== 'number' || !Number.isInteger(bits) || bits < 2 || bits > 8) fail('INVALID_ARGUMENT', `expected bits to be an integer from 2 to 8, got ${describe(bits)}`);
  return bits;
}

/** Symmetric per-tensor ([]) or per-channel ([C]) scales: absmax / qmax. */
export function symmetricScale(t: Tensor, axis: number, qmax: number): Tensor {
  return wrap(native.quantParams(checkTensor(t, 'input').handle, axis, true, -qmax, qmax)[0]);
}

/** Quantizes a float32 tensor; see the conventions at the top of this file. */
export function quantizeTensor(t: Tensor, options: QuantizeTensorOptions = {}): QuantizedTensor {
  const x = checkTensor(t, 'input');
  const o = checkOptions(options, 'options') as QuantizeTensorOptions;
  for (const k of Object.keys(o)) if (!['perChannel', 'axis', 'dtype', 'bits'].includes(k)) fail('INVALID_ARGUMENT', `quantizeTensor: unknown option '${k}'`);
  const dtype = o.dtype ?? 'int8';
  if (dtype !== 'int8' && dtype !== 'uint8') fail('DTYPE', `quantizeTensor: expected dtype 'int8' or 'uint8', got ${describe(dtype)}`);
  if (x.dtype !== 'float32') fail('DTYPE', `quantizeTensor: expected a float32 tensor, got ${x.dtype}`);
  const axis = o.perChannel ? normAxis(o.axis ?? 0, x.ndim) : -1;
  const bits = checkBits(o.bits);
  if (dtype === 'int8') {
    const qmax = 2 ** (bits - 1) - 1;
    const scale = wrap(native.quantParams(x.handle, axis, true, -qmax, qmax)[0]);
    const q = wrap(native.quantize(x.handle, scale.handle, null, axis, -qmax, qmax, 'int8'));
    return { q, scale, axis, qmin: -qmax, qmax };
  }
  const qmax = 2 ** bits - 1;
  const [s, z] = native.quantParams(x.handle, axis, false, 0, qmax);
  const scale = wrap(s);
  const zeroPoint = wrap(z);
  const q = wrap(native.quantize(x.handle, scale.handle, zeroPoint.handle, axis, 0, qmax, 'uint8'));
  return { q, scale, zeroPoint, axis, qmin: 0, qmax };
}

/** (q - zeroPoint) * scale as float32; accepts quantizeTensor's result or its parts. */
export function dequantize(q: Tensor | QuantizedTensor, scale?: Tensor | number, zeroPoint?: Tensor | number | null, axis = -1): Tensor {
  if (!(q instanceof Tensor) && q !== null && typeof q === 'object' && 'q' in q) {
    return dequantize(q.q, q.scale, q.zeroPoint ?? null, q.axis);
  }
  const qt = checkTensor(q, 'q');
  if (scale === undefined) fail('INVALID_ARGUMENT', 'dequantize: a scale is required');
  return tidy(() => {
    const s = typeof scale === 'number' ? tensor([scale]) : checkTensor(scale, 'scale');
    const z = zeroPoint === undefined || zeroPoint === null ? null : typeof zeroPoint === 'number' ? tensor([zeroPoint], { dtype: 'int32' }) : checkTensor(zeroPoint, 'zeroPoint');
    return wrap(native.dequantize(qt.handle, s.handle, z ? z.handle : null, axis < 0 ? -1 : normAxis(axis, qt.ndim)));
  });
}

/**
 * Quantize-dequantize in float32 (the value an integer kernel would see), differentiable with the
 * straight-through estimator: the gradient passes unchanged where x lies inside the representable
 * range [(qmin - zp) * scale, (qmax - zp) * scale] and is 0 where the value saturated. scale and
 * zeroPoint are numbers (per tensor) or tensors [C] along `axis`; they get no gradient.
 */
export function fakeQuantize(t: Tensor, scale: number | Tensor, zeroPoint: number | Tensor = 0, qmin = -128, qmax = 127, axis = -1): Tensor {
  const x = checkTensor(t, 'input');
  if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin >= qmax || qmin < -128 || qmax > 255 || (qmin < 0 && qmax > 127)) {
    fail('INVALID_ARGUMENT', `fakeQuantize: expected an int8 or uint8 range qmin < qmax, got [${describe(qmin)}, ${describe(qmax)}]`);
  }
  const dtype: QDType = qmin < 0 ? 'int8' : 'uint8';
  const ax = axis < 0 ? -1 : normAxis(axis, x.ndim);
  const [y, mask] = noGrad(() => tidy(() => {
    const s = typeof scale === 'number' ? tensor([scale]) : checkTensor(scale, 'scale');
    const z = typeof zeroPoint === 'number' ? (zeroPoint === 0 ? null : tensor([zeroPoint], { dtype: 'int32' })) : checkTensor(zeroPoint, 'zeroPoint');
    const q = wrap(native.quantize(x.handle, s.handle, z ? z.handle : null, ax, qmin, qmax, dtype));
    const out = wrap(native.dequantize(q.handle, s.handle, z ? z.handle : null, ax));
    if (!needsGrad(x) && !x.requiresGrad) return [out, null];
    // Bounds broadcast along the channel axis.
    const bshape = x.shape.map((d, i) => (i === ax ? d : 1));
    const sf = ax < 0 ? s : ops.reshape(s, bshape);
    const zf = z === null ? 0 : ax < 0 ? ops.astype(z, 'float32') : ops.reshape(ops.astype(z, 'float32'), bshape);
    const lo = zf === 0 ? ops.mul(sf, qmin) : ops.mul(ops.neg(ops.sub(zf, qmin)), sf);
    const hi = zf === 0 ? ops.mul(sf, qmax) : ops.mul(ops.neg(ops.sub(zf, qmax)), sf);
    const m = ops.mul(ops.astype(ops.ge(x, lo), 'float32'), ops.astype(ops.le(x, hi), 'float32'));
    return [out, m];
  }));
  if (mask === null || !needsGrad(x)) {
    if (mask) mask.dispose();
    return y;
  }
  return record(y, 'fakeQuantize', [x], (g) => [ops.mul(g, mask)], [mask]);
}
