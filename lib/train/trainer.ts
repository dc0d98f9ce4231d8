// The Trainer: fit / evaluate / predict around a model, an optimizer and a loss, with metrics,
// validation, progress, callbacks, early stopping and checkpoint/resume.
//
// Determinism: with the same seed, model initialisation and optimizer, fit() performs exactly
// the operations of the plain loop
//   for (const {x, y} of new DataLoader(train, {batchSize, shuffle, seed})) tidy(() => {
//     const loss = lossFn(model.forward(x), y); optimizer.zeroGrad(); loss.backward(); optimizer.step(); });
// so it reaches the same parameters bit for bit. Resuming from a checkpoint restores the model,
// optimizer, scheduler, RNG state and epoch counter, and the data order of epoch e depends only
// on (seed, e), so a resumed run continues exactly as the uninterrupted one would have.
import * as fs from 'fs';
import * as path from 'path';
import { noGrad } from '../autograd';
import { checkBool, checkInt, checkOptions, describe, fail } from '../errors';
import { checkDevice, Device, Tensor, tidy } from '../tensor';
import { concat, reshape } from '../ops/shape';
import { crossEntropy, mseLoss, accuracy } from '../nn/functional';
import { Batch, checkDataset, Dataset, isDataset } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import * as dist from '../dist/index';
import { DistributedDataParallel } from '../dist/ddp';
import { DistributedDataLoader } from '../dist/loader';
import { reduceMean } from '../dist/trainer';
import { clipGradNorm } from '../optim/clip';
import { formatDuration, formatRate, Progress, ProgressStream } from './progress';
import { CostMeter } from '../energy/index';
import { costFields, CostFields, modelFlopsPerSample } from './cost';

// ---- the parts a Trainer works with (nn.Module and optim.* satisfy them) ----

export interface TrainerModel {
  forward(x: Tensor): unknown;
  parameters(): Tensor[];
  train(mode?: boolean): unknown;
  eval(): unknown;
  training: boolean;
  stateDict(): Record<string, Tensor>;
  loadStateDict(dict: Record<string, Tensor>, options?: { strict?: boolean }): unknown;
}

export interface TrainerOptimizer {
  step(): void;
  zeroGrad(setToNone?: boolean): void;
  stateDict(): unknown;
  loadStateDict(state: never): void;
  paramGroups?: { lr: number }[];
}

export interface TrainerScheduler {
  step(): void;
  getLastLr?(): number[];
  stateDict?(): unknown;
  loadStateDict?(state: never): void;
}

export type LossFn = (output: Tensor, target: Tensor) => Tensor;
export type MetricFn = (output: Tensor, target: Tensor) => number;
export type MetricSpec = 'accuracy' | { name: string; fn: MetricFn };

export interface TrainerOptions {
  model: TrainerModel;
  optimizer: TrainerOptimizer;
  /** 'crossEntropy' (default; int32 class targets), 'mse', or (output, target) => scalar loss tensor (a mean over the batch). */
  loss?: 'crossEntropy' | 'mse' | LossFn;
  /** Averaged over the examples of an epoch; 'accuracy' or {name, fn(output, target) => number (a batch mean)}. */
  metrics?: MetricSpec[];
  /** Stepped once per epoch (default) or per batch (schedulerStep: 'batch'). */
  scheduler?: TrainerScheduler;
  schedulerStep?: 'epoch' | 'batch';
  /** Clip the global gradient norm to this value before each step. */
  clipGradNorm?: number;
  /** Where batches are moved before the forward pass; default: the device of the model's first parameter. */
  device?: Device;
  /**
   * Data-parallel training over the ranks of dist.init() (call it first): the model is wrapped in
   * DistributedDataParallel (rank 0's parameters broadcast, gradients averaged in buckets during
   * backward), each rank trains on its shard of every epoch, losses and metrics are averaged over
   * all ranks, and only rank 0 shows progress and writes checkpoints.
   */
  distributed?: boolean;
}

export interface BatchInfo {
  epoch: number;
  /** The batch's index in its epoch (0-based). */
  batch: number;
  /** Optimizer steps taken so far, this one included. */
  step: number;
  size: number;
  loss: number;
}

