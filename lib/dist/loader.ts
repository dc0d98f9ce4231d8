// DistributedDataLoader: a DataLoader over this rank's shard of each epoch's order. All ranks
// draw the same (seeded, per-epoch) permutation and rank r takes positions r, r + n, r + 2n, ...
// (DistributedSampler's rule), so the shards are disjoint and together cover the dataset. It is
// a DataLoader, so the Trainer and every loop that takes one take it, and setEpoch() reshuffles.
import { checkInt, checkOptions, fail } from '../errors';
import { Dataset } from '../data/dataset';
import { DataLoader, DataLoaderOptions } from '../data/loader';
import { DistributedSampler } from './sampler';

export interface DistributedDataLoaderOptions extends DataLoaderOptions {
  /** Default: dist.worldSize(). */
  numReplicas?: number;
  /** Default: dist.rank(). */
  rank?: number;
}

export class DistributedDataLoader extends DataLoader {
  readonly sampler: DistributedSampler;

  /** batchSize is per rank: the global batch is batchSize x numReplicas. */
  constructor(dataset: Dataset, options: DistributedDataLoaderOptions = {}) {
    const o = checkOptions(options, 'options') as DistributedDataLoaderOptions;
    const { numReplicas, rank, ...rest } = o;
    super(dataset, rest);
    this.sampler = new DistributedSampler(dataset, { numReplicas, rank, shuffle: this.shuffle, seed: this.seed, dropLast: this.dropLast });
    if (this.sampler.length === 0) fail('INVALID_ARGUMENT', `DistributedDataLoader: ${dataset.length} examples cannot be shared by ${this.sampler.numReplicas} ranks`);
  }

  /** Batches per epoch on this rank. */
  override get length(): number {
    const n = this.sampler.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** This rank's examples per epoch. */
  override get samplesPerEpoch(): number {
    return this.dropLast ? this.length * this.batchSize : this.sampler.length;
  }

  /** This rank's order of examples in epoch e. */
  override order(epoch: number = this.epoch): Int32Array {
    this.sampler.setEpoch(checkInt(epoch, 'epoch', 0));
    return this.sampler.indices();
  }

  override toString(): string {
    return `DistributedDataLoader(rank ${this.sampler.rank} of ${this.sampler.numReplicas}, ${this.sampler.length} of ${this.dataset.length} examples, batchSize ${this.batchSize})`;
  }
}
