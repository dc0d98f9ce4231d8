// The distillation margin over seeds. The setting is distillation's own: a teacher that has
// learned from more than the student's labelled data (here all 60,000 MNIST training images) and
// a student with a small labelled set (the first 5,000 of the same shuffled order). For each seed
// the same student (same initialisation and data order) is trained on that set from the labels
// alone and by distillation, and both are scored on the MNIST test set. Used by the test suite to
// check that distillation helps, seed after seed.
//
// When the student sees all 60,000 labelled images too, it gets within 0.2 points of this
// teacher and distillation stops paying (measured: 784-256-10 students, 8 epochs, margins -0.22 to
// 0.00, mean -0.10; 784-64-10, 6 epochs: mean -0.24) — see the README's demo section.
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
  /** Training images the teacher sees (the first of the same shuffled order; >= trainSamples). */
  teacherSamples: number;
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
  teacherSamples: 60000,
  teacherHidden: [800, 800],
  teacherDropout: 0.5,
  teacherEpochs: 3,
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
  const order = permutation(full.length, 0, 7);
  const train = new Subset(full, order.slice(0, c.trainSamples));
  const teacherTrain = c.teacherSamples === c.trainSamples ? train : new Subset(full, order.slice(0, c.teacherSamples));
  manualSeed(0);
  const teacher = mlp(c.teacherHidden, c.teacherDropout);
  const tOpt = new Adam(teacher.parameters(), { lr: c.teacherLr });
  await new Trainer({ model: teacher, optimizer: tOpt, scheduler: new CosineAnnealingLR(tOpt, { tMax: c.teacherEpochs }) })
    .fit(teacherTrain, { epochs: c.teacherEpochs, batchSize: c.batchSize, seed: 0, quiet: true });
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
