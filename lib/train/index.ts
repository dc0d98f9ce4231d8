// Training: the Trainer and checkpoints.
export { Trainer, resolveCheckpoint } from './trainer';
export type {
  TrainerOptions, TrainerModel, TrainerOptimizer, TrainerScheduler, FitOptions, FitReport, EpochReport, EvaluateResult,
  Callbacks, BatchInfo, EarlyStoppingOptions, CheckpointOptions, LossFn, MetricFn, MetricSpec,
} from './trainer';
export { saveCheckpoint, loadCheckpoint, CHECKPOINT_FORMAT } from './checkpoint';
export type { CheckpointState, LoadCheckpointOptions, LoadedCheckpoint, Stateful, StatefulModel } from './checkpoint';
