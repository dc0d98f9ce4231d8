// The demo job: teacher -> student from labels / distilled student -> int8 student on MNIST,
// measured on one table (accuracy, size, latency, throughput, training time, MFU, energy).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { checkOptions, describe, fail } from '../errors';
import { Dataset, Subset } from '../data/dataset';
import { loadMnist } from '../data/mnist';
import { permutation } from '../data/random';
import { Distiller } from '../distill/distiller';
import { cpuPeak } from '../energy/index';
import { Dropout, Linear, ReLU, Sequential } from '../nn/layers';
import { Module } from '../nn/module';
import { Adam } from '../optim/adam';
import { CosineAnnealingLR } from '../optim/scheduler';
import { quantize } from '../quant/index';
import { buildInfo, getNumThreads } from '../runtime';
import { manualSeed } from '../tensor';
import { EpochReport, FitReport, Trainer } from '../train/trainer';
import { ProgressStream } from '../train/progress';
import { countParameters, latencyMs, sizeOnDisk, testAccuracy } from './measure';

/** The knobs of a demo run; `quick` and the default are two presets of it. */
export interface DemoConfig {
  /** Training examples used (a seeded random subset of MNIST's 60,000), the same for every model. */
  trainSamples: number;
  /** Test examples for the per-epoch validation curve (the final accuracy uses the whole test set). */
  curveSamples: number;
  teacherHidden: number[];
  /** Dropout after each hidden layer of the teacher. */
  teacherDropout: number;
  teacherEpochs: number;
  studentHidden: number[];
  studentEpochs: number;
  temperature: number;
  alpha: number;
  batchSize: number;
  teacherLr: number;
  studentLr: number;
  /** Timed repeats of the latency measurements (batch 1, batch 256). */
  latencyRepeats: [number, number];
}

export const DEFAULT_CONFIG: DemoConfig = {
  trainSamples: 20000,
  curveSamples: 10000,
  teacherHidden: [1200, 1200],
  teacherDropout: 0.5,
  teacherEpochs: 6,
  studentHidden: [256],
  studentEpochs: 15,
  temperature: 4,
  alpha: 0.9,
  batchSize: 128,
  teacherLr: 1e-3,
  studentLr: 2e-3,
  latencyRepeats: [201, 31],
};

export const QUICK_CONFIG: DemoConfig = {
  trainSamples: 6000,
  curveSamples: 2000,
  teacherHidden: [512, 512],
  teacherDropout: 0.5,
  teacherEpochs: 4,
  studentHidden: [256],
  studentEpochs: 8,
  temperature: 4,
  alpha: 0.9,
  batchSize: 128,
  teacherLr: 1e-3,
  studentLr: 2e-3,
  latencyRepeats: [51, 11],
};

export type Phase = 'data' | 'teacher' | 'student' | 'distill' | 'quantize' | 'measure' | 'done';

export interface DemoProgress {
  phase: Phase;
  /** 1-based index of the phase and their count. */
  step: number;
  steps: number;
  message: string;
}

export interface DemoOptions {
  /** The quick preset (a data subset, a smaller teacher, fewer epochs). */
  quick?: boolean;
  /** Seed of the initialisations, the data subset and the data order (default 0). */
  seed?: number;
  /** Overrides the students' epochs. */
  epochs?: number;
  /** Overrides the teacher's epochs. */
  teacherEpochs?: number;
  /** Overrides any other knob of the preset. */
  config?: Partial<DemoConfig>;
  /** Called at the start of each phase. */
  onProgress?: (p: DemoProgress) => void;
  /** Where phase lines and the training progress go (default process.stderr); see quiet. */
  progressStream?: ProgressStream;
  /** No output at all (onProgress is still called). */
  quiet?: boolean;
  /** Folder for the model files (default: a new temporary folder, removed at the end). */
  dir?: string;
}

