// nn.functional: layers and losses as functions. The hot ones (linear, crossEntropy, layerNorm)
// are single native calls with fused native backwards; the rest are compositions of ops.
import { gradSink, needsGrad, noGrad, record } from '../autograd';
import { checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import { sumTo } from '../ops/helpers';
import * as ops from '../ops/index';
import { checkTensor, Tensor, tidy, wrap } from '../tensor';

export { relu, gelu, silu, tanh, sigmoid, softmax, logSoftmax } from '../ops/index';

export type Activation = 'none' | 'relu' | 'gelu';
export type Reduction = 'mean' | 'sum' | 'none';

function reductionArg(r: unknown, allowed: readonly string[] = ['mean', 'sum', 'none']): string {
  if (r === undefined) return 'mean';
  if (typeof r !== 'string' || !allowed.includes(r)) fail('INVALID_ARGUMENT', `expected reduction to be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(r)}`);
  return r;
}

function reduce(loss: Tensor, reduction: string): Tensor {
  if (reduction === 'mean') return ops.mean(loss);
  if (reduction === 'sum') return ops.sum(loss);
  return loss;
}

// ---- gradient sinks ----

/**
 * Where a fused backward may write a leaf's gradient directly, instead of returning it for
 * autograd to copy or add: into the leaf's existing gradient (GEMM beta = 1) or over a tensor from
 * its home (beta = 0; see setGradHome), or 'new' when a new one is to be made. A fresh home tensor
 * and a new gradient become leaf.grad through adopt() once the op has succeeded.
 * Non-leaves get their gradient through autograd.
 */
function directSink(t: Tensor | null): 'no' | 'new' | { into: Tensor; fresh: boolean } {
  if (!t || !t.requiresGrad || !t.isLeaf) return 'no';
  return gradSink(t) ?? 'new';
}

function adopt(leaf: Tensor, h: Tensor): void {
  // Kept: it is made inside backward()'s tidy scope, and a leaf's gradient outlives it.
  leaf.grad = h.keep();
}

// ---- linear ----

/**
 * y = act(x @ weight^T + bias): x [..., in], weight [out, in] (PyTorch's layout), bias [out].
 * One native GEMM with bias and activation in its epilogue; the backward is GEMMs on strides
 * (dX = dZ·W, dW = dZᵀ·X, db = column sums of dZ, dZ = dY·act'), and writes the gradients of
 * leaf weights straight into their .grad.
 */
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null, activation: Activation = 'none'): Tensor {
  const x = checkTensor(input, 'input');
  const w = checkTensor(weight, 'weight');
  const b = bias === undefined || bias === null ? null : checkTensor(bias, 'bias');
  if (activation !== 'none' && activation !== 'relu' && activation !== 'gelu') {
    fail('INVALID_ARGUMENT', `linear: expected activation 'none', 'relu' or 'gelu', got ${describe(activation)}`);
  }
  if (!needsGrad(x, w, b)) return wrap(native.linear(x.handle, w.handle, b ? b.handle : null, activation));
  let y: Tensor;
  let saved: Tensor | null = null;
  if (activation === 'gelu') {
    const hs = native.linearTrain(x.handle, w.handle, b ? b.handle : null, activation);
    y = wrap(hs[0]);
    saved = wrap(hs[1]);
  } else {
    y = wrap(native.linear(x.handle, w.handle, b ? b.handle : null, activation));
    if (activation === 'relu') saved = y;
  }
  return record(y, `linear${activation === 'none' ? '' : '+' + activation}`, [x, w, b], (g) => {
    const sw = directSink(w);
    const sb = directSink(b);
    const into = (s: typeof sw) => (typeof s === 'object' ? s.into.handle : null);
    const [dx, dw, db] = native.linearBackward(
      g.handle, x.handle, w.handle, saved ? saved.handle : null, activation,
      x.requiresGrad, sw !== 'no' || w.requiresGrad, b !== null && (sb !== 'no' || b.requiresGrad),
      into(sw), into(sb), typeof sw === 'object' && !sw.fresh, typeof sb === 'object' && !sb.fresh);
    const gx = dx ? wrap(dx) : null;
    let gw = dw ? wrap(dw) : null;
    let gb = db ? wrap(db) : null;
    if (typeof sw === 'object' && sw.fresh) adopt(w, sw.into);
    if (sw === 'new' && gw) {
      adopt(w, gw);
      gw = null;
    }
    if (b && typeof sb === 'object' && sb.fresh) adopt(b, sb.into);
    if (sb === 'new' && gb && b) {
      adopt(b, gb);
      gb = null;
    }
    return [gx, gw, gb];
  }, activation === 'gelu' && saved ? [saved] : undefined);
}

