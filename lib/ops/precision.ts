// The process-wide precision of float32 matrix products on CUDA, as torch.set_float32_matmul_precision.
import { describe, fail } from '../errors';
import { native } from '../native';

/**
 * 'highest': exact fp32 (the default); 'high': TF32 tensor cores (10-bit mantissa operands);
 * 'medium': BF16 tensor cores (operands rounded to bf16, 8-bit mantissa). All accumulate in fp32.
 */
export type MatmulPrecision = 'highest' | 'high' | 'medium';

const PRECISIONS: readonly string[] = ['highest', 'high', 'medium'];

// The two bindings of cpp/napi/gemm_bindings.cpp.
const gemmNative = native as unknown as {
  setMatmulPrecision(precision: string): void;
  getMatmulPrecision(): string;
};

/**
 * Sets the precision of every later float32 matmul, linear and addmm on CUDA (process-wide).
 * On the CPU the setting is accepted and has no effect: the CPU GEMM is always exact fp32.
 */
export function setMatmulPrecision(precision: MatmulPrecision): void {
  if (typeof precision !== 'string' || !PRECISIONS.includes(precision)) {
    fail('INVALID_ARGUMENT', `setMatmulPrecision: expected 'highest', 'high' or 'medium', got ${describe(precision)}`);
  }
  gemmNative.setMatmulPrecision(precision);
}

/** The precision set by setMatmulPrecision ('highest' unless changed). */
export function getMatmulPrecision(): MatmulPrecision {
  return gemmNative.getMatmulPrecision() as MatmulPrecision;
}
