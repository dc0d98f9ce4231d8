// Measurements the demo table is made of: parameters, size on disk, accuracy, latency.
import * as fs from 'fs';
import * as path from 'path';
import { noGrad } from '../autograd';
import { Dataset } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { accuracy } from '../nn/functional';
import { Module } from '../nn/module';
import { save as saveSafetensors } from '../io/safetensors';
import { QuantizedLinear, saveQuantized } from '../quant/index';
import { Tensor, tidy } from '../tensor';

/** Parameters of a model; an int8 layer's weights count as parameters as in its fp32 original. */
export function countParameters(model: Module): number {
  let n = 0;
  for (const m of model.modules()) {
    if (m instanceof QuantizedLinear) n += m.inFeatures * m.outFeatures + (m.bias ? m.outFeatures : 0);
    else for (const p of m.parameters({ recurse: false })) n += p.size;
  }
  return n;
}

export function isQuantized(model: Module): boolean {
  return model.modules().some((m) => m instanceof QuantizedLinear);
}

/** Saves the model as safetensors under `dir` (int8 models in the int8 format) and returns the file's size in bytes. */
export function sizeOnDisk(model: Module, dir: string, name: string): { bytes: number; file: string } {
  const file = path.join(dir, `${name}.safetensors`);
  if (isQuantized(model)) saveQuantized(model, file);
  else saveSafetensors(file, model.stateDict());
  return { bytes: fs.statSync(file).size, file };
}

/** Test accuracy of a model over a dataset (eval mode, no gradients; the mode is restored). */
export function testAccuracy(model: Module, data: Dataset, batchSize = 1000): number {
  const was = model.training;
  model.eval();
  let hits = 0;
  let n = 0;
  try {
    for (const b of new DataLoader(data, { batchSize })) {
      tidy(() => noGrad(() => {
        hits += accuracy(model.forward(b.x) as Tensor, b.y) * b.size;
        n += b.size;
        for (const t of b.tensors) t.dispose();
      }));
    }
  } finally {
    model.train(was);
  }
  return n ? hits / n : NaN;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Median wall time (ms) of one forward pass on `x` (eval mode, no gradients), over `repeats`
 * timed runs after `warmup` untimed ones. Each run reads its result back, so the time covers
 * the whole pass.
 */
export function latencyMs(model: Module, x: Tensor, repeats: number, warmup = 3): number {
  const was = model.training;
  model.eval();
  const times: number[] = [];
  try {
    for (let i = 0; i < warmup + repeats; i++) {
      const t0 = performance.now();
      tidy(() => noGrad(() => {
        const y = model.forward(x) as Tensor;
        y.data();
      }));
      const dt = performance.now() - t0;
      if (i >= warmup) times.push(dt);
    }
  } finally {
    model.train(was);
  }
  return median(times);
}
