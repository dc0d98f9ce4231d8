// Neural-network building blocks: Module, layers, init and functional.
export { Module, Parameter, isParameter } from './module';
export type { LoadStateDictOptions, LoadStateDictResult } from './module';
export { Linear, Sequential, ModuleList, Identity, ReLU, GELU, SiLU, Tanh, Sigmoid, Softmax, Dropout, LayerNorm, Embedding, Flatten } from './layers';
export * as init from './init';
export * as functional from './functional';
export { MultiheadAttention, CausalSelfAttention, scaledDotProductAttention, selfAttentionQkv, createLayerCache } from './attention';
export type { AttentionOptions, MultiheadAttentionOptions, LayerKVCache } from './attention';
export { TransformerBlock } from './transformer';
export type { TransformerBlockOptions } from './transformer';