// ---- activations and regularisation ----

/** Zeroes elements with probability p and scales the rest by 1/(1-p) (training only; seeded by manualSeed). */
export function dropout(input: Tensor, p = 0.5, training = true): Tensor {
  const x = checkTensor(input, 'input');
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail('INVALID_ARGUMENT', `dropout: expected p in [0, 1], got ${describe(p)}`);
  if (!training || p === 0) return x;
  if (x.dtype !== 'float32') fail('DTYPE', `dropout: expected a float32 input, got ${x.dtype}`);
  const mask = wrap(native.bernoulliMask(x.shape, 1 - p, x.device));
  if (p < 1) native.binaryScalarInplace('mul', mask.handle, 1 / (1 - p));
  const y = wrap(native.binary('mul', x.handle, mask.handle));
  if (!needsGrad(x)) {
    mask.dispose();
    return y;
  }
  return record(y, 'dropout', [x], (g) => [wrap(native.binary('mul', g.handle, mask.handle))], [mask]);
}

/** Layer normalisation over the trailing `normalizedShape` dimensions (one fused native pass each way). */
export function layerNorm(input: Tensor, normalizedShape: number | number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  const x = checkTensor(input, 'input');
  const ns = typeof normalizedShape === 'number' ? [normalizedShape] : normalizedShape;
  if (!Array.isArray(ns) || ns.length === 0 || ns.length > x.ndim) fail('INVALID_ARGUMENT', `layerNorm: expected normalizedShape to be a size or a non-empty list of the input's trailing sizes, got ${describe(normalizedShape)}`);
  const shape = x.shape;
  const tail = shape.slice(shape.length - ns.length);
  if (tail.join(',') !== ns.join(',')) fail('SHAPE_MISMATCH', `layerNorm: the input's trailing shape [${tail.join(', ')}] differs from normalizedShape [${ns.join(', ')}]`);
  const w = weight ? checkTensor(weight, 'weight') : null;
  const b = bias ? checkTensor(bias, 'bias') : null;
  const d = ns.reduce((p, q) => p * q, 1);
  const x2 = ns.length === 1 ? x : ops.reshape(x, [...shape.slice(0, shape.length - ns.length), d]);
  const [hy, hm, hr] = native.layerNorm(x2.handle, w ? w.handle : null, b ? b.handle : null, eps);
  let y = wrap(hy);
  const mean = wrap(hm);
  const rstd = wrap(hr);
  if (needsGrad(x2, w, b)) {
    record(y, 'layerNorm', [x2, w, b], (g) => {
      const [dx, dg, db] = native.layerNormBackward(g.handle, x2.handle, mean.handle, rstd.handle, w ? w.handle : null,
        x2.requiresGrad, Boolean((w && w.requiresGrad) || (b && b.requiresGrad)));
      // Every handle is wrapped at once (so that tidy frees it), used or not.
      const gx = dx ? wrap(dx) : null;
      const tg = dg ? wrap(dg) : null;
      const tb = db ? wrap(db) : null;
      const gw = w && w.requiresGrad && tg ? wrap(native.reshape(tg.handle, w.shape)) : null;
      const gb = b && b.requiresGrad && tb ? wrap(native.reshape(tb.handle, b.shape)) : null;
      return [gx, gw, gb];
    }, [mean, rstd]);
  } else {
    mean.dispose();
    rstd.dispose();
  }
  if (ns.length !== 1) y = ops.reshape(y, shape);
  return y;
}

