// Language-model datasets over token ids: random windows of context + 1 tokens (x = the first
// context, y = the same shifted by one), and bits-per-character evaluation on held-out text.
import { checkInt, checkOptions, fail } from '../errors';
import { native } from '../native';
import { noGrad } from '../autograd';
import { Tensor, tidy, wrap } from '../tensor';
import { Batch, BatchedDataset } from '../data/dataset';
import { SeededRandom } from '../data/random';
import * as ops from '../ops/index';
import * as F from '../nn/functional';

export interface TextWindowOptions {
  /** Number of examples (windows) the dataset reports (default: tokens / context). */
  length?: number;
  /** Window starts are a function of (seed, index) only (default 0). */
  seed?: number;
}

/** Example i: a window starting at a random position fixed by (seed, i); x, y int32 [context]. */
export class TextWindowDataset implements BatchedDataset {
  readonly ids: Int32Array;
  readonly context: number;
  readonly length: number;
  readonly seed: number;

  constructor(ids: Int32Array, context: number, options: TextWindowOptions = {}) {
    checkOptions(options, 'options');
    if (!(ids instanceof Int32Array)) fail('INVALID_ARGUMENT', 'TextWindowDataset: expected the token ids as an Int32Array');
    this.context = checkInt(context, 'context', 1);
    if (ids.length < context + 1) fail('INVALID_ARGUMENT', `TextWindowDataset: ${ids.length} tokens are too few for windows of ${context} + 1`);
    this.ids = ids;
    this.length = options.length === undefined ? Math.floor(ids.length / context) : checkInt(options.length, 'length', 0);
    this.seed = options.seed === undefined ? 0 : checkInt(options.seed, 'seed', 0);
  }

  /** Where window i starts. */
  start(i: number): number {
    return new SeededRandom(this.seed, i).below(this.ids.length - this.context);
  }

  get(i: number): { x: Tensor; y: Tensor } {
    const b = this.getBatch(Int32Array.of(i));
    return { x: ops.squeeze(b.x, 0), y: ops.squeeze(b.y, 0) };
  }

  getBatch(indices: Int32Array): Batch {
    const T = this.context;
    const xs = new Int32Array(indices.length * T);
    const ys = new Int32Array(indices.length * T);
    indices.forEach((i, r) => {
      if (i < 0 || i >= this.length) fail('INVALID_ARGUMENT', `index ${i} is out of range for a dataset of length ${this.length}`);
      const s = this.start(i);
      xs.set(this.ids.subarray(s, s + T), r * T);
      ys.set(this.ids.subarray(s + 1, s + T + 1), r * T);
    });
    const x = wrap(native.fromBuffer(xs, [indices.length, T], 'int32', 'cpu'));
    const y = wrap(native.fromBuffer(ys, [indices.length, T], 'int32', 'cpu'));
    return { x, y, tensors: [x, y], size: indices.length };
  }
}

export interface BpcOptions {
  /** Windows per forward pass (default 16). */
  batchSize?: number;
  /** Evaluate at most this many predicted tokens (default: all). */
  maxTokens?: number;
}

/**
 * Bits per character of `model` (forward: ids [B, T] -> logits [B, T, V]) on `ids`: the text cut
 * into consecutive windows of `context` + 1 tokens, every position of a window predicted (the
 * first ones with less history), mean cross entropy / ln 2. No gradients; eval mode.
 */
export function evaluateBitsPerChar(model: { forward(x: Tensor): unknown; training: boolean; train(mode?: boolean): unknown },
  ids: Int32Array, context: number, options: BpcOptions = {}): number {
  const batch = options.batchSize ?? 16;
  const limit = Math.min(options.maxTokens ?? Infinity, ids.length - 1);
  const windows = Math.max(1, Math.floor(limit / context));
  const was = model.training;
  model.train(false);
  let nats = 0;
  let count = 0;
  try {
    for (let w0 = 0; w0 < windows; w0 += batch) {
      const nb = Math.min(batch, windows - w0);
      const T = Math.min(context, ids.length - 1);
      const xs = new Int32Array(nb * T);
      const ys = new Int32Array(nb * T);
      for (let r = 0; r < nb; r++) {
        const s = (w0 + r) * T;
        xs.set(ids.subarray(s, s + T), r * T);
        ys.set(ids.subarray(s + 1, s + T + 1), r * T);
      }
      nats += tidy(() => noGrad(() => {
        const x = wrap(native.fromBuffer(xs, [nb, T], 'int32', 'cpu'));
        const y = wrap(native.fromBuffer(ys, [nb * T], 'int32', 'cpu'));
        const logits = model.forward(x) as Tensor;
        const V = logits.shape[logits.ndim - 1];
        return F.crossEntropy(ops.reshape(logits, [-1, V]), y, { reduction: 'sum' }).item();
      }));
      count += nb * T;
    }
  } finally {
    model.train(was);
  }
  return nats / count / Math.LN2;
}
