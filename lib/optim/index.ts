// Optimizers (fused native steps), gradient clipping and learning-rate schedulers.
export { Optimizer } from './optimizer';
export type { ParamGroup, ParamsArg, ParamState, StateValue, OptimizerStateDict } from './optimizer';
export { SGD } from './sgd';
export type { SGDOptions } from './sgd';
export { Adam, AdamW } from './adam';
export type { AdamOptions } from './adam';
export { clipGradNorm, clipGradValue, gradNorm } from './clip';
export { LRScheduler, StepLR, ExponentialLR, CosineAnnealingLR, LambdaLR, WarmupCosineLR, warmupCosine } from './scheduler';
export type { SchedulerState, WarmupCosineOptions } from './scheduler';