// ---- losses ----

export interface CrossEntropyOptions {
  /** Mixes the target with the uniform distribution: (1 - s) * target + s / C. */
  labelSmoothing?: number;
  /** Class-index targets equal to it contribute nothing (and are not counted by 'mean'). Default -100. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

/**
 * Cross entropy of logits [N, C] or [N, C, d...] against class indices (int32 [N] / [N, d...])
 * or class probabilities (float32, the logits' shape). One fused native kernel (log-sum-exp,
 * NLL, smoothing, ignoreIndex) each way; the backward is (softmax - target) scaled.
 * The gradient flows to the logits only (probability targets are treated as constants).
 */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const x = checkTensor(logits, 'logits');
  const t = checkTensor(target, 'target');
  const o = checkOptions(options, 'options');
  const smoothing = o.labelSmoothing === undefined ? 0 : (o.labelSmoothing as number);
  if (typeof smoothing !== 'number' || !(smoothing >= 0 && smoothing <= 1)) fail('INVALID_ARGUMENT', `crossEntropy: expected labelSmoothing in [0, 1], got ${describe(o.labelSmoothing)}`);
  const ignoreIndex = o.ignoreIndex === undefined ? -100 : (o.ignoreIndex as number);
  if (!Number.isInteger(ignoreIndex)) fail('INVALID_ARGUMENT', `crossEntropy: expected ignoreIndex to be an integer, got ${describe(o.ignoreIndex)}`);
  const reduction = reductionArg(o.reduction) as Reduction;
  if (x.ndim === 1) {
    // An unbatched [C] input with a 0-d target, as PyTorch allows.
    const loss = crossEntropy(ops.unsqueeze(x, 0), ops.unsqueeze(t, 0), options);
    return reduction === 'none' ? ops.squeeze(loss, 0) : loss;
  }
  const [hl, hs] = native.crossEntropy(x.handle, t.handle, smoothing, ignoreIndex, reduction);
  const loss = wrap(hl);
  const lse = wrap(hs);
  if (needsGrad(x)) {
    record(loss, 'crossEntropy', [x], (g) => [
      wrap(native.crossEntropyBackward(g.handle, x.handle, t.handle, lse.handle, smoothing, ignoreIndex, reduction)),
    ], [lse]);
  } else {
    lse.dispose();
  }
  return loss;
}

/**
 * A function with a hand-written gradient: forward runs without recording, inside tidy, and
 * returns the output and the tensors the backward needs (freed with the graph); nothing else
 * it made outlives it, so composite losses leak nothing in loops without tidy().
 */
function custom(name: string, inputs: (Tensor | null)[], forward: () => { out: Tensor; saved?: Tensor[] },
  backward: (g: Tensor, saved: Tensor[]) => (Tensor | null)[]): Tensor {
  const grad = needsGrad(...inputs);
  const { out, saved = [] } = noGrad(() => tidy(forward));
  // Only what forward made is owned here (a saved tensor may be an input itself).
  const owned = saved.filter((t) => t !== out && !inputs.includes(t));
  if (!grad) {
    for (const t of owned) t.dispose();
    return out;
  }
  return record(out, name, inputs, (g) => backward(g, saved), owned);
}

function reduceScale(g: Tensor, reduction: string, n: number): Tensor | number {
  // The gradient of each element of the unreduced loss: g broadcast (mean: divided by n).
  if (reduction === 'none') return g;
  return reduction === 'mean' ? ops.div(g, n) : g;
}

