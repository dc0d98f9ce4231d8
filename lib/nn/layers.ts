// The layers: each a Module whose forward calls nn.functional.
import { checkInt, checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import * as ops from '../ops/index';
import { checkTensor, Device, Tensor, wrap } from '../tensor';
import * as F from './functional';
import * as init from './init';
import { Module, Parameter } from './module';

interface LayerOptions {
  device?: Device;
}

function param(shape: number[], device: Device | undefined): Tensor {
  return Parameter(wrap(native.full(shape, 0, 'float32', device ?? 'cpu')));
}

/**
 * y = x @ weight^T + bias; weight [out, in], bias [out]. Initialised as PyTorch's Linear:
 * kaiming_uniform(a = sqrt(5)) weights and U(±1/sqrt(in)) bias, from the library RNG.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Tensor;
  bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, options: LayerOptions & { bias?: boolean } = {}) {
    super();
    checkOptions(options, 'options');
    this.inFeatures = checkInt(inFeatures, 'inFeatures', 0);
    this.outFeatures = checkInt(outFeatures, 'outFeatures', 0);
    this.weight = this.registerParameter('weight', param([outFeatures, inFeatures], options.device))!;
    this.bias = this.registerParameter('bias', options.bias === false ? null : param([outFeatures], options.device));
    this.resetParameters();
  }

  resetParameters(): void {
    init.kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) {
      const bound = this.inFeatures > 0 ? 1 / Math.sqrt(this.inFeatures) : 0;
      init.uniform(this.bias, -bound, bound);
    }
  }

  override forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }

  /** @internal The forward with an activation fused into the GEMM epilogue (Sequential uses it). */
  forwardFused(x: Tensor, activation: F.Activation): Tensor {
    return F.linear(x, this.weight, this.bias, activation);
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/** Applies its modules in order. A Linear followed by ReLU or GELU runs as one fused native call. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) fail('INVALID_ARGUMENT', `Sequential: argument ${i} is ${describe(m)}, expected a Module`);
      this.registerModule(String(i), m);
    });
  }

  get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    const c = this.children();
    const m = c[i < 0 ? i + c.length : i];
    if (!m) fail('INVALID_ARGUMENT', `Sequential: index ${i} is out of range for ${c.length} modules`);
    return m;
  }
  append(m: Module): this {
    this.registerModule(String(this.children().length), m);
    return this;
  }

  override forward(x: unknown): unknown {
    const mods = this.children();
    let y = x;
    for (let i = 0; i < mods.length; i++) {
      const m = mods[i];
      const next = mods[i + 1];
      if (m instanceof Linear && (next instanceof ReLU || next instanceof GELU) && y instanceof Tensor) {
        y = m.forwardFused(y, next instanceof ReLU ? 'relu' : 'gelu');
        i++;
        continue;
      }
      y = m.forward(y);
    }
    return y;
  }
}

/** A list of modules, registered as '0', '1', ... (forward is not defined: index it). */
export class ModuleList extends Module {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m) => this.append(m));
  }
  append(m: Module): this {
    if (!(m instanceof Module)) fail('INVALID_ARGUMENT', `ModuleList: expected a Module, got ${describe(m)}`);
    this.registerModule(String(this.children().length), m);
    return this;
  }
  at(i: number): Module {
    return this.children()[i];
  }
  get length(): number {
    return this.children().length;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
  override forward(): never {
    return fail('INVALID_ARGUMENT', 'ModuleList has no forward: call its modules');
  }
}

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}
export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}
/** GELU, exact (erf) form, as PyTorch's default. */
export class GELU extends Module {
  override forward(x: Tensor): Tensor {
    return ops.gelu(x);
  }
}
export class SiLU extends Module {
  override forward(x: Tensor): Tensor {
    return ops.silu(x);
  }
}
export class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return ops.tanh(x);
  }
}
export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return ops.sigmoid(x);
  }
}
export class Softmax extends Module {
  constructor(readonly axis = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return ops.softmax(x, this.axis);
  }
}

/** Zeroes elements with probability p during training (scaling the rest by 1/(1-p)); identity in eval. */
export class Dropout extends Module {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail('INVALID_ARGUMENT', `Dropout: expected p in [0, 1], got ${describe(p)}`);
    this.p = p;
  }
  override forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Layer normalisation over the trailing normalizedShape dims, with a learned scale and shift. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  weight: Tensor | null;
  bias: Tensor | null;
  constructor(normalizedShape: number | number[], options: LayerOptions & { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    checkOptions(options, 'options');
    const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
    if (!Array.isArray(ns) || ns.length === 0) fail('INVALID_ARGUMENT', `LayerNorm: expected a size or a list of sizes, got ${describe(normalizedShape)}`);
    ns.forEach((d) => checkInt(d, 'normalizedShape', 0));
    this.normalizedShape = ns.slice();
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = this.registerParameter('weight', affine ? init.ones(param(ns, options.device)) : null);
    this.bias = this.registerParameter('bias', affine && options.bias !== false ? param(ns, options.device) : null);
  }
  override forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
  override extraRepr(): string {
    return `[${this.normalizedShape.join(', ')}], eps=${this.eps}`;
  }
}

/** A lookup table: int32 indices [...] -> rows of weight [num, dim] ([..., dim]); gradients by scatter-add. */
export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  weight: Tensor;
  constructor(numEmbeddings: number, embeddingDim: number, options: LayerOptions = {}) {
    super();
    this.numEmbeddings = checkInt(numEmbeddings, 'numEmbeddings', 0);
    this.embeddingDim = checkInt(embeddingDim, 'embeddingDim', 0);
    this.weight = this.registerParameter('weight', init.normal(param([numEmbeddings, embeddingDim], options.device)))!;
  }
  override forward(indices: Tensor): Tensor {
    const idx = checkTensor(indices, 'indices');
    if (idx.dtype !== 'int32') fail('DTYPE', `Embedding: expected int32 indices, got ${idx.dtype}`);
    const flat = idx.ndim === 1 ? idx : ops.reshape(idx, [-1]);
    const rows = ops.indexSelect(this.weight, 0, flat);
    return idx.ndim === 1 ? rows : ops.reshape(rows, [...idx.shape, this.embeddingDim]);
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}`;
  }
}

/** Merges dims startAxis..endAxis (default: all but the batch dim). */
export class Flatten extends Module {
  constructor(readonly startAxis = 1, readonly endAxis = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return ops.flatten(x, this.startAxis, this.endAxis);
  }
}
