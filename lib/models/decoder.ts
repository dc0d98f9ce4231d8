// The composed decoder step of a GPT (cpp/ops/decoder.h): the model's tensors are described to the
// addon once per generation, then every step is one native call instead of ~30 per layer (at
// dim 128 those calls' own cost was about three quarters of a token's time).
import { DecoderHandle, DecoderLinearSpec, DecoderNormSpec, DecoderSpec, native } from '../native';
import { LayerKVCache, MultiheadAttention, CausalSelfAttention } from '../nn/attention';
import { LayerNorm, Linear } from '../nn/layers';
import { Module } from '../nn/module';
import { TransformerBlock } from '../nn/transformer';
import { QuantizedLinear } from '../quant/modules';
import { Tensor, wrap } from '../tensor';

// Only the exact classes: a subclass may override forward(), and then the modules must run.
function isExactly(m: unknown, ...classes: (abstract new (...args: never[]) => unknown)[]): boolean {
  return typeof m === 'object' && m !== null && classes.some((c) => Object.getPrototypeOf(m) === c.prototype);
}

function linearSpec(m: unknown): DecoderLinearSpec | null {
  if (isExactly(m, Linear)) {
    const l = m as Linear;
    return { weight: l.weight.handle, bias: l.bias ? l.bias.handle : null };
  }
  if (isExactly(m, QuantizedLinear)) {
    const q = m as QuantizedLinear;
    return {
      packed: q.packedWeight.handle, colSums: q.colSums.handle, wScale: q.weightScale.handle,
      bias: q.bias ? q.bias.handle : null, inputScale: q.inputScale, outlierThreshold: q.outlierThreshold,
    };
  }
  return null;
}

function normSpec(m: unknown): DecoderNormSpec | null {
  if (!isExactly(m, LayerNorm) || (m as LayerNorm).normalizedShape.length !== 1) return null;
  const n = m as LayerNorm;
  return { weight: n.weight ? n.weight.handle : null, bias: n.bias ? n.bias.handle : null, eps: n.eps };
}

/** What a decoder is built from: GPT's parts (lm head tied to the token embedding). */
export interface DecoderParts {
  tokenEmbedding: Tensor;
  positionEmbedding: Tensor;
  blocks: Module[];
  finalNorm: Module;
}

export class Decoder {
  private handle: DecoderHandle | null;

  private constructor(handle: DecoderHandle) {
    this.handle = handle;
  }

  /**
   * A decoder over `caches` (one per block), or null when a module is not one the native step
   * implements (a subclass, another norm or attention): the caller then runs the modules.
   */
  static tryCreate(parts: DecoderParts, caches: LayerKVCache[]): Decoder | null {
    const finalNorm = normSpec(parts.finalNorm);
    if (!finalNorm || caches.length !== parts.blocks.length) return null;
    let heads = 0;
    let causal = true;
    const layers: DecoderSpec['layers'] = [];
    for (let i = 0; i < parts.blocks.length; i++) {
      const b = parts.blocks[i];
      if (!isExactly(b, TransformerBlock)) return null;
      const block = b as TransformerBlock;
      if (!isExactly(block.attn, MultiheadAttention, CausalSelfAttention)) return null;
      const attn = block.attn as MultiheadAttention;
      if (i > 0 && (attn.heads !== heads || attn.causal !== causal)) return null;
      heads = attn.heads;
      causal = attn.causal;
      const [ln1, ln2] = [normSpec(block.ln1), normSpec(block.ln2)];
      const [qkv, proj, fc1, fc2] = [attn.qkv, attn.proj, block.fc1, block.fc2].map(linearSpec);
      if (!ln1 || !ln2 || !qkv || !proj || !fc1 || !fc2) return null;
      layers.push({ ln1, ln2, qkv, proj, fc1, fc2, cacheK: caches[i].k.handle, cacheV: caches[i].v.handle });
    }
    const spec: DecoderSpec = {
      heads: heads || 1, causal,
      tokenEmbedding: parts.tokenEmbedding.handle, positionEmbedding: parts.positionEmbedding.handle,
      finalNorm, lmHead: { weight: parts.tokenEmbedding.handle, bias: null }, layers,
    };
    return new Decoder(native.decoderCreate(spec));
  }

  /**
   * Runs ids [B, T] (int32) at positions [start, start + T) on top of the caches and returns the
   * last position's logits [B, vocab]. The caches' `length` is the caller's to advance.
   */
  step(ids: Tensor, start: number): Tensor {
    if (!this.handle) throw new Error('Decoder.step: the decoder was released');
    return wrap(native.decoderStep(this.handle, ids.handle, start));
  }

  /** Lets go of the model's tensors and caches now (the garbage collector would, later). */
  release(): void {
    if (this.handle) native.decoderRelease(this.handle);
    this.handle = null;
  }
}
