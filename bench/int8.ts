// int8 inference: Joule's int8 GEMM beside its own fp32 GEMM and beside PyTorch's int8 (onednn,
// quantized::linear_dynamic and static quantized::linear), measured in one run; a 4 x Linear(1024)
// + ReLU stack against torch's quantize_dynamic at batch 1 and 256; model size; the cost and error
// of the LLM.int8()-style outlier decomposition. Medians of several samples; ratios printed.
//   npx tsx bench/int8.ts            (JOULE_BENCH_QUICK=1: fewer samples)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as jl from '../lib/index';
import { native } from '../lib/native';
import { fmt, machine, table, timeit } from './common';

const SHAPES: [number, number, number][] = [[256, 1024, 1024], [1024, 1024, 1024], [2048, 2048, 2048], [1, 1024, 1024]]; // M, K, N
const PY = '/usr/bin/python3';
const OPENBLAS = '/usr/lib/x86_64-linux-gnu/openblas-openmp';

interface TorchResult {
  torch: string;
  engine: string;
  threads: number;
  gemm: { M: number; K: number; N: number; dynamic_gops: number; static_gops: number; fp32_gops: number }[];
  mlp: { batch: number; fp32_ms: number; int8_ms: number; max_rel_err: number }[];
}

// The same anchors recorded on this machine when it was idle (../shared/anchors/results_tables.md,
// onednn, 2 threads), printed beside the in-run figures because a loaded machine hurts torch's
// OpenMP threads far more than Joule's pool.
const RECORDED_2T: Record<string, { dynamic: number; static: number }> = {
  '256x1024x1024': { dynamic: 437, static: 704 },
  '1024x1024x1024': { dynamic: 567, static: 572 },
  '2048x2048x2048': { dynamic: 761, static: 794 },
};
const RECORDED_MLP_2T: Record<number, number> = { 1: 0.464, 256: 5.58 };