/** Cost fields (flops, flopsSource, mfu, joules, joulesPerSample, energySource): of the training pass only. */
export interface EpochReport extends Partial<CostFields> {
  /** 1-based: the number of epochs completed. */
  epoch: number;
  loss: number;
  metrics: Record<string, number>;
  valLoss?: number;
  valMetrics?: Record<string, number>;
  /** Training examples per second (the validation pass excluded). */
  samplesPerSec: number;
  /** Wall time of the epoch, validation included. */
  seconds: number;
  /** The first parameter group's learning rate during the epoch. */
  lr?: number;
}

/** Cost fields (flops, flopsSource, mfu, joules, joulesPerSample, energySource): of the whole fit() call, validation included. */
export interface FitReport extends CostFields {
  epochs: EpochReport[];
  /** Seconds of this fit() call. */
  totalSeconds: number;
  /** Training examples processed by this fit() call. */
  samples: number;
  samplesPerSec: number;
  stoppedEarly: boolean;
  /** Why training ended before `epochs`: 'earlyStopping' or 'stop()' (a callback called trainer.stop()). */
  stopReason?: 'earlyStopping' | 'stop()';
  /** With early stopping: the best epoch (1-based) and its monitored value. */
  bestEpoch?: number;
  bestValue?: number;
  /** The epoch fit() started from (0 unless resumed). */
  resumedFromEpoch?: number;
}

export interface Callbacks {
  onBatchEnd?(info: BatchInfo, trainer: Trainer): void | Promise<void>;
  onEpochEnd?(report: EpochReport, trainer: Trainer): void | Promise<void>;
  onTrainEnd?(report: FitReport, trainer: Trainer): void | Promise<void>;
}

export interface EarlyStoppingOptions {
  /** 'loss', 'valLoss', a metric name ('accuracy') or 'val' + its capitalised name ('valAccuracy'). Default 'valLoss' with validation, else 'loss'. */
  monitor?: string;
  /** Stop after this many epochs in a row without improvement (Keras' rule; default 0, which stops at the first). */
  patience?: number;
  /** The least change that counts as an improvement (default 0). */
  minDelta?: number;
  /** 'min', 'max', or 'auto' (default): max for metrics, min for losses. */
  mode?: 'min' | 'max' | 'auto';
}

export interface CheckpointOptions {
  /** Folder for the files (created if missing): epoch-0001.safetensors, ... */
  dir: string;
  /** Save every N epochs (default 1); the last epoch is always saved. */
  every?: number;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
  validation?: Dataset | DataLoader;
  callbacks?: Callbacks;
  quiet?: boolean;
  /** true (default): a bar on a terminal, plain lines otherwise; or force 'bar' / 'lines'; false: none. */
  progress?: boolean | 'bar' | 'lines';
  /** Where progress goes (default process.stderr). */
  progressStream?: ProgressStream;
  checkpoint?: CheckpointOptions;
  /** A checkpoint file, or a checkpoint folder (its latest epoch-*.safetensors). */
  resumeFrom?: string;
  earlyStopping?: EarlyStoppingOptions;
}

export interface EvaluateResult {
  loss: number;
  metrics: Record<string, number>;
  samples: number;
}

const FIT_KEYS = ['epochs', 'batchSize', 'shuffle', 'seed', 'dropLast', 'validation', 'callbacks', 'quiet', 'progress', 'progressStream', 'checkpoint', 'resumeFrom', 'earlyStopping'];
const TRAINER_KEYS = ['model', 'optimizer', 'loss', 'metrics', 'scheduler', 'schedulerStep', 'clipGradNorm', 'device', 'distributed'];

function unknownKeys(o: Record<string, unknown>, known: string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) fail('INVALID_ARGUMENT', `${where}: unknown option '${k}' (expected one of ${known.join(', ')})`);
  }
}

function checkFunctionsOf(value: unknown, name: string, fns: string[]): void {
  if (value === null || typeof value !== 'object') fail('INVALID_ARGUMENT', `Trainer: expected ${name} to be an object with ${fns.join(', ')}, got ${describe(value)}`);
  for (const f of fns) {
    if (typeof (value as Record<string, unknown>)[f] !== 'function') fail('INVALID_ARGUMENT', `Trainer: ${name} has no ${f}() method`);
  }
}

function asTensor(value: unknown, what: string): Tensor {
  if (!(value instanceof Tensor)) fail('INVALID_ARGUMENT', `Trainer: ${what} returned ${describe(value)}, expected a Tensor`);
  return value;
}

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface EarlyState {
  best: number;
  bestEpoch: number;
  wait: number;
}

