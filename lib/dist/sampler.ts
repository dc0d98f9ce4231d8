// DistributedSampler: each rank's share of a dataset's indices for one epoch. The ranks take
// every worldSize-th index of one (seeded, per-epoch) permutation, so their shards are disjoint
// and together cover the dataset; without dropLast the permutation is padded with its first
// indices up to a multiple of worldSize (so every rank gets the same count), with dropLast the
// tail that does not divide evenly is left out.
import { checkBool, checkInt, describe, fail } from '../errors';
import { Dataset, Subset } from '../data/dataset';
import { permutation } from '../data/random';
import * as dist from './index';

export interface DistributedSamplerOptions {
  /** Default: dist.worldSize(). */
  numReplicas?: number;
  /** Default: dist.rank(). */
  rank?: number;
  /** A new permutation each epoch (default true). */
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

export class DistributedSampler implements Iterable<number> {
  readonly size: number;
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private epoch = 0;

  constructor(dataset: Dataset | number, options: DistributedSamplerOptions = {}) {
    const n = typeof dataset === 'number' ? dataset : (dataset as Dataset)?.length;
    if (typeof n !== 'number') fail('INVALID_ARGUMENT', `DistributedSampler: expected a dataset or a length, got ${describe(dataset)}`);
    this.size = checkInt(n, 'dataset length', 0);
    this.numReplicas = checkInt(options.numReplicas ?? dist.worldSize(), 'numReplicas', 1);
    this.rank = checkInt(options.rank ?? dist.rank(), 'rank', 0);
    if (this.rank >= this.numReplicas) fail('INVALID_ARGUMENT', `DistributedSampler: rank ${this.rank} must be less than numReplicas ${this.numReplicas}`);
    this.shuffle = checkBool(options.shuffle ?? true, 'shuffle');
    this.seed = checkInt(options.seed ?? 0, 'seed');
    this.dropLast = checkBool(options.dropLast ?? false, 'dropLast');
  }

  /** Chooses the epoch's permutation (call at the start of every epoch, with the same value on every rank). */
  setEpoch(epoch: number): void {
    this.epoch = checkInt(epoch, 'epoch', 0);
  }

  /** The number of indices of each rank's shard. */
  get length(): number {
    return this.dropLast ? Math.floor(this.size / this.numReplicas) : Math.ceil(this.size / this.numReplicas);
  }

  /** This rank's indices for the current epoch. */
  indices(): Int32Array {
    const order = this.shuffle ? permutation(this.size, this.seed, this.epoch) : Int32Array.from({ length: this.size }, (_, i) => i);
    const count = this.length;
    const out = new Int32Array(count);
    for (let k = 0; k < count; k++) {
      const pos = this.rank + k * this.numReplicas;
      out[k] = order[pos % Math.max(1, this.size)];
    }
    return out;
  }

  /** This rank's shard of dataset for the current epoch (a view). */
  shard(dataset: Dataset): Subset {
    return new Subset(dataset, this.indices());
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
