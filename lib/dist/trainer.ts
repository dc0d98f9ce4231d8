// What the Trainer needs for data-parallel training, in one call:
//
//   const p = dist.prepareTrainer({ model, optimizer, dataset, batchSize: 64, shuffle: true });
//   const trainer = new Trainer({ model: p.model, optimizer: p.optimizer, ... });
//   await trainer.fit(p.train, { epochs, quiet: !p.isMain, checkpoint: p.isMain ? {...} : undefined });
//
// p.model is the DistributedDataParallel wrapper (rank 0's parameters broadcast), p.optimizer
// averages the gradients before each step (finishGradients()), p.train is this rank's shard of
// every epoch. reduceMean() averages per-rank metrics weighted by their example counts, for
// reporting figures of the whole job.
import { Dataset } from '../data/dataset';
import { native } from '../native';
import { wrap } from '../tensor';
import { DdpModel, DistributedDataParallel } from './ddp';
import { DistributedDataLoader } from './loader';
import * as dist from './index';

export interface PrepareTrainerOptions<O extends { step(): void }> {
  model: DdpModel;
  optimizer: O;
  dataset: Dataset;
  /** Per rank (the global batch is batchSize x worldSize); default 32. */
  batchSize?: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  bucketMB?: number;
}

export interface PreparedTrainer<O> {
  model: DistributedDataParallel;
  optimizer: O;
  train: DistributedDataLoader;
  /** Whether this is rank 0 (the one that prints and writes checkpoints). */
  isMain: boolean;
}

export function prepareTrainer<O extends { step(): void }>(o: PrepareTrainerOptions<O>): PreparedTrainer<O> {
  const model = new DistributedDataParallel(o.model, { bucketMB: o.bucketMB });
  return {
    model,
    optimizer: model.syncOptimizer(o.optimizer),
    train: new DistributedDataLoader(o.dataset, { batchSize: o.batchSize, shuffle: o.shuffle ?? true, seed: o.seed, dropLast: o.dropLast }),
    isMain: dist.rank() === 0,
  };
}

/** The job-wide means of per-rank means `values`, each rank weighted by its `count` of examples. */
export function reduceMean(values: number[], count: number): number[] {
  if (!dist.isInitialized() || dist.worldSize() === 1) return values.slice();
  const buf = new Float32Array(values.length + 1);
  values.forEach((v, i) => (buf[i] = v * count));
  buf[values.length] = count;
  const t = wrap(native.fromBuffer(buf, [buf.length], 'float32', 'cpu'));
  try {
    dist.allReduce(t, 'sum');
    const s = t.data();
    const total = s[values.length];
    return values.map((_, i) => (total > 0 ? s[i] / total : NaN));
  } finally {
    t.dispose();
  }
}
