// `joule generate --checkpoint ckpt.safetensors --prompt "..."`: loads a GPT checkpoint (config
// and tokenizer from its metadata) and streams the generated text to stdout token by token.
import { fail } from '../errors';
import { GPT } from '../models/gpt';

export const GENERATE_USAGE = `usage: joule generate --checkpoint FILE [--prompt TEXT] [--tokens N (200)]
  [--temperature X (0.8)] [--top-k N] [--seed N (0)] [--no-cache]
`;

export async function generateCommand(argv: string[]): Promise<number> {
  let checkpoint: string | undefined;
  let prompt = '\n';
  let tokens = 200;
  let temperature = 0.8;
  let topK: number | undefined;
  let seed = 0;
  let cache = true;
  const num = (flag: string, v: string | undefined) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) fail('INVALID_ARGUMENT', `generate: ${flag} expects a number, got '${v}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(GENERATE_USAGE);
      return 0;
    }
    if (a === '--no-cache') {
      cache = false;
      continue;
    }
    const v = argv[++i];
    if (a === '--checkpoint') checkpoint = v;
    else if (a === '--prompt') prompt = v ?? '';
    else if (a === '--tokens' || a === '--max-tokens') tokens = num(a, v);
    else if (a === '--temperature') temperature = num(a, v);
    else if (a === '--top-k') topK = num(a, v);
    else if (a === '--seed') seed = num(a, v);
    else fail('INVALID_ARGUMENT', `generate: unknown option '${a}'\n${GENERATE_USAGE}`);
  }
  if (!checkpoint) fail('INVALID_ARGUMENT', `generate: --checkpoint is required\n${GENERATE_USAGE}`);
  const model = GPT.load(checkpoint);
  const t0 = performance.now();
  process.stdout.write(prompt);
  const r = model.generate(prompt, {
    maxTokens: tokens, temperature, topK, seed, cache,
    onToken: (_id, text) => process.stdout.write(text ?? ''),
  });
  const s = (performance.now() - t0) / 1000;
  process.stdout.write('\n');
  process.stderr.write(`${r.tokens.length} tokens in ${s.toFixed(2)} s (${(r.tokens.length / s).toFixed(1)} tokens/s)\n`);
  model.dispose();
  return 0;
}
