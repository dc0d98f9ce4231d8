// `joule train --model gpt --data moby-dick [...]`: a character-level GPT on Moby-Dick with the
// Trainer (AdamW, warm-up + cosine schedule per step, gradient clipping), validation in bits per
// character on the held-out chapters every --eval-every steps, checkpoints with the config and
// tokenizer. Rank-aware: under `joule launch -n N` (WORLD_SIZE > 1) the model is wrapped in
// dist.DistributedDataParallel, each rank draws its own windows, and rank 0 alone logs and saves.
import { fail } from '../errors';
import * as jl from '../index';

export interface GptTrainOptions {
  layers?: number;
  heads?: number;
  dim?: number;
  context?: number;
  batch?: number;
  steps?: number;
  /**
   * Stop after this many minutes even if steps remain. The cosine then runs on whichever ends
   * first, the steps or the time, so the learning rate has decayed when the budget runs out.
   */
  minutes?: number;
  lr?: number;
  minLr?: number;
  warmup?: number;
  weightDecay?: number;
  dropout?: number;
  clip?: number;
  seed?: number;
  out?: string;
  evalEvery?: number;
  /** Characters of validation text used by the periodic evaluations (the final one uses all). */
  evalTokens?: number;
  /** Log function (default: stderr). */
  log?: (line: string) => void;
  /** Tokens used by the final validation (default: all of it). */
  finalEvalTokens?: number;
}

export interface GptTrainResult {
  model: jl.models.GPT;
  steps: number;
  seconds: number;
  tokensPerSec: number;
  trainLoss: number;
  valBpc: number;
  history: { step: number; trainLoss: number; valBpc: number; seconds: number }[];
  /** The learning rate of the last step (minLr when the steps or the time budget ran out). */
  lastLr: number;
  out?: string;
}

/** Trains a character-level GPT on Moby-Dick through the Trainer; returns the model and the numbers. */
export async function trainGptMobyDick(options: GptTrainOptions = {}): Promise<GptTrainResult> {
  const o = { layers: 4, heads: 4, dim: 128, context: 128, batch: 32, steps: 2000, minutes: Infinity, lr: 5e-3, minLr: 1e-4, warmup: 100,
    weightDecay: 0.1, dropout: 0, clip: 1, seed: 0, evalEvery: 200, evalTokens: 16384, ...options };
  const log = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const worldSize = Number(process.env.WORLD_SIZE ?? 1);
  const distributed = worldSize > 1;
  if (distributed) jl.dist.init();
  const rank = distributed ? jl.dist.rank() : 0;

  const md = jl.text.mobyDick();
  const tokenizer = new jl.models.CharTokenizer(md.train + md.validation);
  const trainIds = tokenizer.encode(md.train);
  const valIds = tokenizer.encode(md.validation);
  jl.manualSeed(o.seed);
  const model = jl.models.gpt({ vocabSize: tokenizer.vocabSize, context: o.context, layers: o.layers, heads: o.heads, dim: o.dim, dropout: o.dropout }, { tokenizer });
  const wrapped = distributed ? new jl.dist.DistributedDataParallel(model) : model;
  // AdamW without decay on biases, LayerNorm gains and position embeddings (GPT-2's practice).
  const decay: jl.Tensor[] = [];
  const noDecay: jl.Tensor[] = [];
  for (const [name, p] of model.namedParameters()) (p.ndim >= 2 && name !== 'wpe.weight' ? decay : noDecay).push(p);
  const optimizer = new jl.optim.AdamW([{ params: decay, weightDecay: o.weightDecay }, { params: noDecay, weightDecay: 0 }], { lr: o.lr, betas: [0.9, 0.95] });
  // Warm-up, then a cosine over the run's progress: the larger of the fraction of steps done and
  // the fraction of the time budget used after warm-up. Without a time budget this is the plain
  // step-based warm-up + cosine; with one, a run cut short by --minutes still anneals (stopping
  // mid-cosine at a high learning rate costs about 0.1 bits per character here).
  const warmupSteps = Math.min(o.warmup, o.steps);
  const deadline = performance.now() + o.minutes * 60_000;
  let decayStart = NaN;  // when warm-up ended (ms)
  const progress = (step: number): number => {
    const byStep = (step - warmupSteps) / Math.max(1, o.steps - warmupSteps);
    if (!Number.isFinite(o.minutes)) return byStep;
    if (Number.isNaN(decayStart)) decayStart = performance.now();
    return Math.max(byStep, (performance.now() - decayStart) / Math.max(1, deadline - decayStart));
  };
  const scheduler = new jl.optim.LambdaLR(optimizer, (step: number) => {
    if (step < warmupSteps) return step / warmupSteps;
    const floor = o.minLr / o.lr;
    return floor + ((1 - floor) * (1 + Math.cos(Math.PI * Math.min(1, progress(step))))) / 2;
  });
  const vocab = tokenizer.vocabSize;
  const trainer = new jl.Trainer({
    model: wrapped as unknown as jl.TrainerOptions['model'],
    optimizer,
    scheduler,
    schedulerStep: 'batch',
    clipGradNorm: o.clip,
    loss: function nextTokenCrossEntropy(logits, y) {
      return jl.nn.functional.crossEntropy(logits.reshape([-1, vocab]), y.reshape([-1]));
    },
  });
  const data = new jl.text.TextWindowDataset(trainIds, o.context, { length: o.steps * o.batch, seed: o.seed * 1000 + rank });
  const history: GptTrainResult['history'] = [];
  const t0 = performance.now();
  let lossSum = 0;
  let lossCount = 0;
  let steps = 0;
  const save = (step: number) => {
    if (o.out && rank === 0) model.save(o.out, { optimizer, scheduler, step, extra: { history } });
  };
  let lastTrainLoss = NaN;
  const evaluate = (step: number, tokens: number | undefined) => {
    const bpc = jl.text.evaluateBitsPerChar(model, valIds, o.context, { maxTokens: tokens, batchSize: 16 });
    const seconds = (performance.now() - t0) / 1000;
    const trainLoss = lossCount ? lossSum / lossCount : lastTrainLoss;
    lastTrainLoss = trainLoss;
    history.push({ step, trainLoss, valBpc: bpc, seconds });
    if (rank === 0) log(`step ${step}/${o.steps}  train ${(trainLoss / Math.LN2).toFixed(3)} bpc  val ${bpc.toFixed(3)} bpc  lr ${optimizer.paramGroups[0].lr.toExponential(2)}  ${seconds.toFixed(0)} s  ${((step * o.batch * o.context * worldSize) / seconds).toFixed(0)} tokens/s`);
    lossSum = 0;
    lossCount = 0;
    return bpc;
  };
  let evalSeconds = 0;
  await trainer.fit(data, {
    epochs: 1,
    batchSize: o.batch,
    shuffle: false,
    progress: false,
    quiet: true,
    callbacks: {
      onBatchEnd: (info, t) => {
        steps = info.step;
        lossSum += info.loss;
        lossCount++;
        if (info.step % o.evalEvery === 0) {
          const e0 = performance.now();
          evaluate(info.step, o.evalTokens);
          save(info.step);
          evalSeconds += (performance.now() - e0) / 1000;
        }
        if (performance.now() > deadline) t.stop();
      },
    },
  });
  const trainSeconds = (performance.now() - t0) / 1000 - evalSeconds;
  const valBpc = evaluate(steps, o.finalEvalTokens);
  const lastTrain = lastTrainLoss;
  save(steps);
  const lastLr = optimizer.paramGroups[0].lr;
  optimizer.dispose();  // its moment buffers; the caller owns the returned model
  if (distributed) jl.dist.destroy();
  return {
    model, steps, seconds: trainSeconds, tokensPerSec: (steps * o.batch * o.context * worldSize) / Math.max(trainSeconds, 1e-9),
    trainLoss: lastTrain, valBpc, history, lastLr, out: o.out,
  };
}