function runTorch(threads: number, gemmOnly = false): { result: TorchResult | null; error?: string } {
  if (!fs.existsSync(PY)) return { result: null, error: `${PY} not found` };
  const r = spawnSync(PY, [path.join(__dirname, 'torch_int8.py'), String(threads), JSON.stringify(SHAPES), gemmOnly ? 'gemm-only' : 'all'], {
    encoding: 'utf8',
    timeout: 900_000,
    env: { ...process.env, LD_LIBRARY_PATH: OPENBLAS, OMP_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) return { result: null, error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() };
  try {
    return { result: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as TorchResult };
  } catch {
    return { result: null, error: `unparseable output: ${r.stdout.slice(0, 200)}` };
  }
}

const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

function mlp(): jl.nn.Sequential {
  const layers: jl.nn.Module[] = [];
  for (let i = 0; i < 4; i++) {
    layers.push(new jl.nn.Linear(1024, 1024));
    if (i < 3) layers.push(new jl.nn.ReLU());
  }
  return new jl.nn.Sequential(...layers);
}

export async function run(): Promise<void> {
  const quick = process.env.JOULE_BENCH_QUICK === '1';
  const reps = quick ? 3 : 7;
  const threads = jl.getNumThreads();
  console.log(`\n## int8 (${machine()}, ${threads} threads, kernel ${jl.quant.kernelName()})`);
  const load0 = loadavg();
  const torch = runTorch(threads);
  const loadTorch = loadavg();
  if (!torch.result) console.log(`PyTorch anchor unavailable: ${torch.error}`);

  // ---- raw GEMM, at the pool's thread count and at 1 thread ----
  const gemmTable = (t: number, anchor: { result: TorchResult | null }, recorded: boolean) => {
    const rows: (string | number)[][] = [];
    const prevThreads = jl.getNumThreads();
    jl.setNumThreads(t);
    jl.manualSeed(0);
    for (const [m, k, n] of SHAPES) {
      jl.tidy(() => {
        const x = jl.randn([m, k]);
        const w = jl.randn([n, k]);
        const layer = jl.quant.QuantizedLinear.fromFloat(w, null);
        const { q: xq, scale: xs } = jl.quant.quantizeTensor(x, { perChannel: true, axis: 0 });
        const flop = 2 * m * n * k;
        const tDyn = timeit(() => native.dispose(native.quantLinear(x.handle, layer.packedWeight.handle,
          layer.colSums.handle, layer.weightScale.handle, null, 'none', 0, 0)), reps).median;
        const tInt = timeit(() => native.dispose(native.quantMatmulInt8(xq.handle, xs.handle, layer.packedWeight.handle,
          layer.colSums.handle, layer.weightScale.handle, null, 'none')), reps).median;
        const tFp = timeit(() => native.dispose(native.linear(x.handle, w.handle, null, 'none')), reps).median;
        const a = anchor.result?.gemm.find((g) => g.M === m && g.K === k && g.N === n);
        const rec = recorded ? RECORDED_2T[`${m}x${k}x${n}`] : undefined;
        const dyn = flop / tDyn / 1e9, int = flop / tInt / 1e9, fp = flop / tFp / 1e9;
        rows.push([`${m}x${k}x${n}`, dyn, int, fp, dyn / fp, a ? a.dynamic_gops : '-', a ? a.static_gops : '-', a ? dyn / a.dynamic_gops : '-',
          a ? int / a.static_gops : '-', rec ? `${rec.dynamic} / ${rec.static}` : '-', rec ? dyn / rec.dynamic : '-']);
        layer.dispose();
      });
    }
    jl.setNumThreads(prevThreads);
    console.log(`\nint8 GEMM, ${t} thread(s), GOP/s = 2MNK/s (dyn: fp32 in, activations quantized per row inside the GEMM; int8-in: pre-quantized A; both fp32 out)`);
    console.log(table(['M x K x N', 'Joule int8 dyn', 'Joule int8-in', 'Joule fp32', 'dyn/fp32', 'torch dyn', 'torch static', 'dyn vs torch dyn',
      'int8-in vs torch static', 'torch recorded idle dyn/static', 'dyn vs recorded'], rows));
  };
  gemmTable(threads, torch, threads === 2);
  if (threads !== 1) {
    const torch1 = runTorch(1, true);
    gemmTable(1, torch1, false);
  }

  // ---- 4 x Linear(1024) + ReLU ----
  const model = mlp();
  const qmodel = jl.quant.quantize(model);
  const mrows: (string | number)[][] = [];
  for (const batch of [1, 256]) {
    jl.tidy(() => {
      const x = jl.randn([batch, 1024]);
      const tf = timeit(() => jl.tidy(() => { model.forward(x); }), reps, 0.3).median * 1e3;
      const tq = timeit(() => jl.tidy(() => { qmodel.forward(x); }), reps, 0.3).median * 1e3;
      const yf = model.forward(x) as jl.Tensor;
      const yq = qmodel.forward(x) as jl.Tensor;
      const err = yf.sub(yq).abs().max().item() / yf.abs().max().item();
      const t = torch.result?.mlp.find((r) => r.batch === batch);
      const rec = threads === 2 ? RECORDED_MLP_2T[batch] : undefined;
      mrows.push([String(batch), tf, tq, tf / tq, t ? t.fp32_ms : '-', t ? t.int8_ms : '-', t ? t.int8_ms / tq : '-', rec ?? '-', rec ? rec / tq : '-', err, t ? t.max_rel_err : '-']);
    });
  }
  console.log('\n4 x Linear(1024 -> 1024) + ReLU, ms per forward (torch: quantize_dynamic, qint8)');
  console.log(table(['batch', 'Joule fp32', 'Joule int8', 'int8 speedup', 'torch fp32', 'torch int8', 'Joule vs torch int8', 'torch int8 recorded idle', 'Joule vs recorded', 'Joule max rel err', 'torch max rel err'], mrows));

  // ---- size ----
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-int8-bench-'));
  const qBytes = jl.quant.saveQuantized(qmodel, path.join(dir, 'q.safetensors'));
  jl.io.saveSafetensors(path.join(dir, 'f.safetensors'), model.stateDict());
  const fBytes = fs.statSync(path.join(dir, 'f.safetensors')).size;
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`\nmodel file (safetensors): fp32 ${(fBytes / 2 ** 20).toFixed(2)} MiB, int8 ${(qBytes / 2 ** 20).toFixed(2)} MiB, ratio ${fmt(fBytes / qBytes)}x`);

  // ---- outliers (LLM.int8()) ----
  const orows: (string | number)[][] = [];
  jl.tidy(() => {
    const k = 1024;
    const w = jl.randn([1024, k]).mul(0.03);
    const plain = jl.quant.QuantizedLinear.fromFloat(w, null);
    const mixed = jl.quant.QuantizedLinear.fromFloat(w, null, { outlierThreshold: 6 });
    for (const outliers of [0, 8, 32]) {
      const xd = jl.randn([256, k]).data() as Float32Array;
      for (let i = 0; i < 256; i++) for (let f = 0; f < outliers; f++) xd[i * k + ((f * 37) % k)] = 20 + 10 * Math.sin(i + f);
      const x = jl.tensor(xd, { shape: [256, k] });
      const exact = x.matmul(w.transpose(0, 1));
      const scaleOut = exact.abs().max().item();
      const err = (y: jl.Tensor) => exact.sub(y).abs().max().item() / scaleOut;
      // Interleaved rounds, so that a burst of load on the machine does not land on one variant only.
      const samples: number[][] = [[], [], []];
      for (let r = 0; r < 3; r++) {
        samples[0].push(timeit(() => jl.tidy(() => { plain.forward(x); }), reps, 0.1).median * 1e3);
        samples[1].push(timeit(() => jl.tidy(() => { mixed.forward(x); }), reps, 0.1).median * 1e3);
        samples[2].push(timeit(() => jl.tidy(() => { jl.nn.functional.linear(x, w); }), reps, 0.1).median * 1e3);
      }
      const [tp, tm, tf] = samples.map((v) => v.sort((a, b) => a - b)[1]);
      orows.push([String(outliers), tf, tp, tm, tm / tp, err(plain.forward(x)), err(mixed.forward(x))]);
    }
    plain.dispose();
    mixed.dispose();
  });
  console.log('\nLLM.int8()-style outlier decomposition, Linear 1024 -> 1024 at batch 256 (threshold 6; outlier features have |x| ~ 10..30)');
  console.log(table(['outlier features', 'fp32 ms', 'int8 ms', 'int8+outliers ms', 'cost vs int8', 'int8 max rel err', 'int8+outliers max rel err'], orows));
  model.dispose();
  qmodel.dispose();
  console.log(`\nloadavg: ${load0} at start, ${loadTorch} after torch, ${loadavg()} at end`);
}

if (require.main === module) {
  run().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
