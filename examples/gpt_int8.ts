// int8 for a trained character-level GPT: bits per character on the held-out Moby-Dick chapters
// and greedy generation speed (batch 1, KV cache), fp32 against
//   - weight-only int8: every transformer Linear weight rounded to int8 per output channel
//     (storage 4x smaller; this measures the accuracy cost — compute stays fp32), and
//   - full int8: quant.quantize(model) (dynamic per-row activation scales, int8 GEMM with int32
//     accumulation, VNNI where the CPU has it).
// The token embedding / tied lm head stays fp32 in both.
// usage: npx tsx examples/gpt_int8.ts ckpt.safetensors [validation tokens (default 32768)]
import * as jl from '../lib/index';

const file = process.argv[2];
if (!file) throw new Error('usage: gpt_int8.ts CHECKPOINT [TOKENS]');
const evalTokens = Number(process.argv[3] ?? 32768);
jl.setNumThreads(2);

const model = jl.models.GPT.load(file);
const tok = model.tokenizer!;
const valIds = tok.encode(jl.text.mobyDick().validation);

function speed(m: jl.models.GPT): number {
  const run = () => m.generate('\n', { maxTokens: 128, temperature: 0 });
  run();
  const s: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    run();
    s.push(128 / ((performance.now() - t0) / 1000));
  }
  return s.sort((a, b) => a - b)[2];
}

const weightOnly = jl.quant.cloneModule(model) as jl.models.GPT;
jl.noGrad(() => {
  for (const [name, p] of weightOnly.namedParameters()) {
    if (!name.startsWith('blocks.') || !name.endsWith('.weight') || p.ndim !== 2) continue;
    jl.tidy(() => p.copy_(jl.quant.dequantize(jl.quant.quantizeTensor(p, { perChannel: true, axis: 0 }))));
  }
});
const full = jl.quant.quantize(model, { mode: 'dynamic' }) as unknown as jl.models.GPT;

const rows: [string, jl.models.GPT, number][] = [['fp32', model, model.sizeBytes], ['int8 weight-only', weightOnly, jl.quant.modelBytes(model) / 4], ['int8 dynamic (W8A8)', full, jl.quant.modelBytes(full as unknown as jl.nn.Module)]];
const base = { bpc: 0, tps: 0 };
console.log(`load ${require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);
for (const [name, m, bytes] of rows) {
  const bpc = jl.text.evaluateBitsPerChar(m, valIds, m.config.context, { maxTokens: evalTokens });
  const tps = speed(m);
  if (name === 'fp32') Object.assign(base, { bpc, tps });
  console.log(`${name.padEnd(22)} bpc ${bpc.toFixed(4)} (${(bpc - base.bpc >= 0 ? '+' : '')}${(bpc - base.bpc).toFixed(4)})  ` +
    `generation ${tps.toFixed(0)} tokens/s (${(tps / base.tps).toFixed(2)}x)  ${(bytes / 1024).toFixed(0)} KiB`);
}
console.log(`load ${require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);
