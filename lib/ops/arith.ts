// Elementwise operations with NumPy broadcasting, and their gradients.
import { needsGrad, record } from '../autograd';
import { describe, fail } from '../errors';
import { native } from '../native';
import { Tensor, TensorLike } from '../tensor';
import { operand, sumTo, tensorArg, wrap } from './helpers';

type BinaryName = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum';
type CompareName = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

function raw(op: BinaryName | CompareName, a: Tensor | number, b: Tensor | number): Tensor {
  if (a instanceof Tensor && b instanceof Tensor) return wrap(native.binary(op, a.handle, b.handle));
  if (a instanceof Tensor) return wrap(native.binaryScalar(op, a.handle, b as number, false));
  if (b instanceof Tensor) return wrap(native.binaryScalar(op, b.handle, a as number, true));
  return fail('INVALID_ARGUMENT', `${op}: expected at least one Tensor operand, got two numbers`);
}

// Gradients with respect to each operand, given the output gradient g and the output.
type BinaryGrad = (g: Tensor, a: Tensor | number, b: Tensor | number, out: Tensor) => [Tensor | null, Tensor | null];

const binaryGrads: Record<BinaryName, BinaryGrad> = {
  add: (g) => [g, g],
  sub: (g) => [g, neg(g)],
  mul: (g, a, b) => [mul(g, b), mul(g, a)],
  div: (g, a, b, out) => [div(g, b), neg(div(mul(g, out), b))],
  pow: (g, a, b, out) => [
    mul(g, mul(b, pow(a, typeof b === 'number' ? b - 1 : sub(b, 1)))),
    // d(a^b)/db = a^b ln a, taken as 0 where a <= 0 (where the real power has no derivative).
    typeof a === 'number' ? mul(g, mul(out, Math.log(a))) : mul(g, mul(out, log(where(gt(a, 0), a, 1)))),
  ],
  maximum: (g, a, b) => {
    const takeA = ge(a, b);
    return [mul(g, takeA), mul(g, lt(a, b))];
  },
  minimum: (g, a, b) => {
    const takeA = le(a, b);
    return [mul(g, takeA), mul(g, gt(a, b))];
  },
};

function binary(op: BinaryName, x: unknown, y: unknown): Tensor {
  const a = operand(x, 'a');
  const b = operand(y, 'b');
  const out = raw(op, a, b);
  const ta = a instanceof Tensor ? a : null;
  const tb = b instanceof Tensor ? b : null;
  if (needsGrad(ta, tb)) {
    record(out, op, [ta, tb], (g) => {
      const [ga, gb] = binaryGrads[op](g, a, b, out);
      return [ta && ga ? sumTo(ga, ta.shape) : null, tb && gb ? sumTo(gb, tb.shape) : null];
    });
  }
  return out;
}

export const add = (a: TensorLike, b: TensorLike): Tensor => binary('add', a, b);
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('sub', a, b);
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('mul', a, b);
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('div', a, b);
export const pow = (a: TensorLike, b: TensorLike): Tensor => binary('pow', a, b);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binary('maximum', a, b);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binary('minimum', a, b);

function compare(op: CompareName, x: unknown, y: unknown): Tensor {
  return raw(op, operand(x, 'a'), operand(y, 'b'));
}
/** Comparisons give uint8 tensors of 0 and 1 (no gradient). */
export const eq = (a: TensorLike, b: TensorLike): Tensor => compare('eq', a, b);
export const ne = (a: TensorLike, b: TensorLike): Tensor => compare('ne', a, b);
export const lt = (a: TensorLike, b: TensorLike): Tensor => compare('lt', a, b);
export const le = (a: TensorLike, b: TensorLike): Tensor => compare('le', a, b);
export const gt = (a: TensorLike, b: TensorLike): Tensor => compare('gt', a, b);
export const ge = (a: TensorLike, b: TensorLike): Tensor => compare('ge', a, b);

// ---- unary ----

type UnaryName =
  | 'neg' | 'abs' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'tanh' | 'sigmoid' | 'relu' | 'gelu' | 'silu' | 'sign'
  | 'square' | 'reciprocal' | 'sin' | 'cos' | 'floor' | 'ceil' | 'round' | 'log1p' | 'expm1' | 'erf';

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

// null: not differentiable (the gradient is zero almost everywhere, or the op is discrete).
const unaryGrads: Record<UnaryName, ((g: Tensor, x: Tensor, out: Tensor) => Tensor) | null> = {
  neg: (g) => neg(g),
  abs: (g, x) => mul(g, sign(x)),
  exp: (g, _x, out) => mul(g, out),
  log: (g, x) => div(g, x),
  sqrt: (g, _x, out) => div(mul(g, 0.5), out),
  rsqrt: (g, _x, out) => mul(g, mul(pow(out, 3), -0.5)),
  tanh: (g, _x, out) => mul(g, sub(1, square(out))),
  sigmoid: (g, _x, out) => mul(g, mul(out, sub(1, out))),
  relu: (g, x) => mul(g, gt(x, 0)),
  // d/dx [x Φ(x)] = Φ(x) + x φ(x)
  gelu: (g, x) => mul(g, add(mul(add(erf(mul(x, SQRT1_2)), 1), 0.5), mul(x, mul(exp(mul(square(x), -0.5)), INV_SQRT_2PI)))),
  silu: (g, x) => {
    const s = sigmoid(x);
    return mul(g, mul(s, add(1, mul(x, sub(1, s)))));
  },
  sign: null,
  square: (g, x) => mul(g, mul(x, 2)),
  reciprocal: (g, _x, out) => neg(mul(g, square(out))),
  sin: (g, x) => mul(g, cos(x)),
  cos: (g, x) => neg(mul(g, sin(x))),
  floor: null,
  ceil: null,
  round: null,
  log1p: (g, x) => div(g, add(x, 1)),
  expm1: (g, _x, out) => mul(g, add(out, 1)),
  erf: (g, x) => mul(g, mul(exp(neg(square(x))), 2 / Math.sqrt(Math.PI))),
};

