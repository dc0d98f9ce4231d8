// Process-wide settings and facts: threads, instruction set, build and device information.
import { checkInt, fail } from './errors';
import { BuildInfo, native } from './native';

/** Threads the CPU kernels use (default: JOULE_NUM_THREADS, else the number of cores). */
export function setNumThreads(n: number): void {
  checkInt(n, 'threads', 1);
  if (n > 256) fail('INVALID_ARGUMENT', `setNumThreads: expected an integer from 1 to 256, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

export type Isa = 'avx512' | 'avx2' | 'generic';
/** Forces the kernels' instruction set (tests use it to cover every path); JOULE_ISA sets it at start. */
export function setIsa(isa: Isa): void {
  native.setIsa(isa);
}
export function getIsa(): Isa {
  return native.getIsa() as Isa;
}

export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

/** Whether CUDA can be used, and if not, why. */
export function cudaAvailable(): { available: boolean; reason: string; devices: string[] } {
  const c = native.buildInfo().cuda;
  return { available: c.deviceCount > 0, reason: c.reason, devices: c.devices };
}

/** Frees the memory blocks the allocators keep for reuse. */
export function releaseCachedMemory(): void {
  native.releaseCachedMemory();
}
