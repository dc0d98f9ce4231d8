// Knowledge distillation: the KD loss (soft targets at a temperature, plus labels), an optional
// FitNets hint loss, and the Distiller that trains a student from a teacher.
export { kdLoss, kdLossParts, kdOptions, hintLoss } from './loss';
export type { KdLossOptions, KdLossParts } from './loss';
export { Distiller } from './distiller';
export type { DistillerOptions, DistillFitOptions, DistillReport, DistillEpochReport, HintOptions, TeacherModel } from './distiller';
