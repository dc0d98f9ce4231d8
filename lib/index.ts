// The public API of Joule.
export { JouleError } from './errors';
export type { ErrorCode } from './errors';
export {
  Tensor,
  tensor,
  full,
  zeros,
  ones,
  empty,
  zerosLike,
  onesLike,
  fullLike,
  arange,
  linspace,
  eye,
  rand,
  randn,
  randint,
  manualSeed,
  getRngState,
  setRngState,
  tidy,
  dispose,
  memory,
  isTensor,
} from './tensor';
export type { DType, Device, TypedArray, NestedArray, TensorLike, CreateOptions, MemoryInfo, RngState, GradNode } from './tensor';
export { noGrad, enableGrad, isGradEnabled, backward } from './autograd';
export type { BackwardOptions } from './autograd';
export * from './ops/index';
export { setMatmulPrecision, getMatmulPrecision } from './ops/precision';
export type { MatmulPrecision } from './ops/precision';
export { setNumThreads, getNumThreads, setIsa, getIsa, buildInfo, cudaAvailable, releaseCachedMemory } from './runtime';
export type { Isa } from './runtime';
export * as data from './data/index';
export * as io from './io/index';
export * as nn from './nn';
export * as models from './models';
export * as text from './text';
export * as optim from './optim';
export * as train from './train/index';
export { Trainer, saveCheckpoint, loadCheckpoint } from './train/index';
export type { TrainerOptions, FitOptions, FitReport, EpochReport, EvaluateResult } from './train/index';
export * as dist from './dist';
export * as quant from './quant';
export * as energy from './energy/index';
export * as distill from './distill/index';
export * as demo from './demo/index';
