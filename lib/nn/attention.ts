// Attention: the fused scaled-dot-product kernel (one native call each way, the score matrix
// never stored), and multi-head self-attention built on it with a fused qkv projection and an
// optional KV cache for generation.
import { needsGrad, record } from '../autograd';
import { checkInt, checkOptions, describe, fail } from '../errors';
import { Handle, native } from '../native';
import { checkTensor, Device, Tensor, wrap } from '../tensor';
import * as F from './functional';
import { Linear } from './layers';
import { Module } from './module';

export interface AttentionOptions {
  /** Query i sees keys j <= i + (Tk - Tq) only (default false). */
  causal?: boolean;
  /** Multiplies the scores; default 1/sqrt(D). */
  scale?: number;
}

function attentionArgs(options: AttentionOptions): { causal: boolean; scale: number | null } {
  const o = checkOptions(options, 'options');
  for (const k of Object.keys(o)) if (k !== 'causal' && k !== 'scale') fail('INVALID_ARGUMENT', `attention: unknown option '${k}' (expected causal, scale)`);
  if (o.causal !== undefined && typeof o.causal !== 'boolean') fail('INVALID_ARGUMENT', `attention: expected causal to be a boolean, got ${describe(o.causal)}`);
  if (o.scale !== undefined && (typeof o.scale !== 'number' || !Number.isFinite(o.scale))) fail('INVALID_ARGUMENT', `attention: expected scale to be a finite number, got ${describe(o.scale)}`);
  return { causal: (o.causal as boolean | undefined) ?? false, scale: (o.scale as number | undefined) ?? null };
}

/**
 * softmax(q kᵀ · scale [causal mask]) v for q [B, H, Tq, D], k and v [B, H, Tk, D], as one fused
 * native kernel (tiled, online softmax; the backward recomputes the probabilities from the saved
 * per-row log-sum-exp). Returns [B, H, Tq, D]. Forward and backward on the CPU and on CUDA.
 */
export function scaledDotProductAttention(query: Tensor, key: Tensor, value: Tensor, options: AttentionOptions = {}): Tensor {
  const q = checkTensor(query, 'query');
  const k = checkTensor(key, 'key');
  const v = checkTensor(value, 'value');
  const { causal, scale } = attentionArgs(options);
  const [ho, hl] = native.attentionForward(q.handle, k.handle, v.handle, causal, scale);
  const out = wrap(ho);
  const lse = wrap(hl);
  if (!needsGrad(q, k, v)) {
    lse.dispose();
    return out;
  }
  return record(out, 'attention', [q, k, v], (g) => {
    const hs = native.attentionBackward(g.handle, q.handle, k.handle, v.handle, out.handle, lse.handle, causal, scale, null, null, null);
    const [dq, dk, dv] = hs.map((h) => (h ? wrap(h) : null));
    return [q.requiresGrad ? dq : null, k.requiresGrad ? dk : null, v.requiresGrad ? dv : null];
  }, [lse]);
}

/** The [B, H, T, D] view of head-split slot `which` (0 q, 1 k, 2 v) of a [B, T, 3, H, D] tensor. */
function slot(t5: Tensor, which: number): Tensor {
  const sel = wrap(native.select(t5.handle, 2, which));
  const out = wrap(native.transpose(sel.handle, 1, 2));
  sel.dispose();
  return out;
}

/** [B, H, T, D] (any strides) -> [B, T, H * D]. */
function mergeHeads(o: Tensor): Tensor {
  const [B, H, T, D] = o.shape;
  const t = wrap(native.transpose(o.handle, 1, 2));
  const y = wrap(native.reshape(t.handle, [B, T, H * D]));
  t.dispose();
  return y;
}

/** The keys and values one attention layer has seen, for generation one position at a time. */
export interface LayerKVCache {
  /** [B, H, capacity, D] */
  k: Tensor;
  v: Tensor;
  /** Positions filled. */
  length: number;
  readonly capacity: number;
}

export function createLayerCache(batch: number, heads: number, headDim: number, capacity: number, device: Device = 'cpu'): LayerKVCache {
  const shape = [batch, heads, capacity, headDim];
  return {
    k: wrap(native.full(shape, 0, 'float32', device)).keep(),
    v: wrap(native.full(shape, 0, 'float32', device)).keep(),
    length: 0,
    capacity,
  };
}

/**
 * Self-attention on a fused projection qkv [B, T, 3C] (q, k, v interleaved as [3, H, D] per
 * position): returns [B, T, C]. One native call each way; the backward writes dq, dk and dv
 * straight into the three slots of one dqkv buffer.
 */
