// The Distiller: trains a student on a teacher's soft targets (kdLoss), optionally with a FitNets
// hint (MSE between intermediate features), through the Trainer — so it has the Trainer's
// progress, validation, callbacks, checkpoints, early stopping and cost report.
//
// How the teacher's outputs reach the loss: the training set is wrapped in a dataset whose
// getBatch() also produces the batch's teacher logits (computed then, in eval mode under
// noGrad, or gathered from a per-sample cache made once before training). The Trainer builds a
// batch and runs its step at once, so the loss reads the logits of the batch it is given;
// validation batches come from the caller's dataset and carry none, and are scored with plain
// cross entropy.
import { noGrad } from '../autograd';
import { checkBool, checkOptions, describe, fail } from '../errors';
import { CostMeter } from '../energy/index';
import { Batch, checkDataset, collate, Dataset, isDataset } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { crossEntropy } from '../nn/functional';
import { Linear, Sequential } from '../nn/layers';
import { Module } from '../nn/module';
import { concat } from '../ops/shape';
import { indexSelect } from '../ops/indexing';
import * as ops from '../ops/index';
import { Tensor, tensor, tidy } from '../tensor';
import { costFields, CostFields, denseMacs, modelFlopsPerSample } from '../train/cost';
import { FitOptions, FitReport, EpochReport, MetricSpec, Trainer, TrainerOptimizer, TrainerScheduler } from '../train/trainer';
import { hintLoss, kdLossParts, kdOptions } from './loss';

/** What a teacher must offer: forward(x) → logits. An nn.Module (float or int8-quantized) fits. */
export interface TeacherModel {
  forward(x: Tensor): unknown;
  eval?(): unknown;
  train?(mode?: boolean): unknown;
  training?: boolean;
}

export interface HintOptions {
  /** The teacher's child module (index or name in a Sequential) whose output is the hint. */
  teacherLayer: number | string;
  /** The student's child module (index or name) whose output is trained to match it. */
  studentLayer: number | string;
  /** Weight of the MSE hint loss added to the KD loss (default 1). */
  weight?: number;
  /**
   * Maps the student's features to the teacher's width: a Module (include its parameters in the
   * optimizer), or 'auto' (default when the widths differ) for a Linear made here, which needs
   * `optimizer` to be a factory (params) => optimizer so that it is trained too.
   */
  projection?: Module | 'auto';
}

export interface DistillerOptions {
  teacher: TeacherModel;
  /** The student; with a hint, a Sequential (its children are run in order). */
  student: Module;
  temperature?: number;
  alpha?: number;
  /** An optimizer over the student's parameters, or a factory (params) => optimizer (given the projection's too). */
  optimizer: TrainerOptimizer | ((params: Tensor[]) => TrainerOptimizer);
  hint?: HintOptions;
  /** Metrics of the student (default ['accuracy']). */
  metrics?: MetricSpec[];
  scheduler?: TrainerScheduler;
  schedulerStep?: 'epoch' | 'batch';
  clipGradNorm?: number;
}

export interface DistillFitOptions extends FitOptions {
  /**
   * Compute the teacher's logits (and hint features) once per training sample before training
   * and reuse them every epoch (default true). Exact for a deterministic teacher and data
   * without random augmentation; costs N × classes floats of memory.
   */
  cacheTeacherLogits?: boolean;
}

export interface DistillEpochReport extends EpochReport {
  /** Mean T²·KL(teacher ‖ student) term over the epoch's batches (weighted by alpha in the loss). */
  softLoss: number;
  /** Mean cross entropy against the labels. */
  hardLoss: number;
  /** Mean hint MSE (with a hint). */
  hintLoss?: number;
}

export interface DistillReport extends FitReport {
  epochs: DistillEpochReport[];
  /** Seconds spent in the teacher's forward passes (caching included). */
  teacherSeconds: number;
  /** Whether the teacher's outputs were cached once per sample. */
  cachedTeacher: boolean;
}

const DISTILLER_KEYS = ['teacher', 'student', 'temperature', 'alpha', 'optimizer', 'hint', 'metrics', 'scheduler', 'schedulerStep', 'clipGradNorm'];

