// A GPT-style decoder-only language model: token and learned position embeddings, pre-LayerNorm
// transformer blocks with fused causal attention, a final LayerNorm and an lm head that shares
// the token embedding's weights. Generation runs one position at a time on per-layer KV caches.
import * as fs from 'fs';
import { noGrad } from '../autograd';
import { checkInt, checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import { Device, Tensor, tidy, wrap } from '../tensor';
import * as ops from '../ops/index';
import { Module } from '../nn/module';
import { Embedding, LayerNorm, ModuleList } from '../nn/layers';
import * as F from '../nn/functional';
import * as init from '../nn/init';
import { createLayerCache, LayerKVCache } from '../nn/attention';
import { TransformerBlock } from '../nn/transformer';
import { SeededRandom } from '../data/random';
import { getNumThreads, setNumThreads } from '../runtime';
import { loadCheckpoint, saveCheckpoint, Stateful } from '../train/checkpoint';
import * as safetensors from '../io/safetensors';
import { CharTokenizer, CharTokenizerJSON } from './tokenizer';
import { Decoder } from './decoder';

export interface GPTConfig {
  vocabSize: number;
  /** The longest sequence (learned positions). */
  context: number;
  layers: number;
  heads: number;
  /** Model width (a multiple of heads). */
  dim: number;
  /** Embedding and residual dropout (default 0). */
  dropout?: number;
  /** Biases in the Linear layers (default true). */
  bias?: boolean;
}

export interface GPTOptions {
  tokenizer?: CharTokenizer;
  device?: Device;
}

export interface GenerateOptions {
  /** Tokens to generate (default 100). */
  maxTokens?: number;
  /** Softmax temperature; 0 picks the most likely token (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens only. */
  topK?: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  /** Called with each token as it is made (streaming). */
  onToken?: (id: number, text: string | undefined) => void;
  /** Use the KV cache (default true); false recomputes the whole window every token (for checks). */
  cache?: boolean;
  /**
   * With the cache, run each step as one native call through the composed decoder (default true;
   * models whose modules it does not implement fall back to the modules). false runs the modules
   * one by one (for checks).
   */
  fused?: boolean;
  /**
   * CPU threads for the one-position steps (default: 1 when dim <= 256, where a step is too small
   * to split and pool synchronisation costs more than it saves; else the current count). The
   * prompt is processed with the current count, which is restored afterwards.
   */
  decodeThreads?: number;
}

export interface GenerateResult {
  /** The generated ids (the prompt excluded). */
  tokens: number[];
  /** Their text, when the model has a tokenizer. */
  text?: string;
}

const CONFIG_KEYS = ['vocabSize', 'context', 'layers', 'heads', 'dim', 'dropout', 'bias'];

function checkConfig(config: GPTConfig): Required<GPTConfig> {
  const c = checkOptions(config, 'config');
  for (const k of Object.keys(c)) if (!CONFIG_KEYS.includes(k)) fail('INVALID_ARGUMENT', `gpt: unknown option '${k}' (expected ${CONFIG_KEYS.join(', ')})`);
  const out: Required<GPTConfig> = {
    vocabSize: checkInt(c.vocabSize, 'vocabSize', 1),
    context: checkInt(c.context, 'context', 1),
    layers: checkInt(c.layers, 'layers', 0),
    heads: checkInt(c.heads, 'heads', 1),
    dim: checkInt(c.dim, 'dim', 1),
    dropout: (c.dropout as number | undefined) ?? 0,
    bias: (c.bias as boolean | undefined) ?? true,
  };
  if (out.dim % out.heads !== 0) fail('INVALID_ARGUMENT', `gpt: dim ${out.dim} is not divisible by heads ${out.heads}`);
  if (out.dim / out.heads > 256) fail('INVALID_ARGUMENT', `gpt: the head size dim/heads must be at most 256, got ${out.dim / out.heads}`);
  if (typeof out.dropout !== 'number' || !(out.dropout >= 0 && out.dropout < 1)) fail('INVALID_ARGUMENT', `gpt: expected dropout in [0, 1), got ${describe(c.dropout)}`);
  return out;
}

export class GPT extends Module {
  readonly config: Required<GPTConfig>;
  tokenizer: CharTokenizer | null;
  wte: Embedding;
  wpe: Embedding;
  blocks: ModuleList;
  lnF: LayerNorm;

  constructor(config: GPTConfig, options: GPTOptions = {}) {
    super();
    this.config = checkConfig(config);
    const { vocabSize, context, layers, heads, dim, dropout, bias } = this.config;
    const device = options.device;
    this.tokenizer = options.tokenizer ?? null;
    if (this.tokenizer && this.tokenizer.vocabSize !== vocabSize) {
      fail('INVALID_ARGUMENT', `gpt: the tokenizer has ${this.tokenizer.vocabSize} tokens, the config says vocabSize ${vocabSize}`);
    }
    this.wte = new Embedding(vocabSize, dim, { device });
    this.wpe = new Embedding(context, dim, { device });
    this.blocks = new ModuleList(Array.from({ length: layers }, () => new TransformerBlock(dim, heads, { dropout, bias, device })));
    this.lnF = new LayerNorm(dim, { device, bias });
    // GPT-2's initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2 * layers).
    noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        if (name.startsWith('lnF') || /\.ln[12]\./.test(name)) continue;
        if (name.endsWith('.bias')) init.zeros(p);
        else if (/(attn\.proj|fc2)\.weight$/.test(name)) init.normal(p, 0, 0.02 / Math.sqrt(2 * Math.max(layers, 1)));
        else init.normal(p, 0, 0.02);
      }
    });
  }

  private get blockList(): TransformerBlock[] {
    return this.blocks.children() as TransformerBlock[];
  }

  private embed(idx: Tensor, start: number): Tensor {
    if (idx.dtype !== 'int32' || idx.ndim !== 2) fail('INVALID_ARGUMENT', `GPT: expected int32 token ids [B, T], got ${idx.dtype} [${idx.shape.join(', ')}]`);
    const T = idx.shape[1];
    if (start + T > this.config.context) fail('INVALID_ARGUMENT', `GPT: positions ${start}..${start + T - 1} exceed the context of ${this.config.context}`);
    const pos = wrap(native.arange(start, start + T, 1, 'int32', this.wte.weight.device));
    const x = ops.add(this.wte.forward(idx), this.wpe.forward(pos));
    return F.dropout(x, this.config.dropout, this.training);
  }

  /** Logits [B, T, vocabSize] for token ids [B, T] (int32). */
  override forward(idx: Tensor): Tensor {
    let x = this.embed(idx, 0);
    for (const b of this.blockList) x = b.forward(x);
    // The lm head is the token embedding, transposed (weight tying).
    return F.linear(this.lnF.forward(x), this.wte.weight);
  }

  /** Mean cross entropy (nats per token) of the next-token predictions: ids [B, T], targets [B, T]. */
  loss(idx: Tensor, targets: Tensor): Tensor {
    const logits = this.forward(idx);
    return F.crossEntropy(ops.reshape(logits, [-1, this.config.vocabSize]), ops.reshape(targets, [-1]));
  }

  /** One empty KV cache per layer, for `batch` sequences of up to `context` positions. */
  createCache(batch = 1): LayerKVCache[] {
    const { heads, dim, context } = this.config;
    return this.blockList.map(() => createLayerCache(batch, heads, dim / heads, context, this.wte.weight.device));
  }

  /**
   * Runs the new positions idx [B, Tn] through the model on top of the caches (which grow by Tn)
   * and returns the logits of the last position, [B, vocabSize]. Inference only (no gradients).
   */
  forwardCached(idx: Tensor, caches: LayerKVCache[]): Tensor {
    if (caches.length !== this.blockList.length) fail('INVALID_ARGUMENT', `forwardCached: expected ${this.blockList.length} layer caches, got ${caches.length}`);
    return noGrad(() => {
      const start = caches.length ? caches[0].length : 0;
      let x = this.embed(idx, start);
      this.blockList.forEach((b, i) => (x = b.forward(x, caches[i])));
      const last = ops.select(x, 1, idx.shape[1] - 1);
      return F.linear(this.lnF.forward(last), this.wte.weight);
    });
  }

  /**
   * Continues `prompt` (text, with a tokenizer, or token ids) by up to maxTokens tokens. With the
   * KV cache (default) each new token costs one position's work per layer; when the context is
   * full the cache is rebuilt from the last half-context tokens (so the window slides in steps).
   */
  generate(prompt: string | ArrayLike<number>, options: GenerateOptions = {}): GenerateResult {
    const o = checkOptions(options, 'options');
    const maxTokens = o.maxTokens === undefined ? 100 : checkInt(o.maxTokens, 'maxTokens', 0);
    const temperature = (o.temperature as number | undefined) ?? 1;
    if (typeof temperature !== 'number' || !(temperature >= 0) || !Number.isFinite(temperature)) fail('INVALID_ARGUMENT', `generate: expected temperature >= 0, got ${describe(o.temperature)}`);
    const topK = o.topK === undefined ? 0 : checkInt(o.topK, 'topK', 1);
    const rng = new SeededRandom(o.seed === undefined ? 0 : checkInt(o.seed, 'seed', 0));
    const onToken = o.onToken as GenerateOptions['onToken'];
    const useCache = o.cache === undefined ? true : Boolean(o.cache);
    const threadsBefore = getNumThreads();
    const decodeThreads = o.decodeThreads === undefined ? (this.config.dim <= 256 ? 1 : threadsBefore) : checkInt(o.decodeThreads, 'decodeThreads', 1);
    let ids: number[];
    if (typeof prompt === 'string') {
      if (!this.tokenizer) fail('INVALID_ARGUMENT', 'generate: a text prompt needs a model with a tokenizer; pass token ids');
      ids = Array.from(this.tokenizer.encode(prompt));
    } else ids = Array.from(prompt);
    if (ids.length === 0) fail('INVALID_ARGUMENT', 'generate: the prompt is empty (give at least one token)');
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) fail('INVALID_ARGUMENT', `generate: token id ${describe(id)} is out of range`);
    const { context } = this.config;
    const device = this.wte.weight.device;
    const idsTensor = (xs: number[]) => wrap(native.fromBuffer(Int32Array.from(xs), [1, xs.length], 'int32', device));
    const all = ids.slice();
    const out: number[] = [];
    const wasTraining = this.training;
    this.eval();
    const caches = useCache ? this.createCache(1) : [];
    let decoder: Decoder | null = null;
    try {
      if (useCache && o.fused !== false) {
        decoder = Decoder.tryCreate({ tokenEmbedding: this.wte.weight, positionEmbedding: this.wpe.weight, blocks: this.blockList, finalNorm: this.lnF }, caches);
      }
      // The window's ids go in on top of the caches; the logits of its last position come back.
      const extend = (window: number[]) => tidy(() => {
        if (!decoder) return this.forwardCached(idsTensor(window), caches).data() as Float32Array;
        const start = caches[0]?.length ?? 0;
        const logits = decoder.step(idsTensor(window), start).data() as Float32Array;
        for (const c of caches) c.length = start + window.length;
        return logits;
      });
      const prefill = (window: number[]) => {
        for (const c of caches) c.length = 0;
        return extend(window);
      };
      const full = () => tidy(() => noGrad(() => {
        const window = all.slice(-context);
        const logits = this.forward(idsTensor(window));
        return ops.select(ops.select(logits, 0, 0), 0, window.length - 1).data() as Float32Array;
      }));
      let logits = maxTokens > 0 ? (useCache ? prefill(all.slice(-context)) : full()) : null;
      if (useCache && decodeThreads !== threadsBefore) setNumThreads(decodeThreads);
      for (let i = 0; i < maxTokens; i++) {
        const next = sample(logits!, temperature, topK, rng);
        out.push(next);
        all.push(next);
        if (onToken) onToken(next, this.tokenizer ? this.tokenizer.decode([next]) : undefined);
        if (i === maxTokens - 1) break;
        if (!useCache) logits = full();
        else if (caches.length === 0 || caches[0].length < context) logits = extend([next]);
        else logits = prefill(all.slice(-Math.max(1, Math.floor(context / 2))));
      }
    } finally {
      decoder?.release();
      if (getNumThreads() !== threadsBefore) setNumThreads(threadsBefore);
      for (const c of caches) {
        c.k.dispose();
        c.v.dispose();
      }
      this.train(wasTraining);
    }
    return { tokens: out, text: this.tokenizer ? this.tokenizer.decode(out) : undefined };
  }

  /** Bytes of the parameters (float32). */
  get sizeBytes(): number {
    return this.numParameters() * 4;
  }

  /** Saves the model (and optionally training state) as a Joule checkpoint with its config and tokenizer in the metadata. */
  save(file: string, state: { optimizer?: Stateful; scheduler?: Stateful; step?: number; extra?: Record<string, unknown> } = {}): void {
    saveCheckpoint(file, {
      model: this,
      optimizer: state.optimizer,
      scheduler: state.scheduler,
      step: state.step ?? 0,
      extra: { ...(state.extra ?? {}), gpt: { ...this.config }, tokenizer: this.tokenizer ? this.tokenizer.toJSON() : null },
    });
  }

  /** The config and tokenizer stored in a checkpoint written by save(), without loading its tensors. */
  static readMetadata(file: string): { config: GPTConfig; tokenizer: CharTokenizer | null; extra: Record<string, unknown> } {
    if (!fs.existsSync(file)) fail('INVALID_ARGUMENT', `GPT.load: ${file} does not exist`);
    const header = safetensors.inspect(file);
    const raw = header.metadata['joule.extra'];
    if (!raw) fail('CHECKPOINT_CORRUPT', `${file}: no GPT config in the checkpoint metadata`);
    let extra: Record<string, unknown>;
    try {
      extra = JSON.parse(raw) as Record<string, unknown>;
    } catch (e) {
      return fail('CHECKPOINT_CORRUPT', `${file}: the metadata is not valid JSON (${(e as Error).message})`);
    }
    const config = extra.gpt as GPTConfig | undefined;
    if (!config || typeof config !== 'object') fail('CHECKPOINT_CORRUPT', `${file}: no GPT config in the checkpoint metadata`);
    const tok = extra.tokenizer as CharTokenizerJSON | null | undefined;
    return { config, tokenizer: tok ? CharTokenizer.fromJSON(tok) : null, extra };
  }

  /** A model rebuilt from a checkpoint written by save() (config, tokenizer and weights). */
  static load(file: string, options: { device?: Device } = {}): GPT {
    const { config, tokenizer } = GPT.readMetadata(file);
    const model = new GPT(config, { tokenizer: tokenizer ?? undefined });
    loadCheckpoint(file, { model });
    if (options.device && options.device !== 'cpu') model.to(options.device);
    return model;
  }
}

/** The next token from logits: argmax at temperature 0, else a (top-k) sample. */
export function sample(logits: Float32Array, temperature: number, topK: number, rng: SeededRandom): number {
  const n = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let threshold = -Infinity;
  if (topK > 0 && topK < n) threshold = Array.from(logits).sort((a, b) => b - a)[topK - 1];
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] >= threshold && logits[i] > max) max = logits[i];
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (logits[i] < threshold) continue;
    p[i] = Math.exp((logits[i] - max) / temperature);
    sum += p[i];
  }
  let u = (rng.next() * sum);
  for (let i = 0; i < n; i++) {
    u -= p[i];
    if (u < 0 && p[i] > 0) return i;
  }
  for (let i = n - 1; i >= 0; i--) if (p[i] > 0) return i;
  return 0;
}

/** A GPT with `config` (see GPTConfig); pass {tokenizer} to generate from text. */
export function gpt(config: GPTConfig, options: GPTOptions = {}): GPT {
  return new GPT(config, options);
}