export class Trainer {
  readonly model: TrainerModel;
  readonly optimizer: TrainerOptimizer;
  readonly scheduler: TrainerScheduler | undefined;
  readonly schedulerStep: 'epoch' | 'batch';
  readonly clipNorm: number | undefined;
  readonly device: Device;
  readonly lossName: string;
  readonly metricNames: string[];
  /** Optimizer steps taken by this trainer (restored on resume). */
  step = 0;
  /** Epochs completed (restored on resume). */
  epoch = 0;
  private readonly lossFn: LossFn;
  private readonly metricFns: MetricFn[];
  private running = false;
  private stopRequested = false;
  private readonly distributed: boolean;

  constructor(options: TrainerOptions) {
    const o = checkOptions(options, 'options');
    unknownKeys(o, TRAINER_KEYS, 'Trainer');
    if (o.model === undefined) fail('INVALID_ARGUMENT', 'Trainer: options.model is required (an nn.Module)');
    if (o.optimizer === undefined) fail('INVALID_ARGUMENT', 'Trainer: options.optimizer is required (e.g. new optim.Adam(model.parameters()))');
    checkFunctionsOf(o.model, 'model', ['forward', 'parameters', 'train', 'eval', 'stateDict', 'loadStateDict']);
    checkFunctionsOf(o.optimizer, 'optimizer', ['step', 'zeroGrad', 'stateDict', 'loadStateDict']);
    this.model = o.model as TrainerModel;
    this.optimizer = o.optimizer as TrainerOptimizer;
    this.distributed = o.distributed === undefined ? false : checkBool(o.distributed, 'distributed');
    if (this.distributed) {
      if (!dist.isInitialized()) fail('INVALID_ARGUMENT', 'Trainer: distributed: true needs the process group: await dist.init() first (run with joule launch)');
      const ddp = new DistributedDataParallel(this.model as never);
      this.model = ddp as unknown as TrainerModel;
      this.optimizer = ddp.syncOptimizer(this.optimizer);
    }
    if (o.scheduler !== undefined) checkFunctionsOf(o.scheduler, 'scheduler', ['step']);
    this.scheduler = o.scheduler as TrainerScheduler | undefined;
    const ss = o.schedulerStep ?? 'epoch';
    if (ss !== 'epoch' && ss !== 'batch') fail('INVALID_ARGUMENT', `Trainer: expected schedulerStep 'epoch' or 'batch', got ${describe(ss)}`);
    this.schedulerStep = ss;
    if (o.clipGradNorm !== undefined && (typeof o.clipGradNorm !== 'number' || !(o.clipGradNorm > 0) || !Number.isFinite(o.clipGradNorm))) {
      fail('INVALID_ARGUMENT', `Trainer: expected clipGradNorm to be a positive number, got ${describe(o.clipGradNorm)}`);
    }
    this.clipNorm = o.clipGradNorm as number | undefined;

    const loss = o.loss ?? 'crossEntropy';
    if (loss === 'crossEntropy') this.lossFn = (out, y) => crossEntropy(out, y);
    else if (loss === 'mse') {
      this.lossFn = (out, y) => {
        // A [N, 1] output against [N] targets would broadcast to [N, N]: match the shapes first.
        const ys = y.shape;
        const os = out.shape;
        const same = ys.length === os.length && ys.every((d, i) => d === os[i]);
        return mseLoss(out, !same && y.size === out.size ? reshape(y, os) : y);
      };
    } else if (typeof loss === 'function') this.lossFn = loss as LossFn;
    else fail('INVALID_ARGUMENT', `Trainer: expected loss 'crossEntropy', 'mse' or a function (output, target) => Tensor, got ${describe(loss)}`);
    this.lossName = typeof loss === 'string' ? loss : (loss as LossFn).name || 'custom';

    const metrics = o.metrics ?? [];
    if (!Array.isArray(metrics)) fail('INVALID_ARGUMENT', `Trainer: expected metrics to be an array, got ${describe(metrics)}`);
    this.metricNames = [];
    this.metricFns = [];
    for (const m of metrics as unknown[]) {
      if (m === 'accuracy') {
        this.metricNames.push('accuracy');
        this.metricFns.push(accuracy);
      } else if (m !== null && typeof m === 'object' && typeof (m as { name: unknown }).name === 'string' && typeof (m as { fn: unknown }).fn === 'function') {
        const { name, fn } = m as { name: string; fn: MetricFn };
        if (name === 'loss' || name.length === 0) fail('INVALID_ARGUMENT', `Trainer: a metric cannot be named ${describe(name)}`);
        this.metricNames.push(name);
        this.metricFns.push(fn);
      } else {
        fail('INVALID_ARGUMENT', `Trainer: expected each metric to be 'accuracy' or {name, fn}, got ${describe(m)}`);
      }
    }
    if (new Set(this.metricNames).size !== this.metricNames.length) fail('INVALID_ARGUMENT', `Trainer: duplicate metric names in [${this.metricNames.join(', ')}]`);

    const params = this.model.parameters();
    if (!Array.isArray(params) || params.length === 0) fail('INVALID_ARGUMENT', 'Trainer: the model has no parameters');
    const device = o.device === undefined ? params[0].device : checkDevice(o.device);
    for (const p of params) {
      if (p.device !== device) {
        fail('DEVICE', `Trainer: the model has parameters on ${p.device} but the trainer runs on ${device}; call model.to('${device}') before creating the optimizer`);
      }
    }
    this.device = device;
  }