function childIndex(model: Module, layer: number | string, who: string): number {
  const named = [...model.namedChildren()];
  if (named.length === 0) fail('INVALID_ARGUMENT', `Distiller: hint.${who}Layer needs the ${who} to be a Sequential (it has no child modules)`);
  let k = -1;
  if (typeof layer === 'number' && Number.isInteger(layer)) k = layer < 0 ? named.length + layer : layer;
  else if (typeof layer === 'string') k = named.findIndex(([n]) => n === layer);
  if (k < 0 || k >= named.length) {
    fail('INVALID_ARGUMENT', `Distiller: hint.${who}Layer ${describe(layer)} is not one of the ${who}'s ${named.length} children (${named.map(([n]) => n).join(', ')})`);
  }
  return k;
}

/** The children of a Sequential-like model up to and including child k, and the rest. */
function splitAt(model: Module, k: number): [Sequential, Sequential] {
  const kids = model.children();
  return [new Sequential(...kids.slice(0, k + 1)), new Sequential(...kids.slice(k + 1))];
}

/** Width of a feature tensor produced by `head` for an input like `sample` (one row). */
function featureWidth(head: (x: Tensor) => unknown, sample: Tensor): number {
  return tidy(() => noGrad(() => {
    const f = head(sample) as Tensor;
    return f.size / f.shape[0];
  }));
}

/** What the trainer trains: the student (and the hint's projection), with the hint features exposed. */
class DistillModule extends Module {
  student: Module;
  projection: Module | null;
  /** @internal The student's hint features of the last forward (a graph node, freed with the step). */
  features: Tensor | null = null;
  private readonly head: Sequential | null;
  private readonly tail: Sequential | null;
  private readonly teacherFlops: () => number;

  constructor(student: Module, projection: Module | null, studentLayer: number | null, teacherFlops: () => number) {
    super();
    this.student = student;
    this.projection = projection;
    if (studentLayer !== null) [this.head, this.tail] = splitAt(student, studentLayer);
    else this.head = this.tail = null;
    this.teacherFlops = teacherFlops;
  }

  override forward(x: Tensor): Tensor {
    if (!this.head || !this.tail) return this.student.forward(x) as Tensor;
    const f = this.head.forward(x) as Tensor;
    this.features = this.training ? f : null;
    return this.tail.forward(f) as Tensor;
  }

  /** Training: the student's step plus the teacher's forward share per sample; inference: the student's. */
  flopsPerSample(training: boolean): number {
    const own = (training ? 6 : 2) * denseMacs(this);
    return training ? own + this.teacherFlops() : own;
  }
}

/** The training set plus, per batch, the teacher's logits (and hint features). */
class TeacherBatches implements Dataset {
  pending: { logits: Tensor; features: Tensor | null } | null = null;
  teacherSeconds = 0;
  constructor(
    readonly base: Dataset,
    private readonly teacherOut: (x: Tensor) => { logits: Tensor; features: Tensor | null },
    private readonly cache: { logits: Tensor; features: Tensor | null } | null,
  ) {}
  get length(): number {
    return this.base.length;
  }
  get(index: number) {
    return this.base.get(index);
  }
  getBatch(indices: Int32Array): Batch {
    const b = collate(this.base, indices);
    if (this.cache) {
      const idx = tensor(indices, { dtype: 'int32' });
      this.pending = { logits: indexSelect(this.cache.logits, 0, idx), features: this.cache.features ? indexSelect(this.cache.features, 0, idx) : null };
      idx.dispose();
    } else {
      const t0 = performance.now();
      this.pending = this.teacherOut(b.x);
      this.teacherSeconds += (performance.now() - t0) / 1000;
    }
    return b;
  }
}

