// The quantized layers: QuantizedLinear (int8 inference), QatLinear (fake-quantized training) and
// QuantizedSequential (a Sequential that fuses QuantizedLinear + ReLU/GELU into one native call).
import { noGrad } from '../autograd';
import { describe, fail } from '../errors';
import { native } from '../native';
import * as ops from '../ops/index';
import { checkTensor, Tensor, tidy, wrap } from '../tensor';
import { Module, Parameter } from '../nn/module';
import { GELU, Linear, ReLU, Sequential } from '../nn/layers';
import * as F from '../nn/functional';
import { checkBits, fakeQuantize } from './tensor';

export type Activation = 'none' | 'relu' | 'gelu';

export interface QuantizedLinearOptions {
  /** One weight scale per output channel (default true) or one for the whole weight. */
  perChannel?: boolean;
  /** Weight bits (2..8, default 8): weights are stored as int8 in [-(2^(bits-1)-1), 2^(bits-1)-1]. */
  weightBits?: number;
  /** 0 (default): activations quantized per row at run time (dynamic); > 0: this fixed scale (static). */
  inputScale?: number;
  /**
   * LLM.int8()-style decomposition: input features whose |x| exceeds this anywhere in the batch are
   * multiplied in fp32 (against the dequantized weight columns), the rest in int8. 0 = off.
   */
  outlierThreshold?: number;
}

/**
 * y = x @ W^T + b with W stored as int8 (packed once for the int8 GEMM, with per-channel scales)
 * and x quantized to int8 on the fly; fp32 in, fp32 out, the same forward signature as nn.Linear.
 * Inference only: the output carries no gradient.
 */