  /** Asks a running fit() to stop after the current batch (from a callback, a timer, a signal handler). */
  stop(): void {
    this.stopRequested = true;
  }

  private loader(data: unknown, name: string, o: Record<string, unknown>, forEval: boolean): DataLoader {
    if (data instanceof DataLoader) {
      if (!forEval) {
        for (const k of ['batchSize', 'shuffle', 'seed', 'dropLast']) {
          if (o[k] !== undefined) fail('INVALID_ARGUMENT', `fit: ${k} cannot be given with a DataLoader (set it on the DataLoader)`);
        }
      }
      return data;
    }
    if (!isDataset(data)) fail('INVALID_ARGUMENT', `expected ${name} to be a Dataset or a DataLoader, got ${describe(data)}`);
    checkDataset(data, name);
    if (data.length === 0) fail('INVALID_ARGUMENT', `${name} is empty`);
    if (forEval) return new DataLoader(data, { batchSize: o.batchSize === undefined ? 512 : checkInt(o.batchSize, 'batchSize', 1) });
    // Distributed: batchSize is per rank, and each rank sees its own shard of every epoch.
    return new (this.distributed ? DistributedDataLoader : DataLoader)(data, {
      batchSize: o.batchSize === undefined ? 32 : checkInt(o.batchSize, 'batchSize', 1),
      shuffle: o.shuffle === undefined ? true : checkBool(o.shuffle, 'shuffle'),
      seed: o.seed === undefined ? 0 : checkInt(o.seed, 'seed', 0),
      dropLast: o.dropLast === undefined ? false : checkBool(o.dropLast, 'dropLast'),
    });
  }

  private toDevice(t: Tensor): Tensor {
    return t.device === this.device ? t : t.to(this.device);
  }

  private forward(x: Tensor): Tensor {
    return asTensor(this.model.forward(x), 'model.forward()');
  }

  private computeLoss(out: Tensor, y: Tensor): Tensor {
    const loss = asTensor(this.lossFn(out, y), 'the loss function');
    if (loss.size !== 1) fail('SHAPE_MISMATCH', `Trainer: the loss must be a scalar, got shape [${loss.shape.join(', ')}]`);
    return loss;
  }

  /** One optimizer step on a batch; returns the loss and the batch's metrics. All temporaries freed. */
  private trainStep(batch: Batch): { loss: number; metrics: number[] } {
    return tidy(() => {
      const x = this.toDevice(batch.x);
      const y = this.toDevice(batch.y);
      const out = this.forward(x);
      const loss = this.computeLoss(out, y);
      // Metrics read the output before backward() frees the graph.
      const metrics = this.metricFns.length ? noGrad(() => this.metricFns.map((f) => f(out, y))) : [];
      this.optimizer.zeroGrad();
      loss.backward();
      if (this.clipNorm !== undefined) clipGradNorm(this.model.parameters(), this.clipNorm);
      this.optimizer.step();
      return { loss: loss.item(), metrics };
    });
  }

