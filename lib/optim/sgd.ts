// SGD with momentum, dampening, Nesterov and L2 weight decay (PyTorch's torch.optim.SGD):
// one fused native call per group per step, in place.
import { fail } from '../errors';
import { Handle, native } from '../native';
import { Tensor } from '../tensor';
import { checkHyper, Optimizer, ParamGroup, ParamsArg } from './optimizer';

export interface SGDOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty: weightDecay * p is added to the gradient (coupled, as PyTorch's SGD). */
  weightDecay?: number;
  maximize?: boolean;
}
type SGDHyper = Required<Omit<SGDOptions, 'lr'>> & Record<string, unknown>;

/**
 * p -= lr * v, with d = g + weightDecay * p, v = d on the first step and
 * v = momentum * v + (1 - dampening) * d afterwards (Nesterov: p -= lr * (d + momentum * v)).
 * State per parameter: momentumBuffer.
 */
export class SGD extends Optimizer<SGDHyper> {
  constructor(params: ParamsArg, options: SGDOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      nesterov: options.nesterov ?? false,
      weightDecay: options.weightDecay ?? 0,
      maximize: options.maximize ?? false,
    });
  }

  protected override validate(g: ParamGroup & SGDHyper): void {
    checkHyper(g.momentum, 'momentum', 0);
    checkHyper(g.dampening, 'dampening', 0, 1);
    checkHyper(g.weightDecay, 'weightDecay', 0);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) fail('INVALID_ARGUMENT', 'SGD: Nesterov momentum needs momentum > 0 and dampening 0');
  }

  override step(): void {
    for (const group of this.paramGroups) {
      const { params, grads } = this.withGrads(group);
      if (params.length === 0) continue;
      const bufs: Handle[] = [];
      const initialised: boolean[] = [];
      if (group.momentum !== 0) {
        for (const p of params) {
          let s = this.state.get(p);
          if (!s) this.state.set(p, (s = {}));
          initialised.push(s.momentumBuffer !== undefined);
          if (s.momentumBuffer === undefined) s.momentumBuffer = this.zerosLike(p);
          bufs.push((s.momentumBuffer as Tensor).handle);
        }
      }
      native.sgdStep(params.map((p) => p.handle), grads.map((g) => g.handle), bufs, initialised, group.lr,
        group.momentum, group.dampening, group.weightDecay, group.nesterov, group.maximize);
    }
  }
}
