// Metering: FLOPs done, the device's peak, model-FLOP utilisation and energy.
//
// FLOPs are counted by the kernels themselves (a multiply-add is 2; GEMM 2MNK), so every path —
// fused layers, backward GEMMs, optimizer steps — is included. The CPU peak is measured once per
// machine and thread count with an FMA micro-benchmark and cached; GPU peaks come from a table.
// Energy comes from Linux RAPL powercap files (CPU package) or NVML (NVIDIA GPUs), when readable.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { native } from '../native';
import { buildInfo, getNumThreads } from '../runtime';

/** FLOPs done by the kernels since the process started. */
export function flopCount(): number {
  return native.flopCount();
}

function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'joule');
}

const measuredThisProcess = new Map<string, number>();

/**
 * The CPU's fp32 peak in FLOP/s for `threads` threads: independent FMA chains on the instruction
 * set the kernels use. Noise from other work on the machine (or the host of a virtual machine)
 * can only make a measurement low, so the cache per machine (CPU model, ISA, thread count) keeps
 * the highest value ever measured, and each process measures once more (about 0.5 s) and raises
 * it when it can.
 */
export function cpuPeak(threads = getNumThreads()): number {
  const info = buildInfo().cpu;
  const key = `${info.model}|${info.isa}|${threads}`.replace(/[^A-Za-z0-9|@.-]+/g, '_');
  const seen = measuredThisProcess.get(key);
  if (seen !== undefined) return seen;
  const file = path.join(cacheDir(), 'cpu-peak.json');
  let cache: Record<string, number> = {};
  try {
    cache = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, number>;
  } catch {
    cache = {};
  }
  const measured = native.cpuPeak(threads, 0.3);
  const best = Math.max(measured, typeof cache[key] === 'number' && cache[key] > 0 ? cache[key] : 0);
  measuredThisProcess.set(key, best);
  if (best > (cache[key] ?? 0)) {
    cache[key] = best;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(cache, null, 1));
      fs.renameSync(tmp, file);
    } catch {
      // A read-only home only costs a re-measurement next time.
    }
  }
  return best;
}

/** Dense peak FLOP/s of NVIDIA GPUs by name: [fp32, tf32 tensor core, bf16 tensor core]. */
const GPU_PEAKS: [RegExp, number, number, number][] = [
  [/H200|H100.*SXM|GH200/i, 67e12, 494.7e12, 989.4e12],
  [/H100/i, 51e12, 378e12, 756e12],
  [/A100/i, 19.5e12, 156e12, 312e12],
  [/L40S/i, 91.6e12, 183e12, 362e12],
  [/A10G?\b/i, 31.2e12, 62.5e12, 125e12],
  [/RTX 4090/i, 82.6e12, 82.6e12, 165e12],
  [/RTX 3090/i, 35.6e12, 35.6e12, 71e12],
];

export type Precision = 'fp32' | 'tf32' | 'bf16';

/** A GPU's peak FLOP/s for a precision, or null for a GPU not in the table. */
export function gpuPeak(name: string, precision: Precision = 'tf32'): number | null {
  for (const [re, fp32, tf32, bf16] of GPU_PEAKS) {
    if (re.test(name)) return precision === 'fp32' ? fp32 : precision === 'tf32' ? tf32 : bf16;
  }
  return null;
}

interface RaplZone {
  file: string;
  max: number;
}

function raplZones(): { zones: RaplZone[]; reason: string } {
  const root = '/sys/class/powercap';
  if (!fs.existsSync(root)) return { zones: [], reason: `no RAPL powercap interface (${root} does not exist on this machine)` };
  const zones: RaplZone[] = [];
  let unreadable = '';
  for (const name of fs.readdirSync(root)) {
    // Package-level zones only (intel-rapl:0, intel-rapl:1, ...); sub-zones would double count.
    if (!/^(intel|amd)-rapl:\d+$/.test(name)) continue;
    const file = path.join(root, name, 'energy_uj');
    try {
      fs.readFileSync(file, 'utf8');
      const max = Number(fs.readFileSync(path.join(root, name, 'max_energy_range_uj'), 'utf8'));
      zones.push({ file, max });
    } catch (e) {
      unreadable = `${file} is not readable (${(e as NodeJS.ErrnoException).code}; reading RAPL needs root on recent kernels)`;
    }
  }
  if (zones.length) return { zones, reason: '' };
  return { zones, reason: unreadable || `no RAPL package zone under ${root}` };
}