const FLAGS: Record<string, keyof GptTrainOptions> = {
  '--layers': 'layers', '--heads': 'heads', '--dim': 'dim', '--context': 'context', '--batch': 'batch', '--steps': 'steps',
  '--minutes': 'minutes', '--lr': 'lr', '--min-lr': 'minLr', '--warmup': 'warmup', '--weight-decay': 'weightDecay', '--dropout': 'dropout',
  '--clip': 'clip', '--seed': 'seed', '--eval-every': 'evalEvery', '--eval-tokens': 'evalTokens',
};

export const TRAIN_USAGE = `usage: joule train --model gpt --data moby-dick [options]
  --layers N (4) --heads N (4) --dim N (128) --context N (128) --batch N (32)
  --steps N (2000) --minutes M (no limit) --lr X (5e-3) --min-lr X (1e-4) --warmup N (100)
  --weight-decay X (0.1) --dropout X (0) --clip X (1) --seed N (0)
  --eval-every N (200) --eval-tokens N (16384) --out FILE (checkpoint, .safetensors)
`;

export async function trainCommand(argv: string[]): Promise<number> {
  const opts: GptTrainOptions = {};
  let model = 'gpt';
  let data = 'moby-dick';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--help' || a === '-h') {
      process.stdout.write(TRAIN_USAGE);
      return 0;
    }
    if (v === undefined) fail('INVALID_ARGUMENT', `train: ${a} needs a value\n${TRAIN_USAGE}`);
    i++;
    if (a === '--model') model = v;
    else if (a === '--data') data = v;
    else if (a === '--out') opts.out = v;
    else if (FLAGS[a]) {
      const n = Number(v);
      if (!Number.isFinite(n)) fail('INVALID_ARGUMENT', `train: ${a} expects a number, got '${v}'`);
      (opts as Record<string, number>)[FLAGS[a]] = n;
    } else fail('INVALID_ARGUMENT', `train: unknown option '${a}'\n${TRAIN_USAGE}`);
  }
  if (model !== 'gpt') fail('INVALID_ARGUMENT', `train: unknown model '${model}' (have: gpt)`);
  if (data !== 'moby-dick') fail('INVALID_ARGUMENT', `train: unknown data set '${data}' (have: moby-dick)`);
  const r = await trainGptMobyDick({ ...opts, log: (s) => process.stderr.write(s + '\n') });
  process.stdout.write(`trained ${r.steps} steps in ${r.seconds.toFixed(0)} s (${r.tokensPerSec.toFixed(0)} tokens/s); ` +
    `validation ${r.valBpc.toFixed(3)} bits per character${r.out ? `; saved ${r.out}` : ''}\n`);
  return 0;
}
