// Joule's Gloo all-reduce (2 ranks, 1 thread each, via joule launch) beside PyTorch's Gloo
// (torch.distributed) in one run: fp32 sum of 4 KB, 1 MB, 16 MB and 64 MB; latency per call,
// algorithm bandwidth (bytes / time) and bus bandwidth (algbw * 2(n-1)/n). Same method on both
// sides: 3 warm-up calls, then 5 samples of `iters` calls each (iters = 256 MB / size, 3..200),
// each sample started after a barrier; medians.
import { machine, table } from './common';
import { launchWorker, torchDist } from './dist_common';

const SIZES = [4096, 1 << 20, 16 << 20, 64 << 20];
const REPS = 5;

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
  const joule = launchWorker(__filename) as Record<string, number>;
  const torch = await torchDist(['--what', 'allreduce', '--sizes', SIZES.join(','), '--reps', String(REPS)]);
  const rows = SIZES.map((n) => {
    const j = joule[String(n)];
    const t = 'result' in torch ? torch.result[String(n)] : NaN;
    const size = n >= 1 << 20 ? `${n >> 20} MB` : `${n >> 10} KB`;
    return [size, j * 1e3, n / j / 1e9, n / j / 1e9, t * 1e3, n / t / 1e9, n / t / 1e9, t / j];
  });
  console.log(`\n## Gloo all-reduce, fp32 sum, 2 ranks x 1 thread (${machine()})`);
  if ('error' in torch) console.log(torch.error);
  else console.log(`PyTorch ${torch.torch}`);
  console.log(table(['size', 'Joule ms', 'Joule algbw GB/s', 'Joule busbw GB/s', 'PyTorch ms', 'PyTorch algbw GB/s', 'PyTorch busbw GB/s', 'speed-up'],
    rows));
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