export interface EnergyReading {
  /** Joules spent between start() and stop(), or null when no meter is readable. */
  joules: number | null;
  /** Which meter measured ('rapl', 'nvml'), or why nothing was measured. */
  source: string;
}

/** Reads the energy counters at start() and stop(); handles RAPL counter wrap-around. */
export class EnergyMeter {
  private readonly device: string;
  private rapl: RaplZone[] = [];
  private startValues: number[] = [];
  private source = '';
  private reason = '';

  constructor(device = 'cpu') {
    this.device = device;
  }

  private read(): number[] | null {
    if (this.source === 'rapl') return this.rapl.map((z) => Number(fs.readFileSync(z.file, 'utf8')) / 1e6);
    if (this.source === 'nvml') {
      const e = native.gpuEnergy();
      return e.ok ? e.joules : null;
    }
    return null;
  }

  start(): this {
    if (this.device.startsWith('cuda')) {
      const e = native.gpuEnergy();
      if (e.ok) this.source = 'nvml';
      else this.reason = `NVML: ${e.error}`;
    } else {
      const { zones, reason } = raplZones();
      if (zones.length) {
        this.source = 'rapl';
        this.rapl = zones;
      } else {
        this.reason = reason;
      }
    }
    this.startValues = this.read() ?? [];
    return this;
  }

  stop(): EnergyReading {
    const end = this.read();
    if (!end || !this.source) return { joules: null, source: this.reason || 'no energy meter' };
    let total = 0;
    end.forEach((v, i) => {
      let d = v - this.startValues[i];
      if (this.source === 'rapl' && d < 0) d += this.rapl[i].max / 1e6;
      if (this.source === 'nvml') {
        const index = Number(this.device.split(':')[1] ?? 0);
        if (i !== index) return;
      }
      total += d;
    });
    return { joules: total, source: this.source === 'rapl' ? 'RAPL (CPU package)' : 'NVML' };
  }
}

export interface CostReport {
  seconds: number;
  flops: number;
  /** Achieved FLOP/s. */
  flopsPerSecond: number;
  /** Peak FLOP/s of the device the work ran on. */
  peakFlopsPerSecond: number | null;
  /** flopsPerSecond / peak, in [0, 1], or null without a known peak. */
  mfu: number | null;
  joules: number | null;
  /** What measured the energy, or why it was not measured. */
  energySource: string;
}

/** Measures the cost of a stretch of work: wall time, FLOPs, MFU and energy. */
export class CostMeter {
  private t0 = 0;
  private f0 = 0;
  private energy: EnergyMeter;
  private readonly device: string;

  constructor(device = 'cpu') {
    this.device = device;
    this.energy = new EnergyMeter(device);
  }

  start(): this {
    this.energy.start();
    this.f0 = flopCount();
    this.t0 = performance.now();
    return this;
  }

  stop(): CostReport {
    const seconds = (performance.now() - this.t0) / 1000;
    const flops = flopCount() - this.f0;
    const e = this.energy.stop();
    let peak: number | null;
    if (this.device.startsWith('cuda')) {
      const name = buildInfo().cuda.devices[Number(this.device.split(':')[1] ?? 0)] ?? '';
      peak = gpuPeak(name, 'tf32');
    } else {
      peak = cpuPeak();
    }
    const rate = seconds > 0 ? flops / seconds : 0;
    return {
      seconds,
      flops,
      flopsPerSecond: rate,
      peakFlopsPerSecond: peak,
      mfu: peak ? rate / peak : null,
      joules: e.joules,
      energySource: e.source,
    };
  }
}