export interface DemoRow {
  /** 'teacher', 'student (labels)', 'student (distilled)', 'student (distilled, int8)'. */
  model: string;
  architecture: string;
  precision: 'fp32' | 'int8';
  parameters: number;
  /** Size of the model's safetensors file. */
  sizeBytes: number;
  /** Accuracy on the 10,000 MNIST test images, in [0, 1]. */
  testAccuracy: number;
  /** Median latency of one forward pass, batch 1 and batch 256 (ms). */
  latencyMs1: number;
  latencyMs256: number;
  /** Samples per second at batch 256 (256 / latencyMs256). */
  throughput: number;
  /** Training wall time (s), or null with trainingNote saying why (int8: quantized, not trained). */
  trainSeconds: number | null;
  /** Model-FLOP utilisation of the training, in [0, 1], or null with mfuNote. */
  mfu: number | null;
  /** Training energy (J), or null with energyNote (why it was not measured). */
  joules: number | null;
  trainingNote?: string;
  mfuNote?: string;
  energyNote?: string;
  /** Relative to the teacher: how many times less time per sample (batch 256 and 1) and how many times smaller on disk. */
  speedupVsTeacher256: number;
  speedupVsTeacher1: number;
  sizeRatioVsTeacher: number;
}

export interface DemoCurve {
  model: string;
  epochs: { epoch: number; loss: number; valAccuracy: number | null; seconds: number }[];
}

export interface DemoResult {
  rows: DemoRow[];
  curves: DemoCurve[];
  /** teacher -> int8 student: time per sample (batch 256, batch 1) and size, as "x times cheaper". */
  teacherToInt8: { timePerSample256: number; timePerSample1: number; size: number; accuracyLoss: number };
  /** Distilled student's accuracy minus the label-only student's, in points. */
  distillMarginPoints: number;
  config: DemoConfig;
  seed: number;
  quick: boolean;
  machine: { cpu: string; isa: string; threads: number; peakGflops: number; loadavg: number[] };
  /** The energy meter's full message when energy was not measured. */
  energySource: string;
  wallSeconds: number;
}

const PHASES = 6;

function mlp(inFeatures: number, hidden: number[], classes: number, dropout: number): Sequential {
  const layers: Module[] = [];
  let width = inFeatures;
  for (const h of hidden) {
    layers.push(new Linear(width, h), new ReLU());
    if (dropout > 0) layers.push(new Dropout(dropout));
    width = h;
  }
  layers.push(new Linear(width, classes));
  return new Sequential(...layers);
}

function arch(hidden: number[]): string {
  return [784, ...hidden, 10].join('-');
}

/** The short reason for an unmeasured energy, for the table (the full one is in energySource). */
export function shortEnergyReason(source: string): string {
  if (/does not exist/.test(source)) return 'no RAPL on this machine';
  if (/not readable/.test(source)) return 'RAPL not readable (needs root)';
  if (/NVML/.test(source)) return 'NVML unavailable';
  return source.length > 40 ? source.slice(0, 37) + '...' : source || 'no energy meter';
}

function curveOf(model: string, epochs: EpochReport[]): DemoCurve {
  return {
    model,
    epochs: epochs.map((e) => ({ epoch: e.epoch, loss: e.loss, valAccuracy: e.valMetrics?.accuracy ?? null, seconds: e.seconds })),
  };
}

