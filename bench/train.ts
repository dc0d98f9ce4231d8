// Training throughput: MLP 784-1024-1024-10 (ReLU), cross-entropy, batch 256, random data,
// SGD (momentum 0.9) and AdamW, 1 and 2 threads: Joule beside PyTorch, measured in the same run.
// Each figure: median (min-max) samples/s over several samples of >= 0.5 s, after warm-up, taken
// in ROUNDS alternating Joule / PyTorch rounds (the host's speed drifts 10-20 % within minutes:
// back-to-back blocks gave 1.06x and 1.30x for the same code ten minutes apart).
// Usage: npx tsx bench/train.ts   (or npm run bench -- train)
// PyTorch: Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS
// (apt-get install -y python3-torch libopenblas0-openmp), as in ../shared/anchors.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as jl from '../lib/index';
import { machine, Stats, stats, table } from './common';

const BATCH = 256;
const REPS = Number(process.env.REPS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MIN_SECONDS = 0.5;
const OPTIMIZERS = ['sgd', 'adamw'] as const;
type OptName = (typeof OPTIMIZERS)[number];
const PYTHON = '/usr/bin/python3';
const OPENBLAS_OMP = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

function jouleSamplesPerSec(optName: OptName): number[] {
  jl.manualSeed(0);
  const model = new jl.nn.Sequential(
    new jl.nn.Linear(784, 1024), new jl.nn.ReLU(), new jl.nn.Linear(1024, 1024), new jl.nn.ReLU(), new jl.nn.Linear(1024, 10));
  const opt = optName === 'sgd'
    ? new jl.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 })
    : new jl.optim.AdamW(model.parameters(), { lr: 1e-3 });
  const xs = Array.from({ length: 4 }, () => jl.randn([BATCH, 784]));
  const ys = Array.from({ length: 4 }, () => jl.randint(0, 10, [BATCH]));
  let i = 0;
  const step = () => jl.tidy(() => {
    const k = i++ % 4;
    const loss = jl.nn.functional.crossEntropy(model.forward(xs[k]) as jl.Tensor, ys[k]);
    opt.zeroGrad();
    loss.backward();
    opt.step();
  });
  for (let w = 0; w < 3; w++) step();
  let t0 = performance.now();
  step();
  const inner = Math.max(1, Math.floor((MIN_SECONDS * 1000) / Math.max(performance.now() - t0, 1e-3)));
  const out: number[] = [];
  for (let r = 0; r < REPS; r++) {
    t0 = performance.now();
    for (let k = 0; k < inner; k++) step();
    out.push((BATCH * inner) / ((performance.now() - t0) / 1000));
  }
  jl.dispose([...xs, ...ys]);
  model.dispose();
  opt.dispose();
  return out;
}

function torchSamplesPerSec(threads: number): { results: Record<OptName, number[]>; version: string } | { error: string } {
  if (!fs.existsSync(PYTHON)) return { error: `${PYTHON} not found` };
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads) };
  if (fs.existsSync(OPENBLAS_OMP)) env.LD_LIBRARY_PATH = OPENBLAS_OMP;
  const script = path.join(__dirname, 'torch_train.py');
  const r = spawnSync(PYTHON, [script, '--threads', String(threads), '--reps', String(REPS), '--min-time', String(MIN_SECONDS)], { encoding: 'utf8', env, timeout: 600_000 });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() ?? 'failed' };
  try {
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    return { results: j.results, version: j.torch };
  } catch {
    return { error: `unparseable output: ${r.stdout.slice(0, 200)}` };
  }
}

const cell = (s: Stats) => `${Math.round(s.median)} (${Math.round(s.min)}-${Math.round(s.max)})`;

export async function run(): Promise<void> {
  console.log(`# train: MLP 784-1024-1024-10, batch ${BATCH}, random data — samples/s, median (min-max) of ${ROUNDS} x ${REPS}`);
  console.log(`machine: ${machine()}; Joule isa ${jl.getIsa()}`);
  const rows: (string | number)[][] = [];
  let torchNote = '';
  const initialThreads = jl.getNumThreads();
  for (const threads of [1, 2]) {
    jl.setNumThreads(threads);
    const jouleRuns: Record<string, number[]> = { sgd: [], adamw: [] };
    const torchRuns: Record<string, number[]> = { sgd: [], adamw: [] };
    let torchError = '';
    for (let round = 0; round < ROUNDS; round++) {
      for (const o of OPTIMIZERS) jouleRuns[o].push(...jouleSamplesPerSec(o));
      if (torchError) continue;
      const torch = torchSamplesPerSec(threads);
      if ('error' in torch) {
        torchError = torch.error;
        torchNote = `PyTorch unavailable: ${torch.error} (install: apt-get install -y python3-torch libopenblas0-openmp)`;
      } else {
        torchNote = `PyTorch ${torch.version} (Debian, OpenBLAS OpenMP), OMP_NUM_THREADS=t; ${ROUNDS} alternating rounds of ${REPS} samples`;
        for (const o of OPTIMIZERS) torchRuns[o].push(...torch.results[o]);
      }
    }
    for (const o of OPTIMIZERS) {
      const j = stats(jouleRuns[o]);
      if (torchError) {
        rows.push([String(threads), o === 'sgd' ? 'SGD m=0.9' : 'AdamW', cell(j), 'n/a', 'n/a']);
      } else {
        const t = stats(torchRuns[o]);
        rows.push([String(threads), o === 'sgd' ? 'SGD m=0.9' : 'AdamW', cell(j), cell(t), (j.median / t.median).toFixed(2)]);
      }
    }
  }
  jl.setNumThreads(initialThreads);
  console.log(table(['threads', 'optimizer', 'Joule samples/s', 'PyTorch samples/s', 'Joule/PyTorch'], rows));
  console.log(torchNote);
}

if (require.main === module) {
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