  /** Loss and metrics over a dataset, batch by batch; yields between batches when `yieldEvery`. */
  private *evalSteps(loader: DataLoader): Generator<void, EvaluateResult> {
    const wasTraining = this.model.training;
    this.model.eval();
    let n = 0;
    let lossSum = 0;
    const sums = this.metricFns.map(() => 0);
    try {
      const it = loader[Symbol.iterator]();
      for (;;) {
        const r = tidy(() => {
          const next = it.next();
          if (next.done) return null;
          const b = next.value;
          return noGrad(() => {
            const x = this.toDevice(b.x);
            const y = this.toDevice(b.y);
            const out = this.forward(x);
            return { size: b.size, loss: this.computeLoss(out, y).item(), metrics: this.metricFns.map((f) => f(out, y)) };
          });
        });
        if (r === null) break;
        n += r.size;
        lossSum += r.loss * r.size;
        r.metrics.forEach((m, i) => (sums[i] += m * r.size));
        yield;
      }
    } finally {
      this.model.train(wasTraining);
    }
    const metrics: Record<string, number> = {};
    this.metricNames.forEach((name, i) => (metrics[name] = n ? sums[i] / n : NaN));
    return { loss: n ? lossSum / n : NaN, metrics, samples: n };
  }

  /** Mean loss and metrics over `data` (no gradients, eval mode; the mode is restored after). */
  evaluate(data: Dataset | DataLoader, options: { batchSize?: number } = {}): EvaluateResult {
    const o = checkOptions(options, 'options');
    unknownKeys(o, ['batchSize'], 'evaluate');
    const steps = this.evalSteps(this.loader(data, 'data', o, true));
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The model's outputs for a tensor of inputs (batched along axis 0) or for the x of every
   * example of a dataset, in order; no gradients, eval mode. The caller owns the result.
   */
  predict(input: Tensor | Dataset | DataLoader, options: { batchSize?: number } = {}): Tensor {
    const o = checkOptions(options, 'options');
    unknownKeys(o, ['batchSize'], 'predict');
    const batchSize = o.batchSize === undefined ? 1024 : checkInt(o.batchSize, 'batchSize', 1);
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      if (input instanceof Tensor) {
        if (input.isDisposed) fail('DISPOSED', 'predict: the input tensor was disposed');
        if (input.ndim === 0) fail('SHAPE_MISMATCH', 'predict: expected inputs batched along axis 0, got a 0-d tensor');
        const n = input.shape[0];
        return tidy(() => noGrad(() => {
          if (n <= batchSize) return this.forward(this.toDevice(input)).detach();
          const parts: Tensor[] = [];
          for (let s = 0; s < n; s += batchSize) parts.push(this.forward(this.toDevice(input.narrow(0, s, Math.min(batchSize, n - s)))));
          return concat(parts, 0);
        }));
      }
      if (input instanceof DataLoader && input.shuffle) fail('INVALID_ARGUMENT', 'predict: the DataLoader shuffles; outputs would not line up with the examples');
      const loader = input instanceof DataLoader ? input : this.loader(input, 'input', { batchSize }, true);
      return tidy(() => noGrad(() => {
        const parts: Tensor[] = [];
        for (const b of loader) parts.push(this.forward(this.toDevice(b.x)));
        if (parts.length === 0) fail('INVALID_ARGUMENT', 'predict: the dataset is empty');
        return parts.length === 1 ? parts[0] : concat(parts, 0);
      }));
    } finally {
      this.model.train(wasTraining);
    }
  }

  private currentLr(): number | undefined {
    const g = this.optimizer.paramGroups;
    if (Array.isArray(g) && g.length > 0 && typeof g[0].lr === 'number') return g[0].lr;
    const last = this.scheduler?.getLastLr?.();
    return Array.isArray(last) && typeof last[0] === 'number' ? last[0] : undefined;
  }

  private monitorSpec(es: EarlyStoppingOptions | undefined, hasValidation: boolean): { monitor: string; sign: 1 | -1; patience: number; minDelta: number } | null {
    if (es === undefined) return null;
    const o = checkOptions(es, 'earlyStopping');
    unknownKeys(o, ['monitor', 'patience', 'minDelta', 'mode'], 'earlyStopping');
    const monitor = o.monitor === undefined ? (hasValidation ? 'valLoss' : 'loss') : o.monitor;
    if (typeof monitor !== 'string') fail('INVALID_ARGUMENT', `earlyStopping: expected monitor to be a string, got ${describe(monitor)}`);
    const isVal = monitor.startsWith('val') && monitor.length > 3;
    const base = isVal ? monitor[3].toLowerCase() + monitor.slice(4) : monitor;
    const known = ['loss', ...this.metricNames];
    if (!known.includes(base)) {
      fail('INVALID_ARGUMENT', `earlyStopping: cannot monitor '${monitor}' (expected one of ${known.flatMap((k) => [k, 'val' + k[0].toUpperCase() + k.slice(1)]).join(', ')})`);
    }
    if (isVal && !hasValidation) fail('INVALID_ARGUMENT', `earlyStopping: monitoring '${monitor}' needs fit({validation})`);
    const patience = o.patience === undefined ? 0 : checkInt(o.patience, 'earlyStopping.patience', 0);
    const minDelta = o.minDelta === undefined ? 0 : (o.minDelta as number);
    if (typeof minDelta !== 'number' || !(minDelta >= 0) || !Number.isFinite(minDelta)) fail('INVALID_ARGUMENT', `earlyStopping: expected minDelta >= 0, got ${describe(o.minDelta)}`);
    const mode = o.mode ?? 'auto';
    if (!['min', 'max', 'auto'].includes(mode as string)) fail('INVALID_ARGUMENT', `earlyStopping: expected mode 'min', 'max' or 'auto', got ${describe(mode)}`);
    const max = mode === 'max' || (mode === 'auto' && base !== 'loss');
    return { monitor, sign: max ? -1 : 1, patience, minDelta };
  }