/** Runs the demo job and returns its table rows, curves and ratios. */
export async function run(options: DemoOptions = {}): Promise<DemoResult> {
  const o = checkOptions(options, 'options') as DemoOptions;
  const known = ['quick', 'seed', 'epochs', 'teacherEpochs', 'config', 'onProgress', 'progressStream', 'quiet', 'dir'];
  for (const k of Object.keys(o)) if (!known.includes(k)) fail('INVALID_ARGUMENT', `demo.run: unknown option '${k}' (expected one of ${known.join(', ')})`);
  const quick = Boolean(o.quick);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) fail('INVALID_ARGUMENT', `demo.run: expected seed to be a non-negative integer, got ${describe(o.seed)}`);
  const cfg: DemoConfig = { ...(quick ? QUICK_CONFIG : DEFAULT_CONFIG), ...(o.config ?? {}) };
  if (o.epochs !== undefined) {
    if (!Number.isInteger(o.epochs) || o.epochs < 1) fail('INVALID_ARGUMENT', `demo.run: expected epochs to be a positive integer, got ${describe(o.epochs)}`);
    cfg.studentEpochs = o.epochs;
  }
  if (o.teacherEpochs !== undefined) {
    if (!Number.isInteger(o.teacherEpochs) || o.teacherEpochs < 1) fail('INVALID_ARGUMENT', `demo.run: expected teacherEpochs to be a positive integer, got ${describe(o.teacherEpochs)}`);
    cfg.teacherEpochs = o.teacherEpochs;
  }
  const quiet = Boolean(o.quiet);
  const stream = o.progressStream ?? process.stderr;
  const wall0 = performance.now();
  let step = 0;
  const phase = (p: Phase, message: string): void => {
    step = p === 'done' ? PHASES : step + 1;
    o.onProgress?.({ phase: p, step, steps: PHASES, message });
    if (!quiet) stream.write(`[demo ${step}/${PHASES}] ${message}\n`);
  };
  const fitQuiet = { quiet, progressStream: stream };

  const ownDir = o.dir === undefined;
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'joule-demo-'));
  const models: Module[] = [];
  try {
    phase('data', `MNIST: ${cfg.trainSamples} training examples (seed ${seed}), 10000 test examples; peak ${(cpuPeak() / 1e9).toFixed(1)} GFLOP/s on ${getNumThreads()} threads`);
    const full = loadMnist({ split: 'train' });
    const test = loadMnist({ split: 'test' });
    const train: Dataset = cfg.trainSamples >= full.length ? full : new Subset(full, permutation(full.length, seed, 7).slice(0, cfg.trainSamples));
    const curve: Dataset = cfg.curveSamples >= test.length ? test : new Subset(test, Int32Array.from({ length: cfg.curveSamples }, (_, i) => i));

    // ---- teacher ----
    phase('teacher', `training the teacher ${arch(cfg.teacherHidden)} (dropout ${cfg.teacherDropout}) for ${cfg.teacherEpochs} epoch(s)`);
    manualSeed(seed);
    const teacher = mlp(784, cfg.teacherHidden, 10, cfg.teacherDropout);
    models.push(teacher);
    const tOpt = new Adam(teacher.parameters(), { lr: cfg.teacherLr });
    const tTrainer = new Trainer({ model: teacher, optimizer: tOpt, metrics: ['accuracy'], scheduler: new CosineAnnealingLR(tOpt, { tMax: cfg.teacherEpochs }) });
    const tReport = await tTrainer.fit(train, { epochs: cfg.teacherEpochs, batchSize: cfg.batchSize, seed, validation: curve, ...fitQuiet });
    tOpt.dispose?.();

    // ---- student from labels ----
    phase('student', `training the student ${arch(cfg.studentHidden)} from labels alone for ${cfg.studentEpochs} epoch(s)`);
    manualSeed(seed + 1);
    const plain = mlp(784, cfg.studentHidden, 10, 0);
    models.push(plain);
    const pOpt = new Adam(plain.parameters(), { lr: cfg.studentLr });
    const pTrainer = new Trainer({ model: plain, optimizer: pOpt, metrics: ['accuracy'], scheduler: new CosineAnnealingLR(pOpt, { tMax: cfg.studentEpochs }) });
    const pReport = await pTrainer.fit(train, { epochs: cfg.studentEpochs, batchSize: cfg.batchSize, seed, validation: curve, ...fitQuiet });
    pOpt.dispose?.();

    // ---- distilled student (same initialisation and data order) ----
    phase('distill', `distilling the teacher into the same student (T = ${cfg.temperature}, alpha = ${cfg.alpha}) for ${cfg.studentEpochs} epoch(s)`);
    manualSeed(seed + 1);
    const student = mlp(784, cfg.studentHidden, 10, 0);
    models.push(student);
    const dOpt = new Adam(student.parameters(), { lr: cfg.studentLr });
    const distiller = new Distiller({
      teacher, student, temperature: cfg.temperature, alpha: cfg.alpha, optimizer: dOpt,
      scheduler: new CosineAnnealingLR(dOpt, { tMax: cfg.studentEpochs }),
    });
    const dReport = await distiller.fit(train, { epochs: cfg.studentEpochs, batchSize: cfg.batchSize, seed, validation: curve, cacheTeacherLogits: true, ...fitQuiet });
    dOpt.dispose?.();

    // ---- int8 ----
    phase('quantize', 'quantizing the distilled student to int8 (dynamic: int8 weights per channel, int8 activations per row)');
    const q0 = performance.now();
    const int8 = quantize(student, { mode: 'dynamic' });
    const quantSeconds = (performance.now() - q0) / 1000;
    models.push(int8);

    // ---- measurements ----
    phase('measure', `measuring accuracy (10000 test images), size on disk and latency (median of ${cfg.latencyRepeats[0]} runs at batch 1, ${cfg.latencyRepeats[1]} at batch 256)`);
    const x1 = test.x.narrow(0, 0, 1).contiguous().keep();
    const x256 = test.x.narrow(0, 0, 256).contiguous().keep();
    const energySource = tReport.energySource;
    const row = (name: string, model: Module, hidden: number[], report: FitReport | null): DemoRow => {
      const int = report === null;
      const l1 = latencyMs(model, x1, cfg.latencyRepeats[0]);
      const l256 = latencyMs(model, x256, cfg.latencyRepeats[1]);
      const r: DemoRow = {
        model: name,
        architecture: arch(hidden),
        precision: int ? 'int8' : 'fp32',
        parameters: countParameters(model),
        sizeBytes: sizeOnDisk(model, dir, name.replace(/[^a-z0-9]+/gi, '-')).bytes,
        testAccuracy: testAccuracy(model, test),
        latencyMs1: l1,
        latencyMs256: l256,
        throughput: 256 / (l256 / 1000),
        trainSeconds: report ? report.totalSeconds : null,
        mfu: report ? report.mfu : null,
        joules: report ? report.joules : null,
        speedupVsTeacher256: 1,
        speedupVsTeacher1: 1,
        sizeRatioVsTeacher: 1,
      };
      if (int) {
        r.trainingNote = `not trained: quantized from the distilled student in ${(quantSeconds * 1000).toFixed(0)} ms`;
        r.mfuNote = 'no training (post-training quantization)';
        r.energyNote = 'no training (post-training quantization)';
      } else {
        if (r.mfu === null) r.mfuNote = 'no FLOP count or peak for this device';
        if (r.joules === null) r.energyNote = shortEnergyReason(report!.energySource);
      }
      return r;
    };
    const rows = [
      row('teacher', teacher, cfg.teacherHidden, tReport),
      row('student (labels)', plain, cfg.studentHidden, pReport),
      row('student (distilled)', student, cfg.studentHidden, dReport),
      row('student (distilled, int8)', int8, cfg.studentHidden, null),
    ];
    x1.dispose();
    x256.dispose();
    const t = rows[0];
    for (const r of rows) {
      r.speedupVsTeacher256 = t.latencyMs256 / r.latencyMs256;
      r.speedupVsTeacher1 = t.latencyMs1 / r.latencyMs1;
      r.sizeRatioVsTeacher = t.sizeBytes / r.sizeBytes;
    }
    const q = rows[3];
    const info = buildInfo().cpu;
    const result: DemoResult = {
      rows,
      curves: [curveOf('teacher', tReport.epochs), curveOf('student (labels)', pReport.epochs), curveOf('student (distilled)', dReport.epochs)],
      teacherToInt8: {
        timePerSample256: q.speedupVsTeacher256,
        timePerSample1: q.speedupVsTeacher1,
        size: q.sizeRatioVsTeacher,
        accuracyLoss: (t.testAccuracy - q.testAccuracy) * 100,
      },
      distillMarginPoints: (rows[2].testAccuracy - rows[1].testAccuracy) * 100,
      config: cfg,
      seed,
      quick,
      machine: { cpu: info.model, isa: info.isa, threads: getNumThreads(), peakGflops: cpuPeak() / 1e9, loadavg: os.loadavg() },
      energySource,
      wallSeconds: 0,
    };
    result.wallSeconds = (performance.now() - wall0) / 1000;
    phase('done', `done in ${result.wallSeconds.toFixed(1)} s`);
    return result;
  } finally {
    for (const m of models) m.dispose();
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

