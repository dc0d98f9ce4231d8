// The demo's table as text (the terminal) and as JSON.
import type { DemoResult, DemoRow } from './run';

export interface Column {
  key: string;
  title: string;
  /** What the column means (README, HTML report). */
  meaning: string;
  cell(r: DemoRow): string;
}

function bytes(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function count(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

function ms(v: number): string {
  return v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toFixed(3);
}

function rate(v: number): string {
  return Math.round(v).toLocaleString('en-US');
}

function times(v: number): string {
  return v >= 10 ? `${v.toFixed(0)}x` : `${v.toFixed(1)}x`;
}

export const COLUMNS: Column[] = [
  { key: 'model', title: 'model', meaning: 'which model: the teacher, the student trained from labels alone, the same student distilled from the teacher, and the distilled student quantized to int8', cell: (r) => r.model },
  { key: 'architecture', title: 'layers', meaning: 'layer widths of the MLP (784 inputs, 10 classes)', cell: (r) => r.architecture },
  { key: 'parameters', title: 'params', meaning: 'number of weights and biases', cell: (r) => count(r.parameters) },
  { key: 'sizeBytes', title: 'size', meaning: 'size of the model saved as a safetensors file (int8 weights + fp32 scales and biases for the int8 model)', cell: (r) => bytes(r.sizeBytes) },
  { key: 'testAccuracy', title: 'test acc', meaning: 'accuracy on the 10,000 MNIST test images', cell: (r) => `${(r.testAccuracy * 100).toFixed(2)}%` },
  { key: 'latencyMs1', title: 'lat@1', meaning: 'median wall time of one forward pass of a single image, in ms', cell: (r) => `${ms(r.latencyMs1)} ms` },
  { key: 'latencyMs256', title: 'lat@256', meaning: 'median wall time of one forward pass of a batch of 256 images, in ms', cell: (r) => `${ms(r.latencyMs256)} ms` },
  { key: 'throughput', title: 'samples/s', meaning: 'inference throughput at batch 256 (256 / lat@256)', cell: (r) => rate(r.throughput) },
  { key: 'trainSeconds', title: 'train', meaning: 'training wall time (the distilled student\'s includes computing the teacher\'s logits once); the int8 model is not trained but quantized', cell: (r) => (r.trainSeconds === null ? `- (${r.trainingNote?.startsWith('not trained') ? 'quantized' : r.trainingNote})` : `${r.trainSeconds.toFixed(1)} s`) },
  { key: 'mfu', title: 'MFU', meaning: 'model-FLOP utilisation of the training: model FLOPs per second over the CPU\'s measured fp32 FMA peak', cell: (r) => (r.mfu === null ? `- (${r.mfuNote?.startsWith('no training') ? 'not trained' : r.mfuNote})` : `${(r.mfu * 100).toFixed(1)}%`) },
  { key: 'joules', title: 'energy', meaning: 'energy of the training in joules from RAPL (CPU package) or NVML, or why it was not measured', cell: (r) => (r.joules === null ? `- (${r.energyNote?.startsWith('no training') ? 'not trained' : r.energyNote})` : `${r.joules.toFixed(0)} J`) },
  { key: 'vsTeacher', title: 'vs teacher', meaning: 'cost relative to the teacher: times less time per sample at batch 256, and times smaller on disk', cell: (r) => `${times(r.speedupVsTeacher256)} faster, ${times(r.sizeRatioVsTeacher)} smaller` },
];

/** The table as aligned text, with a summary under it. */
export function formatTable(result: DemoResult): string {
  const head = COLUMNS.map((c) => c.title);
  const body = result.rows.map((r) => COLUMNS.map((c) => c.cell(r)));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const numeric = new Set(['parameters', 'sizeBytes', 'testAccuracy', 'latencyMs1', 'latencyMs256', 'throughput']);
  const line = (cells: string[]): string =>
    cells.map((c, i) => (numeric.has(COLUMNS[i].key) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  const t = result.teacherToInt8;
  out.push('');
  out.push(`teacher -> int8 student: ${times(t.timePerSample256)} less time per sample at batch 256 (${times(t.timePerSample1)} at batch 1), ` +
    `${times(t.size)} smaller, ${t.accuracyLoss >= 0 ? `${t.accuracyLoss.toFixed(2)} points less` : `${(-t.accuracyLoss).toFixed(2)} points more`} accurate`);
  out.push(`distillation: ${result.distillMarginPoints >= 0 ? '+' : ''}${result.distillMarginPoints.toFixed(2)} points over the same student trained from labels alone`);
  const m = result.machine;
  out.push(`machine: ${m.cpu} (${m.isa}), ${m.threads} threads, peak ${m.peakGflops.toFixed(1)} GFLOP/s; load average ${m.loadavg.map((v) => v.toFixed(2)).join(' ')}; ` +
    `seed ${result.seed}${result.quick ? ', --quick' : ''}; ${result.wallSeconds.toFixed(1)} s`);
  if (result.rows.some((r) => r.joules === null && r.energyNote && !r.energyNote.startsWith('no training'))) out.push(`energy: ${result.energySource}`);
  return out.join('\n');
}

/** The result as a JSON-ready object: the rows (with every column's text too), ratios, curves, machine. */
export function tableJson(result: DemoResult): object {
  return {
    columns: COLUMNS.map((c) => ({ key: c.key, title: c.title, meaning: c.meaning })),
    rows: result.rows.map((r) => ({ ...r, text: Object.fromEntries(COLUMNS.map((c) => [c.key, c.cell(r)])) })),
    teacherToInt8: result.teacherToInt8,
    distillMarginPoints: result.distillMarginPoints,
    curves: result.curves,
    config: result.config,
    seed: result.seed,
    quick: result.quick,
    machine: result.machine,
    energySource: result.energySource,
    wallSeconds: result.wallSeconds,
  };
}
