// `joule info`: what this installation can do and why not, where it cannot.
import * as fs from 'fs';
import * as path from 'path';
import { native, packageRoot } from '../native';
import { buildInfo, getNumThreads } from '../runtime';
import { probeLibrary } from '../vendor';

export interface InfoReport {
  joule: string;
  node: string;
  platform: string;
  addon: { buildSystem: string; cudaCompiled: boolean; cudaArchitectures: string; cudaRuntime: string };
  cpu: { model: string; features: Record<string, boolean>; isa: string; threads: number };
  cuda: { available: boolean; devices: string[]; reason: string };
  backends: Record<string, { available: boolean; detail: string }>;
}

export function collectInfo(): InfoReport {
  const b = buildInfo();
  const { model, isa, ...features } = b.cpu;
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  const rt = b.cuda.runtimeVersion;
  return {
    joule: pkg.version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    addon: {
      buildSystem: b.buildSystem,
      cudaCompiled: b.cuda.compiled,
      cudaArchitectures: b.cuda.architectures,
      cudaRuntime: rt ? `${Math.floor(rt / 1000)}.${(rt % 1000) / 10}` : '',
    },
    cpu: { model, features, isa, threads: getNumThreads() },
    cuda: { available: b.cuda.deviceCount > 0, devices: b.cuda.devices, reason: b.cuda.reason },
    backends: {
      nccl: probeLibrary('nccl'),
      gloo: native.distInfo().glooCompiled
        ? { available: true, detail: 'compiled in (CPU collectives over TCP; shared memory between local ranks)' }
        : { available: false, detail: 'not compiled in: apt-get install libgloo-dev, then npm run build:native' },
      nvml: probeLibrary('nvml'),
    },
  };
}

export function printInfo(json: boolean): void {
  const r = collectInfo();
  if (json) {
    console.log(JSON.stringify(r, null, 2));
    return;
  }
  const yes = (v: boolean) => (v ? 'yes' : 'no');
  const lines = [
    `Joule ${r.joule} on Node ${r.node} (${r.platform})`,
    `addon       built with ${r.addon.buildSystem}; CUDA compiled in: ${yes(r.addon.cudaCompiled)}` +
      (r.addon.cudaCompiled ? ` (architectures ${r.addon.cudaArchitectures}, runtime ${r.addon.cudaRuntime})` : ''),
    `cpu         ${r.cpu.model || 'unknown model'}`,
    `features    ${Object.entries(r.cpu.features).map(([k, v]) => `${k}:${yes(v)}`).join('  ')}`,
    `kernels     ${r.cpu.isa} instruction set, ${r.cpu.threads} thread(s) (JOULE_NUM_THREADS, JOULE_ISA)`,
    `cuda        ${r.cuda.available ? r.cuda.devices.map((d, i) => `cuda:${i} ${d}`).join(', ') : `unavailable: ${r.cuda.reason}`}`,
  ];
  for (const [name, b] of Object.entries(r.backends)) lines.push(`${name.padEnd(11)} ${b.available ? 'available' : 'unavailable'}: ${b.detail}`);
  console.log(lines.join('\n'));
}
