// Joule's Gloo all-reduce (2 ranks, 1 thread each, via joule launch) beside PyTorch's Gloo
// (torch.distributed) in one run: fp32 sum of 4 KB, 1 MB, 16 MB and 64 MB; latency per call,
// algorithm bandwidth (bytes / time) and bus bandwidth (algbw * 2(n-1)/n). Same method on both
// sides: 3 warm-up calls, then 5 samples of `iters` calls each (iters = 256 MB / size, 3..200),
// each sample started after a barrier; medians. ALLREDUCE_SIZES=bytes,bytes,... measures other sizes.
import { spawnSync } from 'child_process';
import * as net from 'net';
import * as path from 'path';
import { machine, table } from './common';

// ---- shared with bench/ddp.ts: a 2-rank job through `joule launch` (1 thread per rank), and
// PyTorch's counterpart (bench/torch_dist.py under Debian's /usr/bin/python3 with python3-torch).

const ROOT = path.join(__dirname, '..');

export function launchWorker(file: string, env: Record<string, string> = {}): unknown {
  const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'lib/cli/main.ts'), 'launch', '-n', '2', file], {
    cwd: ROOT, encoding: 'utf8', timeout: 900_000,
    env: { ...process.env, JOULE_NUM_THREADS: '1', JOULE_BENCH_WORKER: '1', ...env },
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('[rank 0] RESULT '));
  if (r.status !== 0 || !line) throw new Error(`joule launch failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice('[rank 0] RESULT '.length));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function torchDist(args: string[]): Promise<{ torch: string; result: Record<string, number> } | { error: string }> {
  const port = await freePort();
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_dist.py'), '--port', String(port), ...args], {
    encoding: 'utf8', timeout: 900_000,
    env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp' },
  });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || 'failed').trim().split('\n').pop();
    return { error: `PyTorch unavailable (${why}); install: apt-get install -y python3-torch libopenblas0-openmp` };
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const SIZES = (process.env.ALLREDUCE_SIZES ?? `${4096},${1 << 20},${16 << 20},${64 << 20}`).split(",").map(Number);
const REPS = 5;
export type TorchResult = Awaited<ReturnType<typeof torchDist>>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function worker(): Promise<void> {
  const jl = await import('../lib');
  jl.dist.init({ backend: 'gloo', timeoutMs: 120000 });
  const out: Record<string, number> = {};
  for (const nbytes of SIZES) {
    const buf = jl.ones([nbytes / 4]);
    const iters = Math.max(3, Math.min(200, Math.floor(256e6 / nbytes)));
    for (let i = 0; i < 3; i++) jl.dist.allReduce(buf);
    const samples: number[] = [];
    for (let r = 0; r < REPS; r++) {
      jl.dist.barrier();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < iters; i++) jl.dist.allReduce(buf);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e9 / iters);
    }
    const chk = jl.ones([nbytes / 4]);
    jl.dist.allReduce(chk);
    if (chk.data()[nbytes / 4 - 1] !== 2) throw new Error('wrong all-reduce result');
    out[String(nbytes)] = median(samples);
    buf.dispose();
    chk.dispose();
  }
  if (jl.dist.rank() === 0) console.log('RESULT ' + JSON.stringify(out));
  jl.dist.destroy();
}

export async function run(): Promise<void> {
  // ROUNDS alternating runs of each side (default 2), the best median of each kept: this machine
  // may be shared, and load hits whichever side runs at the time.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  let joule: Record<string, number> = {};
  let torch = { error: 'not run' } as TorchResult;
  const best = (a: Record<string, number>, b: Record<string, number>) => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? Math.min(out[k], v) : v;
    return out;
  };
  for (let r = 0; r < rounds; r++) {
    joule = best(joule, launchWorker(__filename) as Record<string, number>);
    const t = await torchDist(['--what', 'allreduce', '--sizes', SIZES.join(','), '--reps', String(REPS)]);
    if ('result' in t) torch = 'result' in torch ? { torch: t.torch, result: best(torch.result, t.result) } : t;
    else if (!('result' in torch)) torch = t;
  }
  const rows = SIZES.map((n) => {
    const j = joule[String(n)];
    const t = 'result' in torch ? torch.result[String(n)] : NaN;
    const size = n >= 1 << 20 ? `${n >> 20} MB` : `${n >> 10} KB`;
    // 2 ranks: busbw = algbw * 2(n-1)/n = algbw.
    return [size, j * 1e3, n / j / 1e9, n / j / 1e9, t * 1e3, n / t / 1e9, n / t / 1e9, t / j];
  });
  console.log(`\n## Gloo all-reduce, fp32 sum, 2 ranks x 1 thread (${machine()})`);
  if ('error' in torch) console.log(torch.error);
  else console.log(`PyTorch ${torch.torch}`);
  console.log(table(['size', 'Joule ms', 'Joule algbw GB/s', 'Joule busbw GB/s', 'PyTorch ms', 'PyTorch algbw GB/s', 'PyTorch busbw GB/s', 'speed-up'], rows));
}

if (require.main === module && process.env.JOULE_BENCH_WORKER) {
  worker().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else if (require.main === module) {
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
