// Timing helpers shared by the benchmarks: every figure is the median of several samples, each
// long enough (>= minSeconds) to be measured well, after one warm-up call.
import { spawnSync } from 'child_process';
import * as os from 'os';

export interface Stats {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], runs: s.length };
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

/** Seconds per call of fn: `reps` samples, each repeating fn for at least minSeconds. */
export function timeit(fn: () => void, reps = 7, minSeconds = 0.25): Stats {
  fn();
  let t0 = now();
  fn();
  const once = Math.max(now() - t0, 1e-7);
  const inner = Math.max(1, Math.floor(minSeconds / once));
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    t0 = now();
    for (let i = 0; i < inner; i++) fn();
    samples.push((now() - t0) / inner);
  }
  return stats(samples);
}

/** Runs a Python snippet that prints one JSON object; null (with the reason) when it cannot run. */
export function runPython(code: string, env: Record<string, string> = {}, python = 'python3'): { result: unknown; error?: string } {
  const r = spawnSync(python, ['-c', code], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  if (r.status !== 0) return { result: null, error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() };
  try {
    return { result: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') };
  } catch {
    return { result: null, error: `unparseable output: ${r.stdout.slice(0, 200)}` };
  }
}

export function machine(): string {
  return `${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, load ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)));
  const line = (r: (string | number)[]) => '| ' + r.map((c, i) => String(c).padEnd(widths[i])).join(' | ') + ' |';
  return [line(cells[0]), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.slice(1).map(line)].join('\n');
}

export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