function unary(op: UnaryName, x: unknown): Tensor {
  const a = tensorArg(x, 'input');
  const out = wrap(native.unary(op, a.handle));
  const grad = unaryGrads[op];
  if (needsGrad(a)) {
    record(out, op, [a], (g) => [grad ? grad(g, a, out) : null]);
  }
  return out;
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
/** GELU, exact (erf) form, as PyTorch's default. */
export const gelu = (x: Tensor): Tensor => unary('gelu', x);
export const silu = (x: Tensor): Tensor => unary('silu', x);
export const sign = (x: Tensor): Tensor => unary('sign', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const reciprocal = (x: Tensor): Tensor => unary('reciprocal', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
export const floor = (x: Tensor): Tensor => unary('floor', x);
export const ceil = (x: Tensor): Tensor => unary('ceil', x);
export const round = (x: Tensor): Tensor => unary('round', x);
export const log1p = (x: Tensor): Tensor => unary('log1p', x);
export const expm1 = (x: Tensor): Tensor => unary('expm1', x);
export const erf = (x: Tensor): Tensor => unary('erf', x);

/** Limits values to [min, max]; either bound may be omitted. */
export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  const a = tensorArg(x, 'input');
  const lo = min === undefined || min === null ? NaN : min;
  const hi = max === undefined || max === null ? NaN : max;
  if (typeof lo !== 'number' || typeof hi !== 'number') fail('INVALID_ARGUMENT', 'clamp: expected numbers for min and max');
  const out = wrap(native.clamp(a.handle, lo, hi));
  if (needsGrad(a)) {
    record(out, 'clamp', [a], (g) => {
      let inside = g;
      if (!Number.isNaN(lo)) inside = mul(inside, ge(a, lo));
      if (!Number.isNaN(hi)) inside = mul(inside, le(a, hi));
      return [inside];
    });
  }
  return out;
}

/** Elementwise choice: a where condition is non-zero, else b (all three broadcast). */
export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const c = tensorArg(condition, 'condition');
  const ta = a instanceof Tensor ? tensorArg(a, 'a') : null;
  const tb = b instanceof Tensor ? tensorArg(b, 'b') : null;
  const like = ta ?? tb;
  const device = like ? like.device : c.device;
  const dtype = ta?.dtype ?? tb?.dtype ?? 'float32';
  const asTensor = (v: TensorLike, name: string) =>
    v instanceof Tensor ? v : wrap(native.full([], operand(v, name) as number, Number.isInteger(v) ? dtype : 'float32', device));
  const A = asTensor(a, 'a');
  const B = asTensor(b, 'b');
  const out = wrap(native.where(c.handle, A.handle, B.handle));
  if (needsGrad(ta, tb)) {
    record(out, 'where', [ta, tb], (g) => [
      ta ? sumTo(where(c, g, 0), ta.shape) : null,
      tb ? sumTo(where(c, 0, g), tb.shape) : null,
    ]);
  }
  return out;
}

// ---- in place (no autograd: for optimizers, gradients and buffers) ----

function checkInplace(t: Tensor, op: string): void {
  tensorArg(t, 'target');
  if (needsGrad(t) && !t.isLeaf) {
    fail('INVALID_ARGUMENT', `${op}: in-place ops on tensors in an autograd graph are not supported; use the out-of-place form`);
  }
  if (needsGrad(t)) fail('INVALID_ARGUMENT', `${op}: in-place op on a tensor that requires grad; wrap it in noGrad()`);
}

function opName(op: unknown): string {
  if (typeof op !== 'string') fail('INVALID_ARGUMENT', `expected an op name, got ${describe(op)}`);
  return op;
}

export function inplace(op: BinaryName, target: Tensor, other: TensorLike): Tensor {
  checkInplace(target, `${opName(op)}_`);
  const b = operand(other, 'other');
  if (b instanceof Tensor) native.binaryInplace(op, target.handle, b.handle);
  else native.binaryScalarInplace(op, target.handle, b);
  return target;
}

export function unaryInplace(op: UnaryName, target: Tensor): Tensor {
  checkInplace(target, `${opName(op)}_`);
  native.unaryInplace(op, target.handle);
  return target;
}

export function fill_(target: Tensor, value: number): Tensor {
  checkInplace(target, 'fill_');
  if (typeof value !== 'number') fail('INVALID_ARGUMENT', `fill_: expected a number, got ${typeof value}`);
  native.fill(target.handle, value);
  return target;
}

/** Copies src (broadcast, converted) into target. */
export function copy_(target: Tensor, src: Tensor): Tensor {
  checkInplace(target, 'copy_');
  native.copyInto(target.handle, tensorArg(src, 'src').handle);
  return target;
}

/** x with `value` wherever mask (broadcast to x) is non-zero; the gradient flows to x where it is zero. */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const t = tensorArg(x, 'input');
  if (typeof value !== 'number') fail('INVALID_ARGUMENT', `maskedFill: expected a number value, got ${describe(value)}`);
  return where(tensorArg(mask, 'mask'), value, t);
}
