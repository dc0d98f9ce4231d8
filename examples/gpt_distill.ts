// Distillation of a character-level GPT on Moby-Dick: an 8-layer teacher is trained, then a
// 4-layer student of the same width learns from the teacher's soft targets (distill.kdLoss,
// temperature 2, alpha 0.5) for the same number of steps as a 4-layer baseline trained on the
// labels alone. Reports bits per character (held-out chapters), size and generation speed.
// usage: npx tsx examples/gpt_distill.ts [steps (300)] [dim (64)] [context (64)] [batch (32)]
import * as jl from '../lib/index';

const [steps, dim, context, batch] = [300, 64, 64, 32].map((d, i) => Number(process.argv[2 + i] ?? d));
const evalTokens = 32768;
jl.setNumThreads(2);
const md = jl.text.mobyDick();
const tok = new jl.models.CharTokenizer(md.train + md.validation);
const trainIds = tok.encode(md.train);
const valIds = tok.encode(md.validation);
const V = tok.vocabSize;

function make(layers: number, seed: number): jl.models.GPT {
  jl.manualSeed(seed);
  return jl.models.gpt({ vocabSize: V, context, layers, heads: 4, dim }, { tokenizer: tok });
}

function train(model: jl.models.GPT, teacher: jl.models.GPT | null): number {
  const opt = new jl.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.1, betas: [0.9, 0.95] });
  const sched = jl.optim.warmupCosine(opt, { warmupSteps: 30, totalSteps: steps, minLr: 3e-4 });
  const data = new jl.text.TextWindowDataset(trainIds, context, { length: steps * batch, seed: 1 });
  if (teacher) teacher.eval();
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    jl.tidy(() => {
      const idx = new Int32Array(batch).map((_, i) => s * batch + i);
      const { x, y } = data.getBatch(idx);
      const logits = model.forward(x).reshape([-1, V]);
      const labels = y.reshape([-1]);
      const loss = teacher
        ? jl.distill.kdLoss(logits, jl.noGrad(() => teacher.forward(x).reshape([-1, V])), labels, { temperature: 2, alpha: 0.5 })
        : jl.nn.functional.crossEntropy(logits, labels);
      opt.zeroGrad();
      loss.backward();
      jl.optim.clipGradNorm(model.parameters(), 1);
      opt.step();
      sched.step();
    });
  }
  return (performance.now() - t0) / 1000;
}

function speed(m: jl.models.GPT): number {
  m.generate('\n', { maxTokens: 64, temperature: 0 });
  const t0 = performance.now();
  m.generate('\n', { maxTokens: 256, temperature: 0 });
  return 256 / ((performance.now() - t0) / 1000);
}

const load = () => require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ');
console.log(`steps ${steps}, dim ${dim}, context ${context}, batch ${batch}; load ${load()}`);
const teacher = make(8, 1);
const tTeacher = train(teacher, null);
const student = make(4, 2);
const tStudent = train(student, teacher);
const baseline = make(4, 2);
const tBase = train(baseline, null);
for (const [name, m, t] of [['teacher (8 layers)', teacher, tTeacher], ['student (4, distilled)', student, tStudent], ['baseline (4, labels only)', baseline, tBase]] as const) {
  const bpc = jl.text.evaluateBitsPerChar(m, valIds, context, { maxTokens: evalTokens });
  console.log(`${name.padEnd(26)} bpc ${bpc.toFixed(3)}  ${(m.sizeBytes / 1024).toFixed(0)} KiB  generation ${speed(m).toFixed(0)} tokens/s  trained in ${t.toFixed(0)} s`);
}
console.log(`load ${load()}`);
