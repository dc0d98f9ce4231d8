// Data-parallel training, Joule's DistributedDataParallel beside PyTorch's, in one run: the MLP
// 784-1024-1024-10 (ReLU, cross entropy, SGD momentum 0.9), 2 ranks x 1 thread (joule launch /
// torch.multiprocessing), per-rank batch 128 and 256 (global 256 and 512).
//
// Both jobs run at once but take turns: each waits between samples until this driver tells its
// rank 0 to go (a FIFO per job), so that Joule's and PyTorch's samples alternate a second apart
// (in the order A B B A ...) instead of whole jobs minutes apart — the host's speed drifts by
// 10-30 % within minutes here. Same method on both sides: 3 warm-up steps, then DDP_SAMPLES
// samples (default 10) of DDP_STEPS steps (default 20), each between barriers; medians of the
// samples/s (counted globally) and of the ratios of neighbouring samples. DDP_NO_SYNC=1: both
// sides train inside noSync / no_sync (no gradient averaging), for the compute alone.
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { machine, table } from './common';
import { freePort } from './allreduce';

const BATCHES = [128, 256];
const SAMPLES = Number(process.env.DDP_SAMPLES ?? 10);
const STEPS = Number(process.env.DDP_STEPS ?? 20);
const ROOT = path.join(__dirname, '..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

// The turns: before each unit of work (a batch size's warm-up, then each sample) rank 0 reads one
// byte from the FIFO `go` (blocking until the driver writes it) and both ranks pass a barrier;
// afterwards rank 0 writes the unit's samples/s (0 for a warm-up) and a newline to the FIFO `done`.
// The driver holds both FIFOs open for reading and writing, so no open() ever waits.
// bench/torch_dist.py --pace does the same on PyTorch's side.
async function worker(): Promise<void> {
  const jl = await import('../lib');
  const { nn, optim, dist } = jl;
  const pace = process.env.DDP_PACE!;
  dist.init({ backend: 'gloo', timeoutMs: 300000 });
  const world = dist.worldSize();
  const lead = dist.rank() === 0;
  const go = lead ? fs.openSync(path.join(pace, 'go'), 'r') : -1;
  const done = lead ? fs.openSync(path.join(pace, 'done'), 'w') : -1;
  const turn = async (work: () => Promise<number>) => {
    if (lead) fs.readSync(go, Buffer.alloc(1));
    dist.barrier();
    const rate = await work();
    dist.barrier();
    if (lead) fs.writeSync(done, `${rate}\n`);
  };
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
      const forwardBackward = () => jl.tidy(() => nn.functional.crossEntropy(ddp.forward(x) as InstanceType<typeof jl.Tensor>, y).backward());
      if (process.env.DDP_NO_SYNC) {
        ddp.noSync(forwardBackward);
      } else {
        forwardBackward();
        await ddp.synchronize();
      }
      opt.step();
    };
    await turn(async () => {
      for (let i = 0; i < 3; i++) await step();
      return 0;
    });
    for (let r = 0; r < SAMPLES; r++) {
      await turn(async () => {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < STEPS; i++) await step();
        dist.barrier();
        return (perRank * world * STEPS) / (Number(process.hrtime.bigint() - t0) / 1e9);
      });
    }
    ddp.dispose();
    x.dispose();
    y.dispose();
  }
  dist.destroy();
}

/** A job that takes turns through the FIFOs in dir; its output is kept for the error message. */
class PacedJob {
  readonly exited: Promise<number | null>;
  private log = '';
  private readonly go: number;
  private readonly done: net.Socket;
  private answers: string[] = [];
  private pending = '';
  private wake: (() => void) | null = null;