export class Distiller {
  readonly teacher: TeacherModel;
  readonly student: Module;
  readonly temperature: number;
  readonly alpha: number;
  readonly optimizer: TrainerOptimizer;
  readonly hint: { teacherLayer: number; studentLayer: number; weight: number; projection: Module | null } | null;
  /** The Trainer that runs the student's steps (its step/epoch counters, evaluate(), predict()). */
  readonly trainer: Trainer;
  private readonly model: DistillModule;
  private readonly teacherHead: Sequential | null;
  private readonly teacherTail: Sequential | null;
  private batches: TeacherBatches | null = null;
  private sums = { soft: 0, hard: 0, hint: 0, n: 0 };
  /** Teacher FLOPs per training sample in the current fit (0 when cached: they are counted once, up front). */
  private teacherFlopsPerSample = 0;

  constructor(options: DistillerOptions) {
    const o = checkOptions(options, 'options');
    for (const k of Object.keys(o)) if (!DISTILLER_KEYS.includes(k)) fail('INVALID_ARGUMENT', `Distiller: unknown option '${k}' (expected one of ${DISTILLER_KEYS.join(', ')})`);
    const teacher = o.teacher as TeacherModel;
    if (!teacher || typeof teacher.forward !== 'function') fail('INVALID_ARGUMENT', `Distiller: expected teacher to be a model with forward(x), got ${describe(o.teacher)}`);
    if (!(o.student instanceof Module)) fail('INVALID_ARGUMENT', `Distiller: expected student to be an nn.Module, got ${describe(o.student)}`);
    if (o.student === (teacher as unknown)) fail('INVALID_ARGUMENT', 'Distiller: the teacher and the student are the same model');
    const { temperature, alpha } = kdOptions({ temperature: o.temperature as number | undefined, alpha: o.alpha as number | undefined }, 'Distiller');
    this.teacher = teacher;
    this.student = o.student;
    this.temperature = temperature;
    this.alpha = alpha;

    let projection: Module | null = null;
    let studentLayer: number | null = null;
    this.teacherHead = null;
    this.teacherTail = null;
    if (o.hint !== undefined) {
      const h = checkOptions(o.hint, 'hint');
      for (const k of Object.keys(h)) if (!['teacherLayer', 'studentLayer', 'weight', 'projection'].includes(k)) fail('INVALID_ARGUMENT', `Distiller: unknown hint option '${k}' (expected teacherLayer, studentLayer, weight, projection)`);
      if (!(teacher instanceof Module)) fail('INVALID_ARGUMENT', 'Distiller: a hint needs the teacher to be an nn.Module (a Sequential)');
      const weight = h.weight === undefined ? 1 : (h.weight as number);
      if (typeof weight !== 'number' || !(weight >= 0) || !Number.isFinite(weight)) fail('INVALID_ARGUMENT', `Distiller: expected hint.weight >= 0, got ${describe(h.weight)}`);
      const tk = childIndex(teacher, h.teacherLayer as number | string, 'teacher');
      studentLayer = childIndex(this.student, h.studentLayer as number | string, 'student');
      [this.teacherHead, this.teacherTail] = splitAt(teacher, tk);
      if (h.projection instanceof Module) projection = h.projection;
      else if (h.projection !== undefined && h.projection !== 'auto') fail('INVALID_ARGUMENT', `Distiller: expected hint.projection to be a Module or 'auto', got ${describe(h.projection)}`);
      this.hint = { teacherLayer: tk, studentLayer, weight, projection: null };
    } else {
      this.hint = null;
    }
    const model = new DistillModule(this.student, projection, studentLayer, () => this.teacherFlopsPerSample);
    if (this.hint && projection === null) {
      // Widths are known only by running a row through both heads.
      const inFeatures = (this.student.modules().find((m) => typeof (m as { inFeatures?: unknown }).inFeatures === 'number') as { inFeatures?: number } | undefined)?.inFeatures;
      if (inFeatures === undefined) fail('INVALID_ARGUMENT', "Distiller: cannot infer the hint widths (give hint.projection, or a student starting with a Linear)");
      const sample = tensor(new Float32Array(inFeatures), { shape: [1, inFeatures] });
      const sw = featureWidth((x) => splitAt(this.student, studentLayer!)[0].forward(x), sample);
      const tw = featureWidth((x) => this.teacherHead!.forward(x), sample);
      sample.dispose();
      if (sw !== tw) {
        if (typeof o.optimizer !== 'function') {
          fail('INVALID_ARGUMENT', `Distiller: the student's hint features have ${sw} columns and the teacher's ${tw}; give hint.projection (and train it), or optimizer as a factory (params) => optimizer so that an automatic projection is trained`);
        }
        projection = new Linear(sw, tw);
        model.projection = projection;
      }
    }
    if (this.hint) this.hint.projection = projection;
    this.model = model;

    if (typeof o.optimizer === 'function') this.optimizer = (o.optimizer as (p: Tensor[]) => TrainerOptimizer)(model.parameters());
    else this.optimizer = o.optimizer as TrainerOptimizer;
    if (!this.optimizer || typeof this.optimizer.step !== 'function') fail('INVALID_ARGUMENT', `Distiller: expected optimizer to be an optimizer or a factory returning one, got ${describe(this.optimizer)}`);

    this.trainer = new Trainer({
      model: this.model,
      optimizer: this.optimizer,
      loss: (out, y) => this.loss(out, y),
      metrics: (o.metrics as MetricSpec[] | undefined) ?? ['accuracy'],
      scheduler: o.scheduler as TrainerScheduler | undefined,
      schedulerStep: o.schedulerStep as 'epoch' | 'batch' | undefined,
      clipGradNorm: o.clipGradNorm as number | undefined,
    });
  }

