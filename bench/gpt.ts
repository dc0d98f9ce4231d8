// GPT training and generation throughput beside the same model in PyTorch, in one run:
// 4 layers, 4 heads, dim 128, context 128, batch 32, vocabulary 80 (Moby-Dick's characters),
// 2 threads. Training: tokens/s of full AdamW steps (forward, backward, clip, step), Joule and
// PyTorch measured in alternating rounds (the host's speed drifts by 10-20 % within minutes, so
// back-to-back blocks gave ratios from 0.86 to 1.27 for the same code); the medians are compared.
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
  genCachedTokensPerSec: number;
  genNaiveTokensPerSec: number;
  /** Joule only: the same generation with the model quantized to int8 (W8A8), and its fp32 in the same rounds. */
  genInt8TokensPerSec?: number;
  genFp32TokensPerSec?: number;
}

const ROUNDS = Number(process.env.JOULE_BENCH_ROUNDS ?? 5);
const TORCH_ENV = { ...process.env, LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp', OMP_NUM_THREADS: String(THREADS) };
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function runTorch(only: 'train' | 'gen', reps: number): Record<string, number | string> | { error: string } {
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_gpt.py'), '--threads', String(THREADS), '--reps', String(reps),
    '--min-time', String(MIN_SECONDS), '--gen-tokens', String(GEN_TOKENS), '--only', only], { encoding: 'utf8', env: TORCH_ENV, timeout: 900_000 });
  if (r.status !== 0) return { error: (r.stderr || r.error?.message || 'failed').trim().split('\n').pop() ?? 'failed' };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    return { error: `unparseable output: ${r.stdout.slice(0, 200)}` };
  }
}

interface TrainRounds {
  joule: number[];
  torch: number[];
  torchVersion?: string;
  error?: string;
}

/** Training tokens/s, Joule and PyTorch in alternating rounds (one PyTorch process per round). */
function measureTraining(): TrainRounds {
  jl.setNumThreads(THREADS);
  jl.manualSeed(0);
  const model = jl.models.gpt(CFG);
  const opt = new jl.optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.1 });
  const x = jl.randint(0, CFG.vocabSize, [BATCH, CFG.context]).keep();
  const y = jl.randint(0, CFG.vocabSize, [BATCH, CFG.context]).keep();
  const step = () => jl.tidy(() => {
    const loss = model.loss(x, y);
    opt.zeroGrad();
    loss.backward();
    jl.optim.clipGradNorm(model.parameters(), 1);
    opt.step();
  });
  const out: TrainRounds = { joule: [], torch: [] };
  step();
  for (let r = 0; r < ROUNDS; r++) {
    out.joule.push((BATCH * CFG.context) / seconds(step));
    if (out.error) continue;
    const t = runTorch('train', 1);
    if ('error' in t) out.error = String(t.error);
    else {
      out.torch.push(t.trainTokensPerSec as number);
      out.torchVersion = String(t.torch);
    }
  }
  x.dispose();
  y.dispose();
  opt.dispose?.();
  model.dispose();
  return out;
}

export function measureJouleGeneration(): GptBenchResult {
  jl.setNumThreads(THREADS);
  jl.manualSeed(0);
  const model = jl.models.gpt(CFG);
  model.eval();
  const cachedS = seconds(() => model.generate([1], { maxTokens: GEN_TOKENS, temperature: 0 }));
  const naiveS = seconds(() => model.generate([1], { maxTokens: GEN_TOKENS, temperature: 0, cache: false }));
  const int8 = jl.quant.quantize(model, { mode: 'dynamic' }) as unknown as jl.models.GPT;
  const [fp32S, int8S] = secondsEach([model, int8].map((m) => () => m.generate([1], { maxTokens: GEN_TOKENS, temperature: 0 })));
  int8.dispose();
  model.dispose();
  return {
    genCachedTokensPerSec: GEN_TOKENS / cachedS, genNaiveTokensPerSec: GEN_TOKENS / naiveS,
    genInt8TokensPerSec: GEN_TOKENS / int8S, genFp32TokensPerSec: GEN_TOKENS / fp32S,
  };
}

export async function run(): Promise<void> {
  console.log(`\n## GPT (${CFG.layers} layers, ${CFG.heads} heads, dim ${CFG.dim}, context ${CFG.context}, batch ${BATCH}, ${THREADS} threads)`);
  console.log(`machine: ${machine()}`);
  const train = measureTraining();
  const j = measureJouleGeneration();
  const t = runTorch('gen', REPS);
  const rows: (string | number)[][] = [];
  const ratio = (a: number, b: number | undefined) => (b ? `${(a / b).toFixed(2)}x` : 'n/a');
  const tv = 'error' in t ? undefined : (t as Record<string, number>);
  const jt = median(train.joule);
  const tt = train.torch.length ? median(train.torch) : undefined;
  rows.push(['training tokens/s (median of rounds)', jt, tt ?? 'n/a', ratio(jt, tt), '>= 1.2x']);
  rows.push(['generation tokens/s, KV cache vs torch naive loop', j.genCachedTokensPerSec, tv?.genNaiveTokensPerSec ?? 'n/a', ratio(j.genCachedTokensPerSec, tv?.genNaiveTokensPerSec), '>= 2x']);
  rows.push(['generation tokens/s, KV cache vs torch KV cache', j.genCachedTokensPerSec, tv?.genCachedTokensPerSec ?? 'n/a', ratio(j.genCachedTokensPerSec, tv?.genCachedTokensPerSec), '>= 1.0x']);
  rows.push(['generation tokens/s, no cache (both naive)', j.genNaiveTokensPerSec, tv?.genNaiveTokensPerSec ?? 'n/a', ratio(j.genNaiveTokensPerSec, tv?.genNaiveTokensPerSec), '']);
  console.log(table(['measure', 'joule', 'pytorch', 'ratio', 'target'], rows));
  console.log(`\nJoule int8 (W8A8, dynamic activation scales) against fp32, generation with the KV cache, interleaved rounds:`);
  console.log(table(['model', 'tokens/s', 'vs fp32', 'target'], [
    ['fp32', j.genFp32TokensPerSec!, '1.00x', ''],
    ['int8', j.genInt8TokensPerSec!, ratio(j.genInt8TokensPerSec!, j.genFp32TokensPerSec), '>= 1.5x'],
  ]));
  if (train.torch.length) {
    console.log(`training rounds, tokens/s (Joule / PyTorch, alternating): ${train.joule.map((v, i) => `${v.toFixed(0)} / ${train.torch[i]?.toFixed(0) ?? '-'}`).join(', ')}`);
  }
  const error = 'error' in t ? t.error : train.error;
  if (error) console.log(`PyTorch unavailable: ${error} (install: apt-get install -y python3-torch libopenblas0-openmp)`);
  else console.log(`pytorch ${tv ? (t as Record<string, string>).torch : train.torchVersion}; load after: ${machine().split('load ')[1]}`);
}

if (require.main === module) run().catch((e) => {
  console.error(e);
  process.exit(1);
});