  constructor(readonly name: string, readonly dir: string, readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.log += d));
    child.stderr?.on('data', (d: Buffer) => (this.log += d));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    // O_RDWR: opening never waits for the other side (Linux), and reads come through the event loop.
    const rdwr = fs.constants.O_RDWR | fs.constants.O_NONBLOCK;
    this.go = fs.openSync(path.join(dir, 'go'), rdwr);
    this.done = new net.Socket({ fd: fs.openSync(path.join(dir, 'done'), rdwr), readable: true, writable: false });
    this.done.on('data', (d: Buffer) => {
      this.pending += d;
      let k;
      while ((k = this.pending.indexOf('\n')) >= 0) {
        this.answers.push(this.pending.slice(0, k));
        this.pending = this.pending.slice(k + 1);
      }
      this.wake?.();
    });
  }

  /** Lets the job run its next unit; resolves to what it reports. */
  async turn(): Promise<number> {
    fs.writeSync(this.go, 'g');
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        if (this.answers.length) return resolve();
        this.wake = resolve;
        void this.exited.then((code) => reject(new Error(`${this.name} exited (${code}) before its turn was over:\n${this.log.slice(-3000)}`)));
        timer = setTimeout(() => reject(new Error(`${this.name}: no answer within 300 s:\n${this.log.slice(-3000)}`)), 300_000);
      });
    } finally {
      this.wake = null;
      clearTimeout(timer);
    }
    return Number(this.answers.shift());
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.done.destroy();
    fs.closeSync(this.go);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function fifoDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `joule-ddp-${name}-`));
  for (const f of ['go', 'done']) execFileSync('mkfifo', [path.join(dir, f)]);
  return dir;
}

function torchAvailable(): string {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, torch.distributed'], { encoding: 'utf8' });
  return r.status === 0 ? '' : `PyTorch unavailable (${(r.stderr || r.error?.message || 'failed').trim().split('\n').pop()}); install: apt-get install -y python3-torch libopenblas0-openmp`;
}

export async function run(): Promise<void> {
  const torchMissing = torchAvailable();
  const jouleDir = fifoDir('joule');
  const joule = new PacedJob('joule launch', jouleDir, spawn(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'lib/cli/main.ts'), 'launch', '-n', '2', __filename], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, JOULE_NUM_THREADS: '1', JOULE_BENCH_WORKER: '1', DDP_PACE: jouleDir },
  }));
  const jobs = [joule];
  let torchVersion = '';
  if (!torchMissing) {
    const torchDir = fifoDir('torch');
    torchVersion = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
    jobs.push(new PacedJob('PyTorch', torchDir, spawn('/usr/bin/python3', [path.join(__dirname, 'torch_dist.py'), '--what', 'ddp', '--port', String(await freePort()),
      '--batches', BATCHES.join(','), '--reps', String(SAMPLES), '--steps', String(STEPS), '--pace', torchDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp' },
    })));
  }
  const rows: (string | number)[][] = [];
  try {
    let unit = 0;
    for (const perRank of BATCHES) {
      const rates: number[][] = jobs.map(() => []);
      for (let r = -1; r < SAMPLES; r++, unit++) {
        // A B, then B A: neither side always goes first.
        const order = unit % 2 === 0 ? jobs.map((_, i) => i) : jobs.map((_, i) => jobs.length - 1 - i);
        for (const i of order) {
          const rate = await jobs[i].turn();
          if (r >= 0) rates[i].push(rate);
        }
      }
      const j = median(rates[0]);
      if (jobs.length > 1) {
        const ratios = rates[0].map((v, k) => v / rates[1][k]);
        rows.push([perRank * 2, j, median(rates[1]), (j / median(rates[1])).toFixed(2), `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`]);
      } else {
        rows.push([perRank * 2, j, NaN, '-', '-']);
      }
    }
    await Promise.all(jobs.map((job) => job.exited));
  } finally {
    for (const job of jobs) job.close();
  }
  console.log(`\n## DDP training, MLP 784-1024-1024-10, SGD momentum, 2 ranks x 1 thread (${machine()})`);
  console.log(`${torchMissing || `PyTorch ${torchVersion}`}; both jobs at once, taking turns: ${SAMPLES} samples of ${STEPS} steps each, alternating sample by sample` +
    (process.env.DDP_NO_SYNC ? '; DDP_NO_SYNC: no gradient averaging (compute only)' : ''));
  console.log(table(['global batch', 'Joule samples/s', 'PyTorch samples/s', 'speed-up (medians)', 'speed-up per pair of samples: median (range)'], rows));
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
