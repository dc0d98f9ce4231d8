/** Stable error codes: programs may branch on them; messages may change. */
export type ErrorCode =
  | 'SHAPE_MISMATCH'
  | 'DTYPE'
  | 'DEVICE'
  | 'DISPOSED'
  | 'OUT_OF_MEMORY'
  | 'INVALID_ARGUMENT'
  | 'BACKEND_UNAVAILABLE'
  | 'DIST_TIMEOUT'
  | 'DIST_MISMATCH'
  | 'CHECKPOINT_CORRUPT'
  | 'INTERNAL';

/** Every error Joule throws on purpose is a JouleError with a stable `code`. */
export class JouleError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'JouleError';
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string): never {
  throw new JouleError(code, message);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value);
  if (typeof value === 'object') return value.constructor?.name ? `a ${value.constructor.name}` : 'an object';
  return typeof value;
}

/** Checks for the public API: they say what was expected and what came instead. */
export function checkInt(value: unknown, name: string, min = -Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    fail('INVALID_ARGUMENT', `expected ${name} to be an integer${min > -Number.MAX_SAFE_INTEGER ? ` >= ${min}` : ''}, got ${describe(value)}`);
  }
  return value;
}

export function checkNumber(value: unknown, name: string): number {
  if (typeof value !== 'number') fail('INVALID_ARGUMENT', `expected ${name} to be a number, got ${describe(value)}`);
  return value;
}

export function checkFinite(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail('INVALID_ARGUMENT', `expected ${name} to be a finite number, got ${describe(value)}`);
  }
  return value;
}

export function checkBool(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') fail('INVALID_ARGUMENT', `expected ${name} to be a boolean, got ${describe(value)}`);
  return value;
}

export function checkShape(value: unknown, name = 'shape'): number[] {
  if (!Array.isArray(value)) fail('INVALID_ARGUMENT', `expected ${name} to be an array of integers, got ${describe(value)}`);
  if (value.length > 16) fail('INVALID_ARGUMENT', `expected ${name} to have at most 16 dimensions, got ${value.length}`);
  for (const d of value) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail('INVALID_ARGUMENT', `expected ${name} to contain non-negative integers, got ${describe(d)} in [${value.join(', ')}]`);
    }
  }
  return value as number[];
}

export function checkOptions(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail('INVALID_ARGUMENT', `expected ${name} to be an options object, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}
