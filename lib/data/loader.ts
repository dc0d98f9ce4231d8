// DataLoader: batches of a dataset, in order or in a seeded order that changes every epoch.
import { checkBool, checkInt, checkOptions, fail } from '../errors';
import { Batch, checkDataset, collate, Dataset } from './dataset';
import { permutation } from './random';

export interface DataLoaderOptions {
  /** Examples per batch (default 32). */
  batchSize?: number;
  /** Visit the examples in a random order, a new one every epoch (default false). */
  shuffle?: boolean;
  /** Seed of the order; the order of epoch e depends only on (seed, e). Default 0. */
  seed?: number;
  /** Drop the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
}

const KNOWN = ['batchSize', 'shuffle', 'seed', 'dropLast'];

/**
 * Iterates over a dataset in batches. Each batch is built with one native indexSelect per tensor
 * (for TensorDataset and its subsets); its tensors belong to the caller (dispose them, or
 * iterate inside tidy()). Every `for...of` runs one epoch: the first uses epoch 0 (or the epoch
 * set with setEpoch), and each new iteration advances to the next epoch's permutation.
 */
export class DataLoader implements Iterable<Batch> {
  readonly dataset: Dataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private nextEpoch = 0;

  constructor(dataset: Dataset, options: DataLoaderOptions = {}) {
    this.dataset = checkDataset(dataset, 'dataset');
    const o = checkOptions(options, 'options');
    for (const k of Object.keys(o)) {
      if (!KNOWN.includes(k)) fail('INVALID_ARGUMENT', `DataLoader: unknown option '${k}' (expected one of ${KNOWN.join(', ')})`);
    }
    this.batchSize = o.batchSize === undefined ? 32 : checkInt(o.batchSize, 'batchSize', 1);
    this.shuffle = o.shuffle === undefined ? false : checkBool(o.shuffle, 'shuffle');
    this.seed = o.seed === undefined ? 0 : checkInt(o.seed, 'seed', 0);
    this.dropLast = o.dropLast === undefined ? false : checkBool(o.dropLast, 'dropLast');
  }

  /** Number of batches per epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Examples per epoch (after dropLast). */
  get samplesPerEpoch(): number {
    return this.dropLast ? this.length * this.batchSize : this.dataset.length;
  }

  /** The epoch the next iteration will use (its shuffling order). */
  get epoch(): number {
    return this.nextEpoch;
  }

  /** Makes the next iteration use epoch e's order (for resuming, and for the Trainer). */
  setEpoch(epoch: number): void {
    this.nextEpoch = checkInt(epoch, 'epoch', 0);
  }

  /** The order of the examples in epoch e. */
  order(epoch: number = this.nextEpoch): Int32Array {
    checkInt(epoch, 'epoch', 0);
    const n = this.dataset.length;
    if (this.shuffle) return permutation(n, this.seed, epoch);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return out;
  }

  [Symbol.iterator](): Iterator<Batch> {
    const order = this.order(this.nextEpoch);
    this.nextEpoch++;
    const batches = this.length;
    const size = this.batchSize;
    const dataset = this.dataset;
    let b = 0;
    return {
      next: (): IteratorResult<Batch> => {
        if (b >= batches) return { done: true, value: undefined };
        const idx = order.subarray(b * size, Math.min((b + 1) * size, order.length));
        b++;
        return { done: false, value: collate(dataset, idx) };
      },
      return: (): IteratorResult<Batch> => {
        b = batches;
        return { done: true, value: undefined };
      },
    };
  }

  toString(): string {
    return `DataLoader(${this.dataset.length} examples, batchSize ${this.batchSize}${this.shuffle ? `, shuffle seed ${this.seed}` : ''}${this.dropLast ? ', dropLast' : ''})`;
  }
}

export function isDataLoader(value: unknown): value is DataLoader {
  return value instanceof DataLoader;
}
