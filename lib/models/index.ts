// Ready-made architectures built from nn/.
export { GPT, gpt, sample } from './gpt';
export { Decoder } from './decoder';
export type { DecoderParts } from './decoder';
export type { GPTConfig, GPTOptions, GenerateOptions, GenerateResult } from './gpt';
export { CharTokenizer } from './tokenizer';
export type { CharTokenizerJSON } from './tokenizer';
