// The knowledge-distillation loss of Hinton, Vinyals & Dean (2015), "Distilling the Knowledge
// in a Neural Network":
//
//   L = alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha) · CE(student, labels)
//
// both terms batch means. The soft term is computed as the fused native cross entropy of the
// student's tempered logits against the teacher's tempered probabilities, minus the teacher's
// entropy (a constant): KL(p ‖ q) = H(p, q) − H(p). Its gradient w.r.t. the student's logits is
// alpha · T · (softmax(student/T) − softmax(teacher/T)) / N — the T² factor keeps the soft-target
// gradients on the same scale as the hard-target ones whatever the temperature.
// The teacher's logits are treated as constants (detached): no gradient ever reaches the teacher.
import { noGrad } from '../autograd';
import { checkOptions, describe, fail } from '../errors';
import { crossEntropy, mseLoss } from '../nn/functional';
import * as ops from '../ops/index';
import { checkTensor, Tensor } from '../tensor';

export interface KdLossOptions {
  /** Softmax temperature T > 0 (default 4). Higher spreads the teacher's probability mass over more classes. */
  temperature?: number;
  /** Weight of the soft (teacher) term in [0, 1] (default 0.9); 1 − alpha weighs the label term. */
  alpha?: number;
}

export interface KdLossParts {
  /** The total loss (a scalar tensor, differentiable w.r.t. the student's logits). */
  loss: Tensor;
  /** T² · KL(teacher ‖ student) at temperature T, batch mean (a number, for reporting); NaN when alpha = 0. */
  soft: number;
  /** CE(student, labels), batch mean; NaN when alpha = 1. */
  hard: number;
}

/** Validates {temperature, alpha}; returns them with their defaults. */
export function kdOptions(options: KdLossOptions | undefined, where = 'kdLoss'): { temperature: number; alpha: number } {
  const o = checkOptions(options ?? {}, 'options');
  for (const k of Object.keys(o)) {
    if (k !== 'temperature' && k !== 'alpha') fail('INVALID_ARGUMENT', `${where}: unknown option '${k}' (expected temperature, alpha)`);
  }
  const temperature = o.temperature === undefined ? 4 : o.temperature;
  if (typeof temperature !== 'number' || !(temperature > 0) || !Number.isFinite(temperature)) {
    fail('INVALID_ARGUMENT', `${where}: expected temperature to be a positive number, got ${describe(o.temperature)}`);
  }
  const alpha = o.alpha === undefined ? 0.9 : o.alpha;
  if (typeof alpha !== 'number' || !(alpha >= 0 && alpha <= 1)) fail('INVALID_ARGUMENT', `${where}: expected alpha in [0, 1], got ${describe(o.alpha)}`);
  return { temperature: temperature as number, alpha: alpha as number };
}

function checkShapes(s: Tensor, t: Tensor, y: Tensor | null): void {
  if (s.ndim !== 2) fail('SHAPE_MISMATCH', `kdLoss: expected student logits [N, C], got shape [${s.shape.join(', ')}]`);
  if (s.dtype !== 'float32' || t.dtype !== 'float32') fail('DTYPE', `kdLoss: expected float32 logits, got student ${s.dtype} and teacher ${t.dtype}`);
  if (t.shape.join(',') !== s.shape.join(',')) {
    fail('SHAPE_MISMATCH', `kdLoss: the teacher's logits [${t.shape.join(', ')}] differ in shape from the student's [${s.shape.join(', ')}]`);
  }
  if (y !== null) {
    if (y.dtype !== 'int32') fail('DTYPE', `kdLoss: expected int32 class labels, got ${y.dtype}`);
    if (y.ndim !== 1 || y.shape[0] !== s.shape[0]) fail('SHAPE_MISMATCH', `kdLoss: expected labels [${s.shape[0]}], got shape [${y.shape.join(', ')}]`);
  }
}

/**
 * The distillation loss and its two parts. `labels` (int32 [N]) may be null only when alpha = 1.
 */
export function kdLossParts(studentLogits: Tensor, teacherLogits: Tensor, labels: Tensor | null, options: KdLossOptions = {}): KdLossParts {
  const s = checkTensor(studentLogits, 'studentLogits');
  const t = checkTensor(teacherLogits, 'teacherLogits');
  const y = labels === null || labels === undefined ? null : checkTensor(labels, 'labels');
  const { temperature: T, alpha } = kdOptions(options);
  if (y === null && alpha < 1) fail('INVALID_ARGUMENT', `kdLoss: labels are needed when alpha < 1 (alpha is ${alpha})`);
  checkShapes(s, t, y);

  let loss: Tensor | null = null;
  let soft = NaN;
  let hard = NaN;
  if (alpha > 0) {
    // The teacher's side never records: its probabilities and entropy are constants.
    const { p, entropy } = noGrad(() => {
      const tt = ops.div(t.detach(), T);
      const probs = ops.softmax(tt, 1);
      // H(p) = −Σ p log p, batch mean; p log p → 0 where p underflows to 0 (logSoftmax stays finite).
      const h = -ops.sum(ops.mul(probs, ops.logSoftmax(tt, 1))).item() / s.shape[0];
      return { p: probs, entropy: h };
    });
    const cross = crossEntropy(ops.div(s, T), p);
    // T² · (H(p, q) − H(p)): the constant shifts the value to the KL, and leaves the gradient alone.
    const kl = ops.mul(ops.sub(cross, entropy), T * T);
    soft = kl.item();
    loss = alpha === 1 ? kl : ops.mul(kl, alpha);
  }
  if (alpha < 1) {
    const ce = crossEntropy(s, y!);
    hard = ce.item();
    const weighted = alpha === 0 ? ce : ops.mul(ce, 1 - alpha);
    loss = loss === null ? weighted : ops.add(loss, weighted);
  }
  return { loss: loss!, soft, hard };
}

/**
 * alpha · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − alpha) · CE(student, labels),
 * batch means; differentiable w.r.t. the student's logits only.
 */
export function kdLoss(studentLogits: Tensor, teacherLogits: Tensor, labels: Tensor | null, options: KdLossOptions = {}): Tensor {
  return kdLossParts(studentLogits, teacherLogits, labels, options).loss;
}

/**
 * The FitNets hint loss: mean squared error between the student's (projected) intermediate
 * features and the teacher's (constants).
 */
export function hintLoss(studentFeatures: Tensor, teacherFeatures: Tensor): Tensor {
  const s = checkTensor(studentFeatures, 'studentFeatures');
  const t = checkTensor(teacherFeatures, 'teacherFeatures');
  if (s.shape.join(',') !== t.shape.join(',')) {
    fail('SHAPE_MISMATCH', `hintLoss: the student's features [${s.shape.join(', ')}] differ in shape from the teacher's [${t.shape.join(', ')}] (give hint.projection)`);
  }
  return mseLoss(s, t.detach());
}
