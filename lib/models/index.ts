// Ready-made architectures built from nn/.
export { GPT, gpt, sample } from './gpt';
export type { GPTConfig, GPTOptions, GenerateOptions, GenerateResult } from './gpt';
export { CharTokenizer } from './tokenizer';
export type { CharTokenizerJSON } from './tokenizer';
