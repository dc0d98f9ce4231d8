// Adam (L2 weight decay, coupled into the gradient) and AdamW (decoupled decay), as PyTorch's,
// with amsgrad: one fused native call per group per step, in place.
import { native } from '../native';
import { Tensor } from '../tensor';
import { checkHyper, Optimizer, ParamGroup, ParamsArg } from './optimizer';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** Adam: L2 penalty added to the gradient. AdamW: decoupled decay p *= 1 - lr * weightDecay. */
  weightDecay?: number;
  amsgrad?: boolean;
  maximize?: boolean;
}
type AdamHyper = { betas: [number, number]; eps: number; weightDecay: number; amsgrad: boolean; maximize: boolean } & Record<string, unknown>;

/**
 * m = b1 m + (1-b1) g, v = b2 v + (1-b2) g², p -= lr/(1-b1^t) · m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * State per parameter: step, expAvg, expAvgSq (and maxExpAvgSq with amsgrad).
 */
export class Adam extends Optimizer<AdamHyper> {
  constructor(params: ParamsArg, options: AdamOptions = {}, decoupledDefaultDecay = 0) {
    super(params, {
      lr: options.lr ?? 1e-3,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? decoupledDefaultDecay,
      amsgrad: options.amsgrad ?? false,
      maximize: options.maximize ?? false,
    });
  }

  protected override validate(g: ParamGroup & AdamHyper): void {
    if (!Array.isArray(g.betas) || g.betas.length !== 2) checkHyper(NaN, 'betas', 0, 1, true);
    checkHyper(g.betas[0], 'betas[0]', 0, 1, true);
    checkHyper(g.betas[1], 'betas[1]', 0, 1, true);
    checkHyper(g.eps, 'eps', 0);
    checkHyper(g.weightDecay, 'weightDecay', 0);
  }

  protected isDecoupled(): boolean {
    return false;
  }

  override step(): void {
    const decoupled = this.isDecoupled();
    for (const group of this.paramGroups) {
      const { params, grads } = this.withGrads(group);
      if (params.length === 0) continue;
      const m: Tensor[] = [];
      const v: Tensor[] = [];
      const vmax: Tensor[] = [];
      const steps: number[] = [];
      for (const p of params) {
        let s = this.state.get(p);
        if (!s) {
          s = { step: 0, expAvg: this.zerosLike(p), expAvgSq: this.zerosLike(p) };
          this.state.set(p, s);
        }
        if (group.amsgrad && s.maxExpAvgSq === undefined) s.maxExpAvgSq = this.zerosLike(p);
        s.step = (s.step as number) + 1;
        steps.push(s.step);
        m.push(s.expAvg as Tensor);
        v.push(s.expAvgSq as Tensor);
        if (group.amsgrad) vmax.push(s.maxExpAvgSq as Tensor);
      }
      native.adamStep(params.map((p) => p.handle), grads.map((g) => g.handle), m.map((t) => t.handle), v.map((t) => t.handle),
        vmax.map((t) => t.handle), steps, group.lr, group.betas[0], group.betas[1], group.eps, group.weightDecay,
        decoupled, group.amsgrad, group.maximize);
    }
  }
}

/** Adam with decoupled weight decay (Loshchilov & Hutter): p *= 1 - lr * weightDecay each step. Default weightDecay 0.01. */
export class AdamW extends Adam {
  constructor(params: ParamsArg, options: AdamOptions = {}) {
    super(params, options, 1e-2);
  }
  protected override isDecoupled(): boolean {
    return true;
  }
}
