// Parameter initialisation, in place and seeded by the library RNG (manualSeed makes models
// reproducible). Names and formulas follow torch.nn.init.
import { describe, fail } from '../errors';
import { native } from '../native';
import { checkTensor, Tensor, wrap } from '../tensor';

export type Nonlinearity = 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';
export type FanMode = 'fanIn' | 'fanOut';

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear': case 'conv1d': case 'conv2d': case 'conv3d': case 'sigmoid': return 1;
    case 'tanh': return 5 / 3;
    case 'relu': return Math.SQRT2;
    case 'leaky_relu': {
      const slope = param === undefined ? 0.01 : param;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case 'selu': return 3 / 4;
    default: return fail('INVALID_ARGUMENT', `calculateGain: unknown nonlinearity ${describe(nonlinearity)}`);
  }
}

/** fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (at least 2 dims). */
export function calculateFans(t: Tensor): { fanIn: number; fanOut: number } {
  const shape = checkTensor(t, 'tensor').shape;
  if (shape.length < 2) fail('SHAPE_MISMATCH', `fan in and fan out need a tensor of at least 2 dimensions, got [${shape.join(', ')}]`);
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

function target(t: Tensor): Tensor {
  const x = checkTensor(t, 'tensor');
  if (x.dtype !== 'float32') fail('DTYPE', `init: expected a float32 tensor, got ${x.dtype}`);
  return x;
}

/** Writes a*src + b into t (no autograd: initialisation is not part of any graph). */
function fillFrom(t: Tensor, make: () => Tensor, scale: number, shift: number): Tensor {
  const src = make();
  try {
    if (scale !== 1) native.binaryScalarInplace('mul', src.handle, scale);
    if (shift !== 0) native.binaryScalarInplace('add', src.handle, shift);
    native.copyInto(t.handle, src.handle);
  } finally {
    src.dispose();
  }
  return t;
}

/** Uniform in [a, b). */
export function uniform(t: Tensor, a = 0, b = 1): Tensor {
  const x = target(t);
  if (!(b >= a)) fail('INVALID_ARGUMENT', `uniform: expected a <= b, got ${a} and ${b}`);
  return fillFrom(x, () => wrap(native.rand(x.shape, x.device)), b - a, a);
}

/** Normal with the given mean and standard deviation. */
export function normal(t: Tensor, mean = 0, std = 1): Tensor {
  const x = target(t);
  if (!(std >= 0)) fail('INVALID_ARGUMENT', `normal: expected std >= 0, got ${std}`);
  return fillFrom(x, () => wrap(native.randn(x.shape, x.device)), std, mean);
}

export function constant(t: Tensor, value: number): Tensor {
  native.fill(target(t).handle, value);
  return t;
}
export function zeros(t: Tensor): Tensor {
  return constant(t, 0);
}
export function ones(t: Tensor): Tensor {
  return constant(t, 1);
}

export interface KaimingOptions {
  /** The negative slope of the leaky ReLU after this layer (0 for ReLU). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, o: KaimingOptions): number {
  const fans = calculateFans(t);
  const fan = (o.mode ?? 'fanIn') === 'fanIn' ? fans.fanIn : fans.fanOut;
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return fan === 0 ? 0 : gain / Math.sqrt(fan);
}

/** He uniform: U(-b, b) with b = gain * sqrt(3 / fan). */
export function kaimingUniform(t: Tensor, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(target(t), options);
  return uniform(t, -bound, bound);
}
/** He normal: N(0, (gain / sqrt(fan))^2). */
export function kaimingNormal(t: Tensor, options: KaimingOptions = {}): Tensor {
  return normal(t, 0, kaimingStd(target(t), options));
}

/** Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFans(target(t));
  const bound = gain * Math.sqrt(6 / Math.max(1, fanIn + fanOut));
  return uniform(t, -bound, bound);
}
/** Glorot normal: N(0, gain^2 * 2 / (fan_in + fan_out)). */
export function xavierNormal(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFans(target(t));
  return normal(t, 0, gain * Math.sqrt(2 / Math.max(1, fanIn + fanOut)));
}
