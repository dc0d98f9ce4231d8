// fp32 GEMM: Joule beside numpy/OpenBLAS (its default kernel and its AVX2 "Haswell" kernel) and
// onnxruntime-node, all measured in this run, on 1 and 2 threads.
//   npm run bench -- gemm            (NODE_PEERS_DIR: where onnxruntime-node is installed,
//                                     default /tmp/nodepeers, see ../shared/anchors/setup_node_peers.sh)
//   GEMM_MAX=2048: skip larger shapes; GEMM_ROUNDS=9: more rounds per shape (default 7; 5 at 2048^3
//   and up, 3 at 4096^3)
//
// The sides take turns sample by sample: for each shape, each round times the FMA probe, then one
// sample (~0.2 s) of Joule, numpy default, numpy Haswell and onnxruntime in turn, with a pause
// between them for the other library's idle threads to stop spinning. numpy runs in two Python
// processes that stay up for the thread count and answer one sample per request. On this shared
// host the speed drifts by 10-40 % within seconds, so sides that each took ~2 s in turn (as the
// bench did until 2026-11-29) gave ratios that moved by +-20 % from run to run; the ratios here
// are medians of ratios within a round. "% of its round's probe" divides Joule's sample (all its
// calls) by the probe, which is the best of 7 runs; "best run / probe" divides the best of Joule's
// 7 runs by it (the median over the rounds), so that both sides are measured the same way.
import { spawn, type ChildProcessWithoutNullStreams } from 'child_process';
import { createRequire } from 'module';
import * as path from 'path';
import * as jl from '../lib/index';
import { native } from '../lib/native';
import { machine, table } from './common';