/** Negative log-likelihood of log-probabilities [N, C(, d...)] at int32 class indices [N(, d...)]. */
export function nllLoss(logProbs: Tensor, target: Tensor, options: { ignoreIndex?: number; reduction?: Reduction } = {}): Tensor {
  const x = checkTensor(logProbs, 'input');
  const t = checkTensor(target, 'target');
  if (t.dtype !== 'int32') fail('DTYPE', `nllLoss: expected int32 class indices, got ${t.dtype}`);
  if (x.ndim < 2 || t.shape.join(',') !== [x.shape[0], ...x.shape.slice(2)].join(',')) {
    fail('SHAPE_MISMATCH', `nllLoss: expected input [N, C, ...] and target [N, ...], got [${x.shape.join(', ')}] and [${t.shape.join(', ')}]`);
  }
  const reduction = reductionArg(options.reduction);
  const ignoreIndex = options.ignoreIndex ?? -100;
  let count = 0;
  return custom('nllLoss', [x], () => {
    const keepF = ops.astype(ops.ne(t, ignoreIndex), 'float32');
    const index = ops.unsqueeze(ops.where(ops.ne(t, ignoreIndex), t, 0), 1);
    const losses = ops.neg(ops.mul(ops.squeeze(ops.gather(x, 1, index), 1), keepF));
    count = ops.sum(keepF).item();
    const out = reduction === 'none' ? losses : reduction === 'sum' ? ops.sum(losses) : ops.div(ops.sum(losses), count);
    return { out, saved: [keepF, index] };
  }, (g, [keepF, index]) => {
    const scale = reduction === 'mean' ? ops.div(g, count) : g;
    const src = ops.unsqueeze(ops.neg(ops.mul(keepF, scale)), 1);
    const zeros = wrap(native.full(x.shape, 0, 'float32', x.device));
    return [wrap(native.scatterAdd(zeros.handle, 1, index.handle, wrap(native.contiguous(src.handle)).handle))];
  });
}

/** Mean squared error. */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const a = checkTensor(input, 'input');
  const b = checkTensor(target, 'target');
  const reduction = reductionArg(options.reduction);
  return custom('mseLoss', [a, b], () => {
    const diff = ops.sub(a, b);
    return { out: reduce(ops.square(diff), reduction), saved: [diff] };
  }, (g, [diff]) => {
    const d = ops.mul(diff, ops.mul(reduceScale(g, reduction, diff.size), 2));
    return [a.requiresGrad ? sumToShape(d, a.shape) : null, b.requiresGrad ? sumToShape(ops.neg(d), b.shape) : null];
  });
}
export const mse = mseLoss;

/** Mean absolute error. */
export function l1Loss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const a = checkTensor(input, 'input');
  const b = checkTensor(target, 'target');
  const reduction = reductionArg(options.reduction);
  return custom('l1Loss', [a, b], () => {
    const diff = ops.sub(a, b);
    return { out: reduce(ops.abs(diff), reduction), saved: [ops.sign(diff)] };
  }, (g, [sign]) => {
    const d = ops.mul(sign, reduceScale(g, reduction, sign.size));
    return [a.requiresGrad ? sumToShape(d, a.shape) : null, b.requiresGrad ? sumToShape(ops.neg(d), b.shape) : null];
  });
}

/**
 * Binary cross entropy on logits, in the stable form (1 - y) x + softplus(-x) with
 * softplus(-x) = max(-x, 0) + log1p(exp(-|x|)); posWeight (broadcast) weighs the positive
 * term as PyTorch's pos_weight: (1 - y) x + (1 + (posWeight - 1) y) softplus(-x).
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, options: { reduction?: Reduction; posWeight?: Tensor } = {}): Tensor {
  const x = checkTensor(input, 'input');
  const y = checkTensor(target, 'target');
  const pw = options.posWeight ? checkTensor(options.posWeight, 'posWeight') : null;
  const reduction = reductionArg(options.reduction);
  return custom('binaryCrossEntropyWithLogits', [x, y, pw], () => {
    const softplusNeg = ops.add(ops.relu(ops.neg(x)), ops.log1p(ops.exp(ops.neg(ops.abs(x)))));
    const coef = pw ? ops.add(ops.mul(ops.sub(pw, 1), y), 1) : null;
    const loss = ops.add(ops.mul(ops.sub(1, y), x), coef ? ops.mul(coef, softplusNeg) : softplusNeg);
    return { out: reduce(loss, reduction), saved: [softplusNeg, ...(coef ? [coef] : [])] };
  }, (g, [softplusNeg, coef]) => {
    const k = reduceScale(g, reduction, softplusNeg.size);
    let gx: Tensor | null = null;
    let gy: Tensor | null = null;
    let gpw: Tensor | null = null;
    if (x.requiresGrad) {
      // d/dx = (1 - y) - coef * sigmoid(-x)
      const sNeg = ops.sigmoid(ops.neg(x));
      gx = sumToShape(ops.mul(ops.sub(ops.sub(1, y), coef ? ops.mul(coef, sNeg) : sNeg), k), x.shape);
    }
    if (y.requiresGrad) {
      // d/dy = -x + (posWeight - 1) softplus(-x)
      const d = pw ? ops.add(ops.neg(x), ops.mul(ops.sub(pw, 1), softplusNeg)) : ops.neg(x);
      gy = sumToShape(ops.mul(d, k), y.shape);
    }
    // d/dposWeight = y softplus(-x)
    if (pw && pw.requiresGrad) gpw = sumToShape(ops.mul(ops.mul(y, softplusNeg), k), pw.shape);
    return [gx, gy, gpw];
  });
}

/**
 * KL divergence KL(target || exp(input)) with `input` log-probabilities, target probabilities
 * (or log-probabilities with {logTarget: true}). reduction 'batchmean' divides the sum by the
 * batch size (the mathematically correct mean); 'mean' divides by the element count.
 */
