// The pre-LayerNorm transformer block of GPT-2: x + attn(ln1(x)), then x + mlp(ln2(x)).
import { checkInt, checkOptions, describe, fail } from '../errors';
import * as ops from '../ops/index';
import { Device, Tensor } from '../tensor';
import { LayerKVCache, MultiheadAttention } from './attention';
import * as F from './functional';
import { LayerNorm, Linear } from './layers';
import { Module } from './module';

export interface TransformerBlockOptions {
  /** Causal self-attention (default true). */
  causal?: boolean;
  /** Residual dropout after the attention and the MLP (default 0). */
  dropout?: number;
  /** Hidden size of the MLP as a multiple of dim (default 4). */
  mlpRatio?: number;
  bias?: boolean;
  device?: Device;
}

export class TransformerBlock extends Module {
  readonly dim: number;
  readonly dropoutP: number;
  ln1: LayerNorm;
  attn: MultiheadAttention;
  ln2: LayerNorm;
  fc1: Linear;
  fc2: Linear;

  constructor(dim: number, heads: number, options: TransformerBlockOptions = {}) {
    super();
    checkOptions(options, 'options');
    this.dim = checkInt(dim, 'dim', 1);
    this.dropoutP = options.dropout ?? 0;
    if (typeof this.dropoutP !== 'number' || !(this.dropoutP >= 0 && this.dropoutP < 1)) fail('INVALID_ARGUMENT', `TransformerBlock: expected dropout in [0, 1), got ${describe(options.dropout)}`);
    const ratio = options.mlpRatio ?? 4;
    const hidden = checkInt(Math.round(ratio * dim), 'mlp hidden size', 1);
    const dev = { device: options.device };
    this.ln1 = new LayerNorm(dim, dev);
    this.attn = new MultiheadAttention(dim, heads, { causal: options.causal ?? true, dropout: this.dropoutP, bias: options.bias, device: options.device });
    this.ln2 = new LayerNorm(dim, dev);
    this.fc1 = new Linear(dim, hidden, { bias: options.bias, device: options.device });
    this.fc2 = new Linear(hidden, dim, { bias: options.bias, device: options.device });
  }

  /** x [B, T, C] -> [B, T, C]; with a cache (inference), x holds the new positions only. */
  override forward(x: Tensor, cache?: LayerKVCache): Tensor {
    const a = this.attn.forward(this.ln1.forward(x), cache);
    const h = ops.add(x, a);
    // Linear + GELU in one GEMM epilogue.
    const m = this.fc2.forward(this.fc1.forwardFused(this.ln2.forward(h), 'gelu'));
    return ops.add(h, F.dropout(m, this.dropoutP, this.training));
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
