// Direct access to the int8 GEMM (tests and benchmarks): int8 A times an int8 weight [N, K].
import { fail } from '../errors';
import { native } from '../native';
import { checkTensor, Tensor, tidy, wrap } from '../tensor';

/**
 * a int8 [M, K] times w int8 [N, K] transposed: int32 [M, N] (exact), or with aScale [M] (and
 * optionally wScale [N], bias [N]) the dequantized float32 product. Packs w on every call: for
 * repeated use, QuantizedLinear packs once.
 */
export function int8Matmul(a: Tensor, w: Tensor, options: { aScale?: Tensor; wScale?: Tensor; bias?: Tensor; activation?: 'none' | 'relu' | 'gelu' } = {}): Tensor {
  const at = checkTensor(a, 'a');
  const wt = checkTensor(w, 'w');
  if (options.aScale === undefined && (options.wScale || options.bias)) fail('INVALID_ARGUMENT', 'int8Matmul: wScale and bias need aScale (without it the result is the raw int32 product)');
  return tidy(() => {
    const [p, c] = native.quantPackWeight(wt.handle).map(wrap);
    return wrap(native.quantMatmulInt8(at.handle, options.aScale ? options.aScale.handle : null, p.handle, c.handle,
      options.wScale ? options.wScale.handle : null, options.bias ? options.bias.handle : null, options.activation ?? 'none'));
  });
}

/** The portable scalar reference of int8Matmul and of QuantizedLinear's forward (a fp32: dynamic per-row quantization, or inputScale). */
export function int8MatmulReference(a: Tensor, w: Tensor, options: { aScale?: Tensor; wScale?: Tensor; bias?: Tensor; activation?: 'none' | 'relu' | 'gelu'; inputScale?: number } = {}): Tensor {
  return wrap(native.quantLinearReference(checkTensor(a, 'a').handle, options.aScale ? options.aScale.handle : null, checkTensor(w, 'w').handle,
    options.wScale ? options.wScale.handle : null, options.bias ? options.bias.handle : null, options.activation ?? 'none', options.inputScale ?? 0));
}

/** The int8 GEMM kernel the current ISA setting selects: 'avx512-vnni', 'avx2' or 'generic'. */
export function kernelName(): string {
  return native.quantKernel();
}