export function selfAttentionQkv(qkv: Tensor, heads: number, options: AttentionOptions = {}, cache?: LayerKVCache): Tensor {
  const x = checkTensor(qkv, 'qkv');
  checkInt(heads, 'heads', 1);
  const { causal, scale } = attentionArgs(options);
  if (x.ndim !== 3 || x.shape[2] % (3 * heads) !== 0) {
    fail('SHAPE_MISMATCH', `selfAttention: expected qkv [B, T, 3 * heads * D] with ${heads} heads, got [${x.shape.join(', ')}]`);
  }
  const [B, T, C3] = x.shape;
  const C = C3 / 3;
  const D = C / heads;
  if (cache) {
    // One native call: append the new keys/values and attend over the cache.
    if (needsGrad(x)) fail('INVALID_ARGUMENT', 'selfAttention: a KV cache is for inference: run it inside noGrad()');
    const y = wrap(native.attentionQkvCached(x.handle, cache.k.handle, cache.v.handle, cache.length, heads, causal, scale));
    cache.length += T;
    return y;
  }
  const x5 = wrap(native.reshape(x.handle, [B, T, 3, heads, D]));
  const q = slot(x5, 0);
  const k = slot(x5, 1);
  const v = slot(x5, 2);
  const [ho, hl] = native.attentionForward(q.handle, k.handle, v.handle, causal, scale);
  const out = wrap(ho);
  const lse = wrap(hl);
  const y = mergeHeads(out);
  if (!needsGrad(x)) {
    for (const t of [out, lse, x5, q, k, v]) t.dispose();
    return y;
  }
  return record(y, 'selfAttention', [x], (g) => {
    const d5 = wrap(native.full([B, T, 3, heads, D], 0, 'float32', x.device));
    const [dq, dk, dv] = [slot(d5, 0), slot(d5, 1), slot(d5, 2)];
    const g4 = wrap(native.reshape(g.handle, [B, T, heads, D]));
    const gt = wrap(native.transpose(g4.handle, 1, 2));
    native.attentionBackward(gt.handle, q.handle, k.handle, v.handle, out.handle, lse.handle, causal, scale, dq.handle, dk.handle, dv.handle)
      .forEach((h: Handle | null) => h && wrap(h).dispose());
    return [wrap(native.reshape(d5.handle, [B, T, C3]))];
  }, [out, lse, x5, q, k, v]);
}

export interface MultiheadAttentionOptions {
  /** Mask future positions (default false; CausalSelfAttention sets it). */
  causal?: boolean;
  /** Dropout on the output projection (residual dropout), training only. */
  dropout?: number;
  bias?: boolean;
  device?: Device;
}

/**
 * Multi-head self-attention: one fused Linear makes q, k and v ([C] -> [3C]), the fused kernel
 * attends, a Linear projects back. Input and output [B, T, C]. Attention-probability dropout is
 * not applied (the fused kernel never forms the probabilities); dropout acts on the output.
 */
export class MultiheadAttention extends Module {
  readonly dim: number;
  readonly heads: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly dropoutP: number;
  qkv: Linear;
  proj: Linear;

  constructor(dim: number, heads: number, options: MultiheadAttentionOptions = {}) {
    super();
    checkOptions(options, 'options');
    this.dim = checkInt(dim, 'dim', 1);
    this.heads = checkInt(heads, 'heads', 1);
    if (dim % heads !== 0) fail('INVALID_ARGUMENT', `MultiheadAttention: dim ${dim} is not divisible by heads ${heads}`);
    this.headDim = dim / heads;
    this.causal = options.causal ?? false;
    this.dropoutP = options.dropout ?? 0;
    if (typeof this.dropoutP !== 'number' || !(this.dropoutP >= 0 && this.dropoutP < 1)) fail('INVALID_ARGUMENT', `MultiheadAttention: expected dropout in [0, 1), got ${describe(options.dropout)}`);
    this.qkv = new Linear(dim, 3 * dim, { bias: options.bias, device: options.device });
    this.proj = new Linear(dim, dim, { bias: options.bias, device: options.device });
  }

  /** x [B, T, C] -> [B, T, C]; with a cache (inference), x holds the new positions only. */
  override forward(x: Tensor, cache?: LayerKVCache): Tensor {
    const qkv = this.qkv.forward(x);
    const a = selfAttentionQkv(qkv, this.heads, { causal: this.causal }, cache);
    if (!qkv.requiresGrad) qkv.dispose();
    const y = this.proj.forward(a);
    if (!a.requiresGrad) a.dispose();
    return F.dropout(y, this.dropoutP, this.training);
  }

  createCache(batch: number, capacity: number): LayerKVCache {
    return createLayerCache(batch, this.heads, this.headDim, capacity, this.qkv.weight.device);
  }

  override extraRepr(): string {
    return `dim=${this.dim}, heads=${this.heads}, causal=${this.causal}`;
  }
}

/** Masked (causal) multi-head self-attention, as in GPT. */
export class CausalSelfAttention extends MultiheadAttention {
  constructor(dim: number, heads: number, options: Omit<MultiheadAttentionOptions, 'causal'> = {}) {
    super(dim, heads, { ...options, causal: true });
  }
}