  /** The teacher's logits (and hint features) for a batch: eval mode, no gradients. */
  private teacherOut(x: Tensor): { logits: Tensor; features: Tensor | null } {
    return noGrad(() => {
      if (this.teacherHead) {
        const features = this.teacherHead.forward(x) as Tensor;
        return { logits: this.teacherTail!.forward(features) as Tensor, features };
      }
      return { logits: this.teacher.forward(x) as Tensor, features: null };
    });
  }

  private loss(out: Tensor, y: Tensor): Tensor {
    const p = this.batches?.pending ?? null;
    if (p === null) return crossEntropy(out, y); // validation / evaluation batches
    this.batches!.pending = null;
    const parts = kdLossParts(out, p.logits, y, { temperature: this.temperature, alpha: this.alpha });
    const n = out.shape[0];
    this.sums.soft += (Number.isNaN(parts.soft) ? 0 : parts.soft) * n;
    this.sums.hard += (Number.isNaN(parts.hard) ? crossEntropy(out.detach(), y).item() : parts.hard) * n;
    this.sums.n += n;
    let loss = parts.loss;
    if (this.hint && p.features && this.model.features) {
      const proj = this.hint.projection;
      const sf = proj ? (proj.forward(this.model.features) as Tensor) : this.model.features;
      const h = hintLoss(sf, p.features);
      this.sums.hint += h.item() * n;
      loss = ops.add(loss, ops.mul(h, this.hint.weight));
    }
    return loss;
  }

  /** Teacher outputs for every sample of `data`, in order (kept; the caller disposes). */
  private cacheTeacher(data: Dataset): { logits: Tensor; features: Tensor | null } {
    const loader = new DataLoader(data, { batchSize: 1024 });
    const logits: Tensor[] = [];
    const feats: Tensor[] = [];
    try {
      for (const b of loader) {
        tidy(() => {
          const r = this.teacherOut(b.x);
          logits.push(r.logits.keep());
          if (r.features) feats.push(r.features.keep());
        });
        for (const t of b.tensors) t.dispose();
      }
      const out = tidy(() => ({ logits: concat(logits, 0), features: feats.length ? concat(feats, 0) : null }));
      out.logits.keep();
      out.features?.keep();
      return out;
    } finally {
      for (const t of [...logits, ...feats]) t.dispose();
    }
  }

