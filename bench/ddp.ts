// Data-parallel training, Joule's DistributedDataParallel beside PyTorch's, in one run: the MLP
// 784-1024-1024-10 (ReLU, cross entropy, SGD momentum 0.9), 2 ranks x 1 thread (joule launch /
// torch.multiprocessing), per-rank batch 128 and 256 (global 256 and 512). Same method on both
// sides: 3 warm-up steps, then 5 samples of 20 steps each between barriers; median samples/s
// counted globally.
import { machine, table } from './common';
import { launchWorker, torchDist } from './allreduce';

const BATCHES = [128, 256];
const REPS = 5;
const STEPS = Number(process.env.DDP_STEPS ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
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
  // BENCH_ROUNDS rounds (default 4), each a Joule launch then a PyTorch one: the host's speed
  // drifts 10-30 % within minutes, so each round gives a ratio of two runs minutes apart at most,
  // and the table shows the medians (the best of each side, as before, could pair Joule's fast
  // minute with PyTorch's slow one or the reverse).
  const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
  const jouleRuns: Record<string, number>[] = [];
  const torchRuns: Record<string, number>[] = [];
  let torchNote = '';
  for (let r = 0; r < rounds; r++) {
    jouleRuns.push(launchWorker(__filename) as Record<string, number>);
    const t = await torchDist(['--what', 'ddp', '--batches', BATCHES.join(','), '--reps', String(REPS), '--steps', String(STEPS)]);
    if ('result' in t) {
      torchRuns.push(t.result);
      torchNote = `PyTorch ${t.torch}`;
    } else {
      torchNote = t.error;
    }
  }
  const fmt = (xs: number[]) => xs.map((x) => (x >= 10 ? Math.round(x) : x.toFixed(2))).join(' / ');
  console.log(`\n## DDP training, MLP 784-1024-1024-10, SGD momentum, 2 ranks x 1 thread (${machine()})`);
  console.log(`${torchNote}; ${rounds} rounds (Joule, then PyTorch); medians, then every round`);
  console.log(table(['global batch', 'Joule samples/s', 'PyTorch samples/s', 'speed-up (median of rounds)', 'speed-up per round'],
    BATCHES.map((b) => {
      const k = String(b);
      const j = jouleRuns.map((x) => x[k]);
      const t = torchRuns.map((x) => x[k]);
      const ratios = t.length === j.length ? j.map((v, i) => v / t[i]) : [];
      return [b * 2, median(j), t.length ? median(t) : NaN, ratios.length ? median(ratios) : NaN, ratios.length ? fmt(ratios) : '-'];
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