const SHAPES: [number, number, number][] = [
  [256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [4096, 4096, 4096],
  [256, 784, 1024], [256, 1024, 1024], [1, 1024, 1024],
];

// One numpy process per thread count and kernel: each line on stdin, [m, k, n, seconds], is
// answered with one sample, {"seconds": per call}, timed over as many calls as fill `seconds`.
const NUMPY_WORKER = (threads: number) => `
import json, sys, time, glob, os, ctypes, numpy as np
def set_threads(n):
    for p in glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'scipy_openblas*', 'lib', '*.so*')) + glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs', '*openblas*')):
        try:
            lib = ctypes.CDLL(p)
            for name in ('scipy_openblas_set_num_threads64_', 'openblas_set_num_threads64_', 'openblas_set_num_threads'):
                if hasattr(lib, name):
                    getattr(lib, name)(n); return name
        except OSError:
            pass
    return None
set_threads(${threads})
current = None
for line in sys.stdin:
    m, k, n, seconds = json.loads(line)
    if current is None or current[0] != (m, k, n):
        current = None
        a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32); c = np.empty((m, n), np.float32)
        np.matmul(a, b, out=c)
        t0 = time.perf_counter(); np.matmul(a, b, out=c); once = max(time.perf_counter() - t0, 1e-7)
        current = ((m, k, n), a, b, c, max(1, int(seconds / once)))
    _, a, b, c, inner = current
    t0 = time.perf_counter()
    for _ in range(inner): np.matmul(a, b, out=c)
    print(json.dumps({"seconds": (time.perf_counter() - t0) / inner}), flush=True)
`;

class NumpyWorker {
  private readonly proc: ChildProcessWithoutNullStreams;
  private pending = '';
  private readonly waiting: ((line: string | null) => void)[] = [];
  private stderr = '';
  private exited = false;

  constructor(threads: number, env: Record<string, string>) {
    this.proc = spawn('python3', ['-c', NUMPY_WORKER(threads)], { env: { ...env, OPENBLAS_NUM_THREADS: String(threads) } });
    this.proc.stdout.setEncoding('utf8');
    this.proc.stdout.on('data', (chunk: string) => {
      this.pending += chunk;
      let nl: number;
      while ((nl = this.pending.indexOf('\n')) >= 0) {
        const line = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
    this.proc.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.proc.on('error', (e) => (this.stderr += e.message));
    this.proc.on('close', () => {
      this.exited = true;
      for (const w of this.waiting.splice(0)) w(null);
    });
  }

  /** The reason the process stopped answering, if it did. */
  get error(): string {
    return this.exited ? this.stderr.trim().split('\n').pop() || 'python3 exited' : '';
  }

  /** Seconds per call of one sample of C = A B, or NaN when the process cannot answer. */
  async sample(m: number, k: number, n: number, seconds: number): Promise<number> {
    if (this.exited) return NaN;
    const line = new Promise<string | null>((resolve) => this.waiting.push(resolve));
    this.proc.stdin.write(JSON.stringify([m, k, n, seconds]) + '\n');
    const reply = await line;
    try {
      return reply === null ? NaN : (JSON.parse(reply) as { seconds: number }).seconds;
    } catch {
      return NaN;
    }
  }

  close(): void {
    this.proc.stdin.end();
  }
}

// A one-node ONNX MatMul model, protobuf written by hand (as ../shared/anchors/node_bench.js does).
function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const fVarint = (no: number, v: number) => [...varint((no << 3) | 0), ...varint(v)];
const fBytes = (no: number, bytes: number[]) => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
const fStr = (no: number, s: string) => fBytes(no, [...Buffer.from(s, 'utf8')]);
function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => fBytes(1, fVarint(1, d)));
  return [...fStr(1, name), ...fBytes(2, fBytes(1, [...fVarint(1, 1), ...fBytes(2, shape)]))];
}
function matmulModel(m: number, k: number, n: number): Uint8Array {
  const node = [...fStr(1, 'A'), ...fStr(1, 'B'), ...fStr(2, 'C'), ...fStr(3, 'mm'), ...fStr(4, 'MatMul')];
  const graph = [...fBytes(1, node), ...fStr(2, 'g'), ...fBytes(11, valueInfo('A', [m, k])), ...fBytes(11, valueInfo('B', [k, n])), ...fBytes(12, valueInfo('C', [m, n]))];
  return Uint8Array.from([...fVarint(1, 8), ...fStr(2, 'joule-bench'), ...fBytes(7, graph), ...fBytes(8, [...fStr(1, ''), ...fVarint(2, 13)])]);
}

interface Ort {
  InferenceSession: { create(model: Uint8Array, opts: object): Promise<{ run(feeds: object): Promise<unknown>; release(): Promise<void> }> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
}

function loadOrt(): Ort | null {
  try {
    const req = createRequire(path.join(process.env.NODE_PEERS_DIR || '/tmp/nodepeers', 'package.json'));
    return req('onnxruntime-node') as Ort;
  } catch {
    return null;
  }
}

/** An onnxruntime session for one shape, timing one sample per call of `sample`. */
async function ortSampler(ort: Ort, threads: number, m: number, k: number, n: number) {
  const sess = await ort.InferenceSession.create(matmulModel(m, k, n), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', executionProviders: ['cpu'] });
  const A = new ort.Tensor('float32', Float32Array.from({ length: m * k }, () => Math.random() - 0.5), [m, k]);
  const B = new ort.Tensor('float32', Float32Array.from({ length: k * n }, () => Math.random() - 0.5), [k, n]);
  await sess.run({ A, B });
  let inner = 0;
  return {
    async sample(seconds: number): Promise<number> {
      if (inner === 0) {
        const t0 = performance.now();
        await sess.run({ A, B });
        inner = Math.max(1, Math.floor((1000 * seconds) / Math.max(performance.now() - t0, 1e-3)));
      }
      const t0 = performance.now();
      for (let i = 0; i < inner; i++) await sess.run({ A, B });
      return (performance.now() - t0) / 1000 / inner;
    },
    release: () => sess.release(),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint()) / 1e9;
const median = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const h = Math.floor(v.length / 2);
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
};
const SAMPLE_SECONDS = 0.2;
const RUNS = 7;
// After one library's sample its idle threads spin for a while (OpenBLAS ~0.1 s, onnxruntime's
// pool, Joule's spin-before-sleep) and would take the core from the next side's sample.
const PAUSE_MS = 150;

export async function run(): Promise<void> {
  const shapes = process.env.GEMM_MAX ? SHAPES.filter(([m, k, n]) => Math.max(m, k, n) <= Number(process.env.GEMM_MAX)) : SHAPES;
  const roundsFor = (m: number, k: number, n: number) =>
    process.env.GEMM_ROUNDS ? Number(process.env.GEMM_ROUNDS) : m * k * n >= 4096 ** 3 ? 3 : m * k * n >= 2048 ** 3 ? 5 : 7;
  console.log(`# bench gemm — ${new Date().toISOString()} — ${machine()} — ISA ${jl.getIsa()} — sides alternating sample by sample`);
  const ort = loadOrt();
  const env = { ...process.env } as Record<string, string>;
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  for (const threads of [1, 2]) {
    jl.setNumThreads(threads);
    const peak = jl.energy.cpuPeak(threads) / 1e9;
    const numpyDefault = new NumpyWorker(threads, env);
    const numpyHaswell = new NumpyWorker(threads, { ...env, OPENBLAS_CORETYPE: 'Haswell' });
    const rows: (string | number)[][] = [];
    let probes: number[] = [];
    for (const [m, k, n] of shapes) {
      const flops = 2 * m * n * k;
      const a = jl.randn([m, k]);
      const b = jl.randn([k, n]);
      const c = jl.zeros([m, n]);
      jl.addmm_(c, a, b);
      let t0 = now();
      jl.addmm_(c, a, b);
      const once = Math.max(now() - t0, 1e-7);
      // Joule's sample is timed as RUNS runs of `perRun` calls (one run where a call takes most of
      // the sample), and the probe of its round as the best of 7 runs no longer than one of those:
      // "best run / probe" then compares the best of each measured the same way, side by side.
      const inner = Math.max(1, Math.floor(SAMPLE_SECONDS / once));
      const runs = Math.min(RUNS, inner);
      const perRun = Math.floor(inner / runs);
      const probeSeconds = Math.max(0.02, 2 * perRun * once);  // the probe's runs: 1/2 to 1 of a Joule run
      const ortSide = ort ? await ortSampler(ort, threads, m, k, n) : null;
      // Per round: the FMA probe (the best of 7 short runs), then one sample of each side.
      const r = { probe: [] as number[], joule: [] as number[], jouleRun: [] as number[], nd: [] as number[], nh: [] as number[], ort: [] as number[] };
      for (let round = 0; round < roundsFor(m, k, n); round++) {
        r.probe.push(native.cpuPeak(threads, probeSeconds) / 1e9);
        let total = 0;
        let fastest = Infinity;
        for (let run = 0; run < runs; run++) {
          t0 = now();
          for (let i = 0; i < perRun; i++) jl.addmm_(c, a, b);
          const dt = now() - t0;
          total += dt;
          fastest = Math.min(fastest, dt);
        }
        r.joule.push(flops / (total / (runs * perRun)) / 1e9);
        r.jouleRun.push(flops / (fastest / perRun) / 1e9);
        await sleep(PAUSE_MS);
        r.nd.push(flops / (await numpyDefault.sample(m, k, n, SAMPLE_SECONDS)) / 1e9);
        await sleep(PAUSE_MS);
        r.nh.push(flops / (await numpyHaswell.sample(m, k, n, SAMPLE_SECONDS)) / 1e9);
        await sleep(PAUSE_MS);
        r.ort.push(ortSide ? flops / (await ortSide.sample(SAMPLE_SECONDS)) / 1e9 : NaN);
        await sleep(PAUSE_MS);
      }
      await ortSide?.release();
      for (const t of [a, b, c]) t.dispose();
      probes = probes.concat(r.probe);
      const joule = median(r.joule);
      const vsNumpy = median(r.joule.map((j, i) => j / Math.max(r.nd[i] || 0, r.nh[i] || 0)));
      const vsOrt = median(r.joule.map((j, i) => j / r.ort[i]));
      const cell = (x: number) => (Number.isFinite(x) ? x : '-');
      const ratio = (x: number) => (Number.isFinite(x) ? x.toFixed(2) + 'x' : '-');
      rows.push([
        `${m}x${k}x${n}`, joule, `${((100 * joule) / peak).toFixed(0)}%`, `${(100 * median(r.joule.map((j, i) => j / r.probe[i]))).toFixed(0)}%`,
        `${(100 * median(r.jouleRun.map((j, i) => j / r.probe[i]))).toFixed(0)}%`,
        cell(median(r.nd)), cell(median(r.nh)), cell(median(r.ort)), ratio(vsNumpy), ratio(vsOrt), String(r.joule.length),
      ]);
    }
    numpyDefault.close();
    numpyHaswell.close();
    const npError = numpyDefault.error || numpyHaswell.error;
    console.log(`\n## ${threads} thread(s) — measured FMA peak ${peak.toFixed(0)} GFLOP/s` +
      (npError ? ` — numpy: ${npError}` : '') + (ort ? '' : ' — onnxruntime-node not installed (NODE_PEERS_DIR)'));
    console.log(`probe in the rounds: ${Math.min(...probes).toFixed(0)}-${Math.max(...probes).toFixed(0)} GFLOP/s`);
    console.log(table(['M x K x N', 'Joule GFLOP/s', '% peak', '% of its round\'s probe', 'best run / probe', 'numpy (default)', 'numpy (Haswell)', 'onnxruntime', 'Joule / best numpy', 'Joule / ort', 'rounds'], rows));
  }
}

if (require.main === module) void run();
