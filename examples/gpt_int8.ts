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

const weightOnly = jl.quant.cloneModule(model) as jl.models.GPT;
jl.noGrad(() => {
  for (const [name, p] of weightOnly.namedParameters()) {
    if (!name.startsWith('blocks.') || !name.endsWith('.weight') || p.ndim !== 2) continue;
    jl.tidy(() => p.copy_(jl.quant.dequantize(jl.quant.quantizeTensor(p, { perChannel: true, axis: 0 }))));
  }
});
const full = jl.quant.quantize(model, { mode: 'dynamic' }) as unknown as jl.models.GPT;

const rows: [string, jl.models.GPT, number][] = [['fp32', model, model.sizeBytes], ['int8 weight-only*', weightOnly, jl.quant.modelBytes(model) / 4], ['int8 dynamic (W8A8)', full, jl.quant.modelBytes(full as unknown as jl.nn.Module)]];
// Speeds are measured in interleaved rounds (fp32, weight-only, W8A8, fp32, ...), medians of 7, so
// that load from other processes hits every variant alike.
const times: number[][] = rows.map(() => []);
for (const [, m] of rows) m.generate('\n', { maxTokens: 32, temperature: 0 });
for (let r = 0; r < 7; r++) {
  rows.forEach(([, m], i) => {
    const t0 = performance.now();
    m.generate('\n', { maxTokens: 128, temperature: 0 });
    times[i].push(128 / ((performance.now() - t0) / 1000));
  });
}
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = { bpc: 0, tps: 0 };
console.log(`load ${require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);
rows.forEach(([name, m, bytes], i) => {
  const bpc = jl.text.evaluateBitsPerChar(m, valIds, m.config.context, { maxTokens: evalTokens });
  const tps = median(times[i]);
  if (name === 'fp32') Object.assign(base, { bpc, tps });
  console.log(`${name.padEnd(22)} bpc ${bpc.toFixed(5)} (${(bpc - base.bpc >= 0 ? '+' : '')}${(bpc - base.bpc).toFixed(5)})  ` +
    `generation ${tps.toFixed(0)} tokens/s (${(tps / base.tps).toFixed(2)}x)  ${(bytes / 1024).toFixed(0)} KiB`);
});
console.log(`load ${require('os').loadavg().map((x: number) => x.toFixed(2)).join(' ')}`);
console.log('* int8 weights stored (size shown), dequantized to fp32 for compute: the accuracy cost only');