export class QuantizedLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /**
   * Packed weight bytes and their column sums (native layout, see cpp/kernels/quant/quant.h), the
   * weight scales (float32 [out], or [1] per tensor) and the bias: registered as buffers, so that
   * disposing the model frees them (saveQuantized writes the unpacked int8 weight instead).
   */
  readonly packedWeight: Tensor;
  readonly colSums: Tensor;
  readonly weightScale: Tensor;
  readonly bias: Tensor | null;
  readonly perChannel: boolean;
  readonly weightBits: number;
  inputScale: number;
  outlierThreshold: number;

  /** From an int8 weight [out, in] and its scales (float32 [out] or [1]); the weight is packed here. */
  constructor(qweight: Tensor, weightScale: Tensor, bias: Tensor | null, options: QuantizedLinearOptions = {}) {
    super();
    const q = checkTensor(qweight, 'qweight');
    if (q.dtype !== 'int8' || q.ndim !== 2) fail('DTYPE', `QuantizedLinear: expected an int8 weight [out, in], got ${q.dtype} [${q.shape.join(', ')}]`);
    [this.outFeatures, this.inFeatures] = q.shape;
    const s = checkTensor(weightScale, 'weightScale');
    if (s.dtype !== 'float32' || (s.size !== this.outFeatures && s.size !== 1)) {
      fail('SHAPE_MISMATCH', `QuantizedLinear: expected float32 scales [${this.outFeatures}] or [1], got ${s.dtype} [${s.shape.join(', ')}]`);
    }
    const [p, c] = native.quantPackWeight(q.handle);
    this.packedWeight = this.registerBuffer('packedWeight', wrap(p))!;
    this.colSums = this.registerBuffer('colSums', wrap(c))!;
    this.weightScale = this.registerBuffer('weightScale', tidy(() => ops.reshape(ops.clone(s), [s.size])))!;
    this.bias = this.registerBuffer('bias', bias ? wrap(native.clone(checkTensor(bias, 'bias').handle)) : null);
    this.perChannel = options.perChannel ?? s.size !== 1;
    this.weightBits = checkBits(options.weightBits);
    this.inputScale = options.inputScale ?? 0;
    this.outlierThreshold = options.outlierThreshold ?? 0;
    if (!(this.inputScale >= 0) || !Number.isFinite(this.inputScale)) fail('INVALID_ARGUMENT', `QuantizedLinear: inputScale must be a finite number >= 0, got ${describe(options.inputScale)}`);
    if (!(this.outlierThreshold >= 0)) fail('INVALID_ARGUMENT', `QuantizedLinear: outlierThreshold must be >= 0, got ${describe(options.outlierThreshold)}`);
  }

  /** Quantizes a float weight [out, in] (and copies the bias). */
  static fromFloat(weight: Tensor, bias: Tensor | null, options: QuantizedLinearOptions = {}): QuantizedLinear {
    const w = checkTensor(weight, 'weight');
    const bits = checkBits(options.weightBits);
    const qmax = 2 ** (bits - 1) - 1;
    const perChannel = options.perChannel ?? true;
    return tidy(() => noGrad(() => {
      const axis = perChannel ? 0 : -1;
      const scale = wrap(native.quantParams(w.handle, axis, true, -qmax, qmax)[0]);
      const q = wrap(native.quantize(w.handle, scale.handle, null, axis, -qmax, qmax, 'int8'));
      const s1 = perChannel ? scale : ops.reshape(scale, [1]);
      return new QuantizedLinear(q, s1, bias, { ...options, perChannel, weightBits: bits });
    }));
  }

  static fromLinear(linear: Linear, options: QuantizedLinearOptions = {}): QuantizedLinear {
    return QuantizedLinear.fromFloat(linear.weight, linear.bias, options);
  }

  override forward(x: Tensor): Tensor {
    return this.forwardFused(x, 'none');
  }

  /** The forward with an activation fused into the int8 GEMM's epilogue. */
  forwardFused(x: Tensor, activation: Activation): Tensor {
    const t = checkTensor(x, 'input');
    return wrap(native.quantLinear(t.handle, this.packedWeight.handle, this.colSums.handle, this.weightScale.handle,
      this.bias ? this.bias.handle : null, activation, this.inputScale, this.outlierThreshold));
  }

  /** The int8 weight [out, in] (unpacked; a new tensor the caller owns). */
  qweight(): Tensor {
    return wrap(native.quantUnpackWeight(this.packedWeight.handle, this.outFeatures, this.inFeatures));
  }

  /** The dequantized float32 weight [out, in]. */
  dequantizedWeight(): Tensor {
    return tidy(() => {
      const q = this.qweight();
      return wrap(native.dequantize(q.handle, this.weightScale.handle, null, this.weightScale.size === 1 ? -1 : 0));
    });
  }

  /** Bytes of the stored model: int8 weight + fp32 scales + fp32 bias. */
  get storageBytes(): number {
    return this.outFeatures * this.inFeatures + 4 * this.weightScale.size + (this.bias ? 4 * this.outFeatures : 0);
  }

  override extraRepr(): string {
    const mode = this.inputScale > 0 ? `static(${this.inputScale.toPrecision(3)})` : 'dynamic';
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}, ` +
      `weight=int${this.weightBits}${this.perChannel ? ' per-channel' : ' per-tensor'}, activations=${mode}` +
      (this.outlierThreshold > 0 ? `, outlierThreshold=${this.outlierThreshold}` : '');
  }
}

/** A Sequential that also fuses QuantizedLinear followed by ReLU or GELU into one native call. */
export class QuantizedSequential extends Sequential {
  override forward(x: unknown): unknown {
    const mods = this.children();
    let y = x;
    for (let i = 0; i < mods.length; i++) {
      const m = mods[i];
      const next = mods[i + 1];
      const act = next instanceof ReLU ? 'relu' : next instanceof GELU ? 'gelu' : null;
      if ((m instanceof QuantizedLinear || m instanceof QatLinear || m instanceof Linear) && act && y instanceof Tensor) {
        y = m.forwardFused(y, act);
        i++;
        continue;
      }
      y = m.forward(y);
    }
    return y;
  }
}

export interface QatOptions {
  /** Per-output-channel weight scales (default true). */
  perChannel?: boolean;
  /** Weight bits (2..8, default 8). */
  weightBits?: number;
  /**
   * How activations are fake-quantized: 'dynamic' (default; per row with its own absmax, as the
   * dynamic int8 kernel does) or 'static' (one scale from a moving average of the batch absmax).
   */
  activations?: 'dynamic' | 'static';
  /** Moving-average constant of the static activation range (default 0.1). */
  momentum?: number;
}

/**
 * A Linear whose forward fake-quantizes its weight (symmetric int8, per channel) and its input, so
 * that training sees the rounding the int8 model will do; gradients pass by the straight-through
 * estimator. Holds the float weight and bias as parameters.
 */
export class QatLinear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Tensor;
  bias: Tensor | null;
  readonly perChannel: boolean;
  readonly weightBits: number;
  readonly activations: 'dynamic' | 'static';
  readonly momentum: number;
  /** Moving average of the input absmax (static activations); 0 before the first batch. */
  inputAbsMax = 0;

  constructor(linear: Linear, options: QatOptions = {}) {
    super();
    this.inFeatures = linear.inFeatures;
    this.outFeatures = linear.outFeatures;
    this.weight = this.registerParameter('weight', Parameter(wrap(native.clone(linear.weight.handle))))!;
    this.bias = this.registerParameter('bias', linear.bias ? Parameter(wrap(native.clone(linear.bias.handle))) : null);
    this.perChannel = options.perChannel ?? true;
    this.weightBits = checkBits(options.weightBits);
    this.activations = options.activations ?? 'dynamic';
    if (this.activations !== 'dynamic' && this.activations !== 'static') fail('INVALID_ARGUMENT', `QatLinear: activations must be 'dynamic' or 'static', got ${describe(options.activations)}`);
    this.momentum = options.momentum ?? 0.1;
  }

  private fakeWeight(): Tensor {
    const qmax = 2 ** (this.weightBits - 1) - 1;
    const axis = this.perChannel ? 0 : -1;
    const scale = noGrad(() => wrap(native.quantParams(this.weight.handle, axis, true, -qmax, qmax)[0]));
    return fakeQuantize(this.weight, scale, 0, -qmax, qmax, axis);
  }

  private fakeInput(x: Tensor): Tensor {
    if (this.activations === 'dynamic') {
      const k = x.shape[x.ndim - 1];
      const x2 = x.ndim === 2 ? x : ops.reshape(x, [-1, k]);
      const scale = noGrad(() => wrap(native.quantParams(x2.handle, 0, true, -127, 127)[0]));
      const y = fakeQuantize(x2, scale, 0, -127, 127, 0);
      return x.ndim === 2 ? y : ops.reshape(y, x.shape);
    }
    if (this.training) {
      const m = noGrad(() => {
        const a = wrap(native.reduce('max', wrap(native.unary('abs', x.handle)).handle, [], false));
        return a.item();
      });
      this.inputAbsMax = this.inputAbsMax === 0 ? m : (1 - this.momentum) * this.inputAbsMax + this.momentum * m;
    }
    if (this.inputAbsMax === 0) return x;
    return fakeQuantize(x, this.inputAbsMax / 127, 0, -127, 127);
  }

  override forward(x: Tensor): Tensor {
    return this.forwardFused(x, 'none');
  }

  forwardFused(x: Tensor, activation: Activation): Tensor {
    const t = checkTensor(x, 'input');
    return F.linear(this.fakeInput(t), this.fakeWeight(), this.bias, activation);
  }

  /** The int8 layer this trains towards. */
  toQuantized(options: { outlierThreshold?: number } = {}): QuantizedLinear {
    return QuantizedLinear.fromFloat(this.weight, this.bias, {
      perChannel: this.perChannel,
      weightBits: this.weightBits,
      inputScale: this.activations === 'static' ? this.inputAbsMax / 127 : 0,
      outlierThreshold: options.outlierThreshold ?? 0,
    });
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}, weight=int${this.weightBits}${this.perChannel ? ' per-channel' : ' per-tensor'}, activations=${this.activations}`;
  }
}
