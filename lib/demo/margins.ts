// The distillation margin over seeds: one teacher, then for each seed the same student trained
// from labels alone and distilled (same initialisation and data order), both scored on the
// MNIST test set. Used by the test suite to check that distillation helps, seed after seed.
import { Subset } from '../data/dataset';
import { loadMnist } from '../data/mnist';
import { permutation } from '../data/random';
import { Distiller } from '../distill/distiller';
import { Dropout, Linear, ReLU, Sequential } from '../nn/layers';
import { Module } from '../nn/module';
import { Adam } from '../optim/adam';
import { CosineAnnealingLR } from '../optim/scheduler';
import { manualSeed } from '../tensor';
import { Trainer } from '../train/trainer';
import { testAccuracy } from './measure';

export interface MarginConfig {
  trainSamples: number;
  teacherHidden: number[];
  teacherDropout: number;
  teacherEpochs: number;
  studentHidden: number[];
  studentEpochs: number;
  temperature: number;
  alpha: number;
  batchSize: number;
  teacherLr: number;
  studentLr: number;
}

export const MARGIN_CONFIG: MarginConfig = {
  trainSamples: 5000,
  teacherHidden: [800, 800],
  teacherDropout: 0.5,
  teacherEpochs: 15,
  studentHidden: [256],
  studentEpochs: 20,
  temperature: 4,
  alpha: 0.9,
  batchSize: 128,
  teacherLr: 1e-3,
  studentLr: 2e-3,
};

export interface MarginResult {
  teacherAccuracy: number;
  /** Per seed: test accuracy of the label-only and of the distilled student, and the margin in points. */
  seeds: { seed: number; labels: number; distilled: number; marginPoints: number }[];
  meanMarginPoints: number;
  minMarginPoints: number;
  seconds: number;
}

function mlp(hidden: number[], dropout: number): Sequential {
  const layers: Module[] = [];
  let w = 784;
  for (const h of hidden) {
    layers.push(new Linear(w, h), new ReLU());
    if (dropout > 0) layers.push(new Dropout(dropout));
    w = h;
  }
  layers.push(new Linear(w, 10));
  return new Sequential(...layers);
}

/** Trains one teacher (seed 0), then label-only and distilled students for each seed. */
export async function distillationMargins(seeds: number[], config: Partial<MarginConfig> = {}): Promise<MarginResult> {
  const c = { ...MARGIN_CONFIG, ...config };
  const t0 = performance.now();
  const full = loadMnist({ split: 'train' });
  const test = loadMnist({ split: 'test' });
  const train = new Subset(full, permutation(full.length, 0, 7).slice(0, c.trainSamples));
  manualSeed(0);
  const teacher = mlp(c.teacherHidden, c.teacherDropout);
  const tOpt = new Adam(teacher.parameters(), { lr: c.teacherLr });
  await new Trainer({ model: teacher, optimizer: tOpt, scheduler: new CosineAnnealingLR(tOpt, { tMax: c.teacherEpochs }) })
    .fit(train, { epochs: c.teacherEpochs, batchSize: c.batchSize, seed: 0, quiet: true });
  tOpt.dispose();
  const out: MarginResult['seeds'] = [];
  try {
    for (const seed of seeds) {
      const acc: number[] = [];
      for (const distill of [false, true]) {
        manualSeed(1000 + seed);
        const student = mlp(c.studentHidden, 0);
        const opt = new Adam(student.parameters(), { lr: c.studentLr });
        const scheduler = new CosineAnnealingLR(opt, { tMax: c.studentEpochs });
        const fit = { epochs: c.studentEpochs, batchSize: c.batchSize, seed, quiet: true };
        if (distill) await new Distiller({ teacher, student, temperature: c.temperature, alpha: c.alpha, optimizer: opt, scheduler }).fit(train, fit);
        else await new Trainer({ model: student, optimizer: opt, scheduler }).fit(train, fit);
        acc.push(testAccuracy(student, test));
        opt.dispose();
        student.dispose();
      }
      out.push({ seed, labels: acc[0], distilled: acc[1], marginPoints: (acc[1] - acc[0]) * 100 });
    }
    const teacherAccuracy = testAccuracy(teacher, test);
    const m = out.map((s) => s.marginPoints);
    return {
      teacherAccuracy,
      seeds: out,
      meanMarginPoints: m.reduce((a, b) => a + b, 0) / m.length,
      minMarginPoints: Math.min(...m),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    teacher.dispose();
  }
}