  /**
   * Trains the student for `epochs` epochs on `train` (labels: int32 class indices) with the
   * teacher's soft targets; options as Trainer.fit, plus cacheTeacherLogits. The report adds the
   * soft/hard/hint loss terms per epoch, and its cost fields cover the teacher's work too.
   */
  async fit(train: Dataset | DataLoader, options: DistillFitOptions = {}): Promise<DistillReport> {
    const o = checkOptions(options, 'options') as DistillFitOptions & Record<string, unknown>;
    const cache = o.cacheTeacherLogits === undefined ? true : checkBool(o.cacheTeacherLogits, 'cacheTeacherLogits');
    const { cacheTeacherLogits: _drop, ...fitOptions } = o;
    void _drop;
    let base: Dataset;
    let loaderOpts: Partial<FitOptions> = {};
    if (train instanceof DataLoader) {
      for (const k of ['batchSize', 'shuffle', 'seed', 'dropLast']) {
        if (fitOptions[k as keyof FitOptions] !== undefined) fail('INVALID_ARGUMENT', `fit: ${k} cannot be given with a DataLoader (set it on the DataLoader)`);
      }
      base = train.dataset;
      loaderOpts = { batchSize: train.batchSize, shuffle: train.shuffle, seed: train.seed, dropLast: train.dropLast };
    } else {
      if (!isDataset(train)) fail('INVALID_ARGUMENT', `fit: expected train to be a Dataset or a DataLoader, got ${describe(train)}`);
      base = checkDataset(train, 'train');
    }
    if (base.length === 0) fail('INVALID_ARGUMENT', 'fit: train is empty');

    const teacherWasTraining = this.teacher.training;
    this.teacher.eval?.();
    const meter = new CostMeter(this.trainer.device).start();
    const teacherFwd = 2 * denseMacs(this.teacher) || 0;
    let cached: { logits: Tensor; features: Tensor | null } | null = null;
    let cacheSeconds = 0;
    this.sums = { soft: 0, hard: 0, hint: 0, n: 0 };
    const userEpochEnd = o.callbacks?.onEpochEnd;
    try {
      if (cache) {
        const t0 = performance.now();
        cached = this.cacheTeacher(base);
        cacheSeconds = (performance.now() - t0) / 1000;
        if (!o.quiet && o.progress !== false) (o.progressStream ?? process.stderr).write(`teacher outputs cached for ${base.length} samples in ${cacheSeconds.toFixed(1)} s\n`);
      }
      this.teacherFlopsPerSample = cache ? 0 : teacherFwd;
      this.batches = new TeacherBatches(base, (x) => this.teacherOut(x), cached);
      const data = train instanceof DataLoader ? new DataLoader(this.batches, loaderOpts) : this.batches;
      const report = (await this.trainer.fit(data, {
        ...fitOptions,
        callbacks: {
          ...(o.callbacks ?? {}),
          onEpochEnd: async (er, trainer) => {
            const n = this.sums.n || 1;
            const der = er as DistillEpochReport;
            der.softLoss = this.alpha > 0 ? this.sums.soft / n : NaN;
            der.hardLoss = this.sums.hard / n;
            if (this.hint) der.hintLoss = this.sums.hint / n;
            this.sums = { soft: 0, hard: 0, hint: 0, n: 0 };
            if (userEpochEnd) await userEpochEnd(er, trainer);
          },
        },
      })) as DistillReport;
      // The cost of the whole job: the teacher's cached pass, the student's steps, validation.
      const valFlops = report.flopsSource === 'model' ? report.flops - report.samples * modelFlopsPerSample(this.model, true) : 0;
      const modelFlops = report.samples * modelFlopsPerSample(this.model, true) + (cache ? base.length * teacherFwd : 0) + Math.max(0, valFlops);
      const cost: CostFields = costFields(meter.stop(), report.samples, modelFlops);
      Object.assign(report, cost);
      report.totalSeconds += cacheSeconds;
      report.teacherSeconds = cacheSeconds + this.batches.teacherSeconds;
      report.cachedTeacher = cache;
      return report;
    } finally {
      this.batches = null;
      cached?.logits.dispose();
      cached?.features?.dispose();
      if (teacherWasTraining) this.teacher.train?.(true);
    }
  }

  /** Loss and metrics of the student on `data` (cross entropy against the labels). */
  evaluate(data: Dataset | DataLoader, options: { batchSize?: number } = {}) {
    return this.trainer.evaluate(data, options);
  }
}
