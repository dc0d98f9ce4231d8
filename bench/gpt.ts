// GPT training and generation throughput beside the same model in PyTorch, in one run:
// 4 layers, 4 heads, dim 128, context 128, batch 32, vocabulary 80 (Moby-Dick's characters),
// 2 threads. Training: tokens/s of full AdamW steps (forward, backward, clip, step).
// Generation: tokens/s for 128 tokens at batch 1, greedy, with the KV cache and without; and
// Joule's int8 (quant.quantize, dynamic activations) against its fp32, with the KV cache.
// PyTorch: Debian's /usr/bin/python3 with python3-torch and the OpenMP OpenBLAS (bench/torch_gpt.py).
import { spawnSync } from 'child_process';
import * as path from 'path';

import * as jl from '../lib/index';
import { machine, table } from './common';

const CFG = { vocabSize: 80, context: 128, layers: 4, heads: 4, dim: 128 };
const BATCH = 32;
const GEN_TOKENS = 128;
const THREADS = 2;
const REPS = Number(process.env.JOULE_BENCH_REPS ?? 3);
const MIN_SECONDS = Number(process.env.JOULE_BENCH_MIN_SECONDS ?? 1);

/** Median seconds per call of each fn, measured in interleaved rounds (so drift hits all alike). */
function secondsEach(fns: (() => void)[]): number[] {
  fns.forEach((fn) => fn());
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < REPS; r++) {
    fns.forEach((fn, i) => {
      let n = 0;
      const t0 = performance.now();
      do {
        fn();
        n++;
      } while (performance.now() - t0 < MIN_SECONDS * 1000);
      samples[i].push((performance.now() - t0) / 1000 / n);
    });
  }
  return samples.map((xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]);
}

const seconds = (fn: () => void): number => secondsEach([fn])[0];

export interface GptBenchResult {
  trainTokensPerSec: number;
  genCachedTokensPerSec: number;
  genNaiveTokensPerSec: number;
  /** Joule only: the same generation with the model quantized to int8 (W8A8), and its fp32 in the same rounds. */
  genInt8TokensPerSec?: number;
  genFp32TokensPerSec?: number;
}

export function measureJoule(): GptBenchResult {
  jl.setNumThreads(THREADS);
  jl.manualSeed(0);
  const model = jl.models.gpt(CFG);
  const opt = new jl.optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.1 });
  const x = jl.randint(0, CFG.vocabSize, [BATCH, CFG.context]).keep();
  const y = jl.randint(0, CFG.vocabSize, [BATCH, CFG.context]).keep();
  const trainS = seconds(() => jl.tidy(() => {
    const loss = model.loss(x, y);
    opt.zeroGrad();
    loss.backward();
    jl.optim.clipGradNorm(model.parameters(), 1);
    opt.step();
  }));
  model.eval();
  const cachedS = seconds(() => model.generate([1], { maxTokens: GEN_TOKENS, temperature: 0 }));
  const naiveS = seconds(() => model.generate([1], { maxTokens: GEN_TOKENS, temperature: 0, cache: false }));
  const int8 = jl.quant.quantize(model, { mode: 'dynamic' }) as unknown as jl.models.GPT;
  const [fp32S, int8S] = secondsEach([model, int8].map((m) => () => m.generate([1], { maxTokens: GEN_TOKENS, temperature: 0 })));
  x.dispose();
  y.dispose();
  int8.dispose();
  model.dispose();
  return {
    trainTokensPerSec: (BATCH * CFG.context) / trainS, genCachedTokensPerSec: GEN_TOKENS / cachedS, genNaiveTokensPerSec: GEN_TOKENS / naiveS,
    genInt8TokensPerSec: GEN_TOKENS / int8S, genFp32TokensPerSec: GEN_TOKENS / fp32S,
  };
}

function measureTorch(): (GptBenchResult & { torch: string }) | { error: string } {
  const env = { ...process.env, LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp', OMP_NUM_THREADS: String(THREADS) };
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_gpt.py'), '--threads', String(THREADS), '--reps', String(REPS),
    '--min-time', String(MIN_SECONDS), '--gen-tokens', String(GEN_TOKENS)], { encoding: 'utf8', env, timeout: 900_000 });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() ?? 'failed' };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { error: `unparseable output: ${r.stdout.slice(0, 200)}` };
  }
}

export async function run(): Promise<void> {
  console.log(`\n## GPT (${CFG.layers} layers, ${CFG.heads} heads, dim ${CFG.dim}, context ${CFG.context}, batch ${BATCH}, ${THREADS} threads)`);
  console.log(`machine: ${machine()}`);
  const j = measureJoule();
  const t = measureTorch();
  const rows: (string | number)[][] = [];
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : 'n/a');
  const tv = 'error' in t ? undefined : t;
  rows.push(['training tokens/s', j.trainTokensPerSec, tv?.trainTokensPerSec ?? 'n/a', ratio(j.trainTokensPerSec, tv?.trainTokensPerSec), '>= 1.2x']);
  rows.push(['generation tokens/s, KV cache vs torch naive loop', j.genCachedTokensPerSec, tv?.genNaiveTokensPerSec ?? 'n/a', ratio(j.genCachedTokensPerSec, tv?.genNaiveTokensPerSec), '>= 2x']);
  rows.push(['generation tokens/s, KV cache vs torch KV cache', j.genCachedTokensPerSec, tv?.genCachedTokensPerSec ?? 'n/a', ratio(j.genCachedTokensPerSec, tv?.genCachedTokensPerSec), '>= 1.0x']);
  rows.push(['generation tokens/s, no cache (both naive)', j.genNaiveTokensPerSec, tv?.genNaiveTokensPerSec ?? 'n/a', ratio(j.genNaiveTokensPerSec, tv?.genNaiveTokensPerSec), '']);
  console.log(table(['measure', 'joule', 'pytorch', 'ratio', 'target'], rows));
  console.log(`\nJoule int8 (W8A8, dynamic activation scales) against fp32, generation with the KV cache, interleaved rounds:`);
  console.log(table(['model', 'tokens/s', 'vs fp32', 'target'], [
    ['fp32', j.genFp32TokensPerSec!, '1.00x', ''],
    ['int8', j.genInt8TokensPerSec!, ratio(j.genInt8TokensPerSec!, j.genFp32TokensPerSec), '>= 1.5x'],
  ]));
  if ('error' in t) console.log(`PyTorch unavailable: ${t.error} (install: apt-get install -y python3-torch libopenblas0-openmp)`);
  else console.log(`pytorch ${t.torch}; load after: ${machine().split('load ')[1]}`);
}

if (require.main === module) run().catch((e) => {
  console.error(e);
  process.exit(1);
});
