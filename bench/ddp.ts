// Data-parallel training, Joule's DistributedDataParallel beside PyTorch's, in one run: the MLP
// 784-1024-1024-10 (ReLU, cross entropy, SGD momentum 0.9), 2 ranks x 1 thread (joule launch /
// torch.multiprocessing), per-rank batch 128 and 256 (global 256 and 512). Same method on both
// sides: 3 warm-up steps, then 5 samples of 20 steps each between barriers; median samples/s
// counted globally.
import { machine, table } from './common';
import { launchWorker, torchDist, TorchResult } from './allreduce';

const BATCHES = [128, 256];
const REPS = 5;
const STEPS = Number(process.env.DDP_STEPS ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function worker(): Promise<void> {
  const jl = await import('../lib');
  const { nn, optim, dist } = jl;
  dist.init({ backend: 'gloo', timeoutMs: 120000 });
  const world = dist.worldSize();
  const out: Record<string, number> = {};
  for (const perRank of BATCHES) {
    jl.manualSeed(0);
    const model = new nn.Sequential(new nn.Linear(784, 1024), new nn.ReLU(), new nn.Linear(1024, 1024), new nn.ReLU(), new nn.Linear(1024, 10));
    const ddp = new dist.DistributedDataParallel(model);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    jl.manualSeed(1 + dist.rank());
    const x = jl.randn([perRank, 784]).keep();
    const y = jl.randint(0, 10, [perRank]).keep();
    const step = async () => {
      opt.zeroGrad();
      jl.tidy(() => nn.functional.crossEntropy(ddp.forward(x) as InstanceType<typeof jl.Tensor>, y).backward());
      await ddp.synchronize();
      opt.step();
    };
    for (let i = 0; i < 3; i++) await step();
    const samples: number[] = [];
    for (let r = 0; r < REPS; r++) {
      dist.barrier();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < STEPS; i++) await step();
      dist.barrier();
      samples.push((perRank * world * STEPS) / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    out[String(perRank)] = median(samples);
    ddp.dispose();
  }
  if (dist.rank() === 0) console.log('RESULT ' + JSON.stringify(out));
  dist.destroy();
}

export async function run(): Promise<void> {
  // BENCH_ROUNDS alternating runs of each side (default 2), the best of each kept: this machine
  // may be shared, and load hits whichever side runs at the time.
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const best = (a: Record<string, number>, b: Record<string, number>) => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = k in out ? Math.max(out[k], v) : v;
    return out;
  };
  let joule: Record<string, number> = {};
  let torch = { error: 'not run' } as TorchResult;
  for (let r = 0; r < rounds; r++) {
    joule = best(joule, launchWorker(__filename) as Record<string, number>);
    const t = await torchDist(['--what', 'ddp', '--batches', BATCHES.join(','), '--reps', String(REPS), '--steps', String(STEPS)]);
    if ('result' in t) torch = 'result' in torch ? { torch: t.torch, result: best(torch.result, t.result) } : t;
    else if (!('result' in torch)) torch = t;
  }
  console.log(`\n## DDP training, MLP 784-1024-1024-10, SGD momentum, 2 ranks x 1 thread (${machine()})`);
  if ('error' in torch) console.log(torch.error);
  else console.log(`PyTorch ${torch.torch}`);
  console.log(table(['global batch', 'Joule samples/s', 'PyTorch samples/s', 'speed-up'],
    BATCHES.map((b) => {
      const j = joule[String(b)];
      const t = 'result' in torch ? torch.result[String(b)] : NaN;
      return [b * 2, j, t, j / t];
    })));
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