export function klDiv(input: Tensor, target: Tensor, options: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor {
  const x = checkTensor(input, 'input');
  const t = checkTensor(target, 'target');
  const reduction = reductionArg(options.reduction, ['mean', 'sum', 'none', 'batchmean']);
  const logTarget = Boolean(options.logTarget);
  const batch = x.ndim > 0 ? x.shape[0] : 1;
  return custom('klDiv', [x, t], () => {
    // pointwise = t (log t - x), with t log t taken as 0 where t = 0 (its limit).
    const p = logTarget ? ops.exp(t) : t;
    const logT = logTarget ? t : ops.log(ops.where(ops.gt(t, 0), t, 1));
    const pointwise = ops.mul(p, ops.sub(logT, x));
    const out = reduction === 'batchmean' ? ops.div(ops.sum(pointwise), batch) : reduce(pointwise, reduction);
    return { out, saved: [p, logT] };
  }, (g, [p, logT]) => {
    const k = reduction === 'batchmean' ? ops.div(g, batch) : reduceScale(g, reduction, p.size);
    const gx = x.requiresGrad ? sumToShape(ops.mul(ops.neg(p), k), x.shape) : null;
    // d/dt of t (log t - x) = log t - x + 1; with log targets, d/dl of e^l (l - x) = e^l (l - x + 1).
    let gt: Tensor | null = null;
    if (t.requiresGrad) {
      const inner = ops.add(ops.sub(logT, x), 1);
      gt = sumToShape(ops.mul(logTarget ? ops.mul(p, inner) : ops.mul(inner, ops.gt(t, 0)), k), t.shape);
    }
    return [gx, gt];
  });
}

function sumToShape(g: Tensor, shape: number[]): Tensor {
  return sumTo(g, shape);
}

/** Fraction of rows whose largest logit is at the target class (int32 indices, or probabilities). */
export function accuracy(logits: Tensor, target: Tensor): number {
  const x = checkTensor(logits, 'logits');
  const t = checkTensor(target, 'target');
  if (x.ndim < 1) fail('SHAPE_MISMATCH', 'accuracy: expected logits [N, C]');
  return tidy(() => {
    const pred = wrap(native.reduce('argmax', x.handle, [x.ndim === 1 ? 0 : 1], false));
    const labels = t.dtype === 'float32' && t.shape.join(',') === x.shape.join(',') ? wrap(native.reduce('argmax', t.handle, [1], false)) : t;
    if (labels.shape.join(',') !== pred.shape.join(',')) {
      fail('SHAPE_MISMATCH', `accuracy: expected targets of shape [${pred.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    }
    if (pred.size === 0) return NaN;
    const hits = wrap(native.cast(wrap(native.binary('eq', pred.handle, labels.handle)).handle, 'float32'));
    return wrap(native.reduce('sum', hits.handle, [], false)).item() / pred.size;
  });
}