  private static monitored(report: EpochReport, monitor: string): number {
    if (monitor === 'loss') return report.loss;
    if (monitor === 'valLoss') return report.valLoss ?? NaN;
    if (monitor.startsWith('val') && monitor.length > 3) {
      const k = monitor[3].toLowerCase() + monitor.slice(4);
      return report.valMetrics?.[k] ?? NaN;
    }
    return report.metrics[monitor] ?? NaN;
  }

  /**
   * Trains for `epochs` epochs (counted from the start, so a resumed run trains the remaining
   * ones). Yields to the event loop after every step, so timers and I/O keep running.
   */
  async fit(train: Dataset | DataLoader, options: FitOptions = {}): Promise<FitReport> {
    const o = checkOptions(options, 'options');
    unknownKeys(o, FIT_KEYS, 'fit');
    if (this.running) fail('INVALID_ARGUMENT', 'fit: this trainer is already running fit()');
    const epochs = o.epochs === undefined ? 1 : checkInt(o.epochs, 'epochs', 1);
    const quiet = o.quiet === undefined ? false : checkBool(o.quiet, 'quiet');
    if (o.progress !== undefined && typeof o.progress !== 'boolean' && o.progress !== 'bar' && o.progress !== 'lines') {
      fail('INVALID_ARGUMENT', `fit: expected progress to be a boolean, 'bar' or 'lines', got ${describe(o.progress)}`);
    }
    if (o.progressStream !== undefined && (o.progressStream === null || typeof (o.progressStream as ProgressStream).write !== 'function')) {
      fail('INVALID_ARGUMENT', `fit: expected progressStream to have write(), got ${describe(o.progressStream)}`);
    }
    const callbacks = checkOptions(o.callbacks, 'callbacks') as Callbacks;
    unknownKeys(callbacks as Record<string, unknown>, ['onBatchEnd', 'onEpochEnd', 'onTrainEnd'], 'callbacks');
    for (const [k, v] of Object.entries(callbacks)) if (typeof v !== 'function') fail('INVALID_ARGUMENT', `callbacks.${k} must be a function, got ${describe(v)}`);
    let ckpt: { dir: string; every: number } | null = null;
    if (o.checkpoint !== undefined) {
      const c = checkOptions(o.checkpoint, 'checkpoint');
      unknownKeys(c, ['dir', 'every'], 'checkpoint');
      if (typeof c.dir !== 'string' || c.dir.length === 0) fail('INVALID_ARGUMENT', `checkpoint: expected dir to be a folder path, got ${describe(c.dir)}`);
      ckpt = { dir: c.dir, every: c.every === undefined ? 1 : checkInt(c.every, 'checkpoint.every', 1) };
    }
    if (o.resumeFrom !== undefined && (typeof o.resumeFrom !== 'string' || o.resumeFrom.length === 0)) fail('INVALID_ARGUMENT', `fit: expected resumeFrom to be a checkpoint file or folder, got ${describe(o.resumeFrom)}`);

    let validation: DataLoader | null = null;
    if (o.validation !== undefined) validation = this.loader(o.validation, 'validation', { batchSize: o.batchSize === undefined ? undefined : Math.max(o.batchSize as number, 512) }, true);
    const early = this.monitorSpec(o.earlyStopping as EarlyStoppingOptions | undefined, validation !== null);

    // Resume before building the loader: the checkpoint carries the data seed.
    let history: EpochReport[] = [];
    let earlyState: EarlyState = { best: Infinity, bestEpoch: 0, wait: 0 };
    let startEpoch = 0;
    let resumed = false;
    let seedFromCheckpoint: number | undefined;
    if (o.resumeFrom !== undefined) {
      const file = resolveCheckpoint(o.resumeFrom as string);
      const loaded = loadCheckpoint(file, {
        model: this.model,
        optimizer: this.optimizer,
        scheduler: this.scheduler && typeof this.scheduler.stateDict === 'function' && typeof this.scheduler.loadStateDict === 'function' ? (this.scheduler as Required<TrainerScheduler>) : undefined,
      });
      const extra = (loaded.extra ?? {}) as { history?: EpochReport[]; earlyStopping?: EarlyState; seed?: number };
      history = Array.isArray(extra.history) ? extra.history : [];
      if (extra.earlyStopping) earlyState = extra.earlyStopping;
      if (typeof extra.seed === 'number') seedFromCheckpoint = extra.seed;
      startEpoch = loaded.epoch;
      this.step = loaded.step;
      resumed = true;
    }
    const loaderOptions = { ...o };
    if (!(train instanceof DataLoader) && loaderOptions.seed === undefined && seedFromCheckpoint !== undefined) loaderOptions.seed = seedFromCheckpoint;
    const loader = this.loader(train, 'train', loaderOptions, false);

    const isMain = !this.distributed || dist.rank() === 0;
    const progress = Progress.auto(quiet || !isMain, o.progress as FitOptions['progress'], (o.progressStream as ProgressStream | undefined) ?? process.stderr);
    const report: FitReport = {
      epochs: history.slice(), totalSeconds: 0, samples: 0, samplesPerSec: 0, stoppedEarly: false,
      flops: 0, flopsSource: 'none', mfu: null, joules: null, joulesPerSample: null, energySource: '',
    };
    if (resumed) {
      report.resumedFromEpoch = startEpoch;
      progress.message(`resumed from epoch ${startEpoch} (step ${this.step})`);
    }
    this.running = true;
    this.stopRequested = false;
    const t0 = performance.now();
    let trainSeconds = 0;
    const fitMeter = new CostMeter(this.device).start();
    let valSamples = 0;
    try {
      for (let epoch = startEpoch; epoch < epochs; epoch++) {
        const e0 = performance.now();
        const epochMeter = new CostMeter(this.device).start();
        this.model.train(true);
        loader.setEpoch(epoch);
        progress.startEpoch(epoch + 1, epochs, loader.samplesPerEpoch);
        const lr = this.currentLr();
        let n = 0;
        let lossSum = 0;
        const sums = this.metricFns.map(() => 0);
        let batchIndex = 0;
        const it = loader[Symbol.iterator]();
        for (;;) {
          // The batch is made inside the step's tidy(), so it is freed with the step's temporaries.
          const r = tidy(() => {
            const next = it.next();
            if (next.done) return null;
            return { size: next.value.size, ...this.trainStep(next.value) };
          });
          if (r === null) break;
          this.step++;
          n += r.size;
          lossSum += r.loss * r.size;
          r.metrics.forEach((m, i) => (sums[i] += m * r.size));
          if (this.scheduler && this.schedulerStep === 'batch') this.scheduler.step();
          progress.update(n, lossSum / n);
          if (callbacks.onBatchEnd) await callbacks.onBatchEnd({ epoch: epoch + 1, batch: batchIndex, step: this.step, size: r.size, loss: r.loss }, this);
          batchIndex++;
          await nextTick();
          if (this.stopRequested) break;
        }
        const trainTime = (performance.now() - e0) / 1000;
        trainSeconds += trainTime;
        report.samples += n;
        const metrics: Record<string, number> = {};
        let means = [n ? lossSum / n : NaN, ...sums.map((v) => (n ? v / n : NaN))];
        if (this.distributed) means = reduceMean(means, n);
        this.metricNames.forEach((name, i) => (metrics[name] = means[i + 1]));
        const er: EpochReport = { epoch: epoch + 1, loss: means[0], metrics, samplesPerSec: n / Math.max(trainTime, 1e-9), seconds: 0 };
        Object.assign(er, costFields(epochMeter.stop(), n, n * modelFlopsPerSample(this.model, true)));
        if (lr !== undefined) er.lr = lr;
        if (validation) {
          const steps = this.evalSteps(validation);
          let v: IteratorResult<void, EvaluateResult>;
          while (!(v = steps.next()).done) await nextTick();
          er.valLoss = v.value.loss;
          er.valMetrics = v.value.metrics;
          valSamples += v.value.samples;
        }
        if (this.scheduler && this.schedulerStep === 'epoch') this.scheduler.step();
        er.seconds = (performance.now() - e0) / 1000;
        report.epochs.push(er);
        this.epoch = epoch + 1;

        let stopEarly = false;
        if (early) {
          const value = Trainer.monitored(er, early.monitor) * early.sign;
          if (Number.isFinite(value) && value < earlyState.best - early.minDelta) {
            earlyState = { best: value, bestEpoch: epoch + 1, wait: 0 };
          } else {
            earlyState = { ...earlyState, wait: earlyState.wait + 1 };
            if (earlyState.wait >= early.patience) stopEarly = true;
          }
        }
        progress.endEpoch(summarize(er));
        if (ckpt && isMain && ((epoch + 1) % ckpt.every === 0 || epoch + 1 === epochs || stopEarly || this.stopRequested)) {
          fs.mkdirSync(ckpt.dir, { recursive: true });
          saveCheckpoint(path.join(ckpt.dir, `epoch-${String(epoch + 1).padStart(4, '0')}.safetensors`), {
            model: this.model,
            optimizer: this.optimizer,
            scheduler: this.scheduler && typeof this.scheduler.stateDict === 'function' && typeof this.scheduler.loadStateDict === 'function' ? (this.scheduler as Required<TrainerScheduler>) : undefined,
            epoch: epoch + 1,
            step: this.step,
            extra: { history: report.epochs, earlyStopping: earlyState, seed: loader.seed },
          });
        }
        if (callbacks.onEpochEnd) await callbacks.onEpochEnd(er, this);
        if (stopEarly) {
          report.stoppedEarly = true;
          report.stopReason = 'earlyStopping';
          progress.message(`early stopping: '${early!.monitor}' did not improve for ${earlyState.wait} epoch(s); best at epoch ${earlyState.bestEpoch}`);
          break;
        }
        if (this.stopRequested) {
          report.stoppedEarly = true;
          report.stopReason = 'stop()';
          break;
        }
      }
    } finally {
      this.running = false;
      this.model.train(true);
    }
    if (early && earlyState.bestEpoch > 0) {
      report.bestEpoch = earlyState.bestEpoch;
      report.bestValue = earlyState.best * early.sign;
    }
    report.totalSeconds = (performance.now() - t0) / 1000;
    const modelFlops = report.samples * modelFlopsPerSample(this.model, true) + valSamples * modelFlopsPerSample(this.model, false);
    Object.assign(report, costFields(fitMeter.stop(), report.samples, modelFlops));
    report.samplesPerSec = report.samples / Math.max(trainSeconds, 1e-9);
    const mfuText = report.mfu === null ? '' : `, MFU ${(report.mfu * 100).toFixed(1)}%`;
    const energyText = report.joules === null ? '' : `, ${report.joules.toFixed(1)} J`;
    if (report.samples > 0) progress.message(`trained ${report.samples} samples in ${formatDuration(report.totalSeconds)} (${formatRate(report.samplesPerSec)} samples/s${mfuText}${energyText})`);
    if (callbacks.onTrainEnd) await callbacks.onTrainEnd(report, this);
    return report;
  }
}

function summarize(r: EpochReport): string {
  const parts = [`loss ${r.loss.toFixed(4)}`];
  for (const [k, v] of Object.entries(r.metrics)) parts.push(`${k} ${v.toFixed(4)}`);
  if (r.valLoss !== undefined) parts.push(`valLoss ${r.valLoss.toFixed(4)}`);
  for (const [k, v] of Object.entries(r.valMetrics ?? {})) parts.push(`val ${k} ${v.toFixed(4)}`);
  parts.push(`${formatRate(r.samplesPerSec)} samples/s`, `${r.seconds.toFixed(1)} s`);
  return parts.join('  ');
}

/** A checkpoint file, or the latest epoch-NNNN.safetensors in a folder. */
export function resolveCheckpoint(where: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(where);
  } catch {
    return fail('INVALID_ARGUMENT', `resumeFrom: ${where} does not exist`);
  }
  if (!stat.isDirectory()) return where;
  const files = fs.readdirSync(where).filter((f) => /^epoch-\d+\.safetensors$/.test(f)).sort();
  if (files.length === 0) fail('INVALID_ARGUMENT', `resumeFrom: no epoch-NNNN.safetensors checkpoint in ${where}`);
  return path.join(where, files[files.length - 1]);
}
