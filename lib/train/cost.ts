// The cost fields of a training report (FLOPs, MFU, energy) from a CostMeter reading.
//
// FLOPs come from the kernels' own counter when it counts; when it reads 0 (kernels that do not
// report), they are the model FLOPs of the dense layers: 2·in·out per sample forward, 6·in·out
// per sample for a training step (forward, input gradient, weight gradient) — the count MFU is
// defined on. Models may give their own count with flopsPerSample(training).
import type { CostReport } from '../energy/index';

export interface CostFields {
  /** Floating-point operations done (a multiply-add counts 2). */
  flops: number;
  /** 'kernels' (counted by the kernels), 'model' (the dense layers' model FLOPs), or 'none'. */
  flopsSource: 'kernels' | 'model' | 'none';
  /** Achieved FLOP/s over the device's peak, in [0, 1]; null without FLOPs or a known peak. */
  mfu: number | null;
  /** Energy in joules, or null when no meter was readable (energySource says why). */
  joules: number | null;
  joulesPerSample: number | null;
  /** What measured the energy ('RAPL (CPU package)', 'NVML'), or why it was not measured. */
  energySource: string;
}

interface Walkable {
  modules?(): unknown[];
  flopsPerSample?(training: boolean): number;
}

/** Multiply-adds per sample of the model's dense layers (anything with inFeatures and outFeatures), or 0. */
export function denseMacs(model: unknown): number {
  const m = model as Walkable;
  if (!m || typeof m.modules !== 'function') return 0;
  let macs = 0;
  for (const sub of m.modules()) {
    const l = sub as { inFeatures?: unknown; outFeatures?: unknown };
    if (typeof l.inFeatures === 'number' && typeof l.outFeatures === 'number') macs += l.inFeatures * l.outFeatures;
  }
  return macs;
}

/** Model FLOPs per sample: the model's own flopsPerSample(training), else 6 (training) or 2 (inference) × dense multiply-adds. */
export function modelFlopsPerSample(model: unknown, training: boolean): number {
  const m = model as Walkable;
  if (m && typeof m.flopsPerSample === 'function') return m.flopsPerSample(training);
  return (training ? 6 : 2) * denseMacs(model);
}

/** The report's cost fields: kernel FLOPs when counted, else `modelFlops`. */
export function costFields(c: CostReport, samples: number, modelFlops: number): CostFields {
  let flops = c.flops;
  let flopsSource: CostFields['flopsSource'] = 'kernels';
  if (!(flops > 0)) {
    flops = modelFlops > 0 ? modelFlops : 0;
    flopsSource = modelFlops > 0 ? 'model' : 'none';
  }
  const rate = c.seconds > 0 ? flops / c.seconds : 0;
  return {
    flops,
    flopsSource,
    mfu: c.peakFlopsPerSecond && flops > 0 ? rate / c.peakFlopsPerSecond : null,
    joules: c.joules,
    joulesPerSample: c.joules !== null && samples > 0 ? c.joules / samples : null,
    energySource: c.energySource,
  };
}
