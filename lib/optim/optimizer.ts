// The Optimizer base: parameter groups with their own hyper-parameters, per-parameter state,
// zeroGrad, and a state dict that includes the state tensors. Subclasses implement step() as
// one fused native call per group.
import { describe, fail } from '../errors';
import { native } from '../native';
import { Tensor, wrap } from '../tensor';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  [hyper: string]: unknown;
}
export type ParamsArg = Tensor[] | Iterable<Tensor> | (Partial<ParamGroup> & { params: Tensor[] })[];

export type StateValue = Tensor | number | boolean;
export type ParamState = Record<string, StateValue>;

export interface OptimizerStateDict {
  /** Per-parameter state, keyed by the parameter's position over all groups. */
  state: Record<number, ParamState>;
  /** The groups' hyper-parameters, with their parameters as positions. */
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

export abstract class Optimizer<H extends Record<string, unknown> = Record<string, unknown>> {
  readonly defaults: H & { lr: number };
  readonly paramGroups: (ParamGroup & H)[] = [];
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: ParamsArg, defaults: H & { lr: number }) {
    this.defaults = defaults;
    const list = Array.isArray(params) ? params : [...(params as Iterable<Tensor>)];
    if (list.length === 0) fail('INVALID_ARGUMENT', 'optimizer got an empty parameter list');
    if (list[0] instanceof Tensor) this.addParamGroup({ params: list as Tensor[] });
    else for (const g of list as (Partial<ParamGroup> & { params: Tensor[] })[]) this.addParamGroup(g);
  }

  /** Checks one group's hyper-parameters (subclasses say what is valid). */
  protected abstract validate(group: ParamGroup & H): void;

  /** Adds a group; unspecified hyper-parameters take the optimizer's defaults. */
  addParamGroup(group: Partial<ParamGroup> & { params: Tensor[] | Tensor }): void {
    if (group === null || typeof group !== 'object') fail('INVALID_ARGUMENT', `addParamGroup: expected {params, ...}, got ${describe(group)}`);
    const params = group.params instanceof Tensor ? [group.params] : [...(group.params ?? [])];
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) fail('INVALID_ARGUMENT', `optimizer: params[${i}] is ${describe(p)}, expected a Tensor`);
      if (!p.isLeaf) fail('INVALID_ARGUMENT', `optimizer: params[${i}] is not a leaf tensor (optimizers update leaves)`);
      if (p.dtype !== 'float32') fail('DTYPE', `optimizer: params[${i}] is ${p.dtype}, expected float32`);
      if (seen.has(p)) fail('INVALID_ARGUMENT', `optimizer: params[${i}] appears in more than one place`);
      seen.add(p);
    });
    const full = { ...this.defaults, ...group, params } as ParamGroup & H;
    if (typeof full.lr !== 'number' || !(full.lr >= 0)) fail('INVALID_ARGUMENT', `optimizer: expected lr >= 0, got ${describe(full.lr)}`);
    this.validate(full);
    const withInitial = full as ParamGroup;
    if (withInitial.initialLr === undefined) withInitial.initialLr = full.lr;
    this.paramGroups.push(full);
  }

  /** Clears the gradients: disposed and set to null (default, as PyTorch), or filled with zeros. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone || p.grad.isDisposed) {
          p.grad.dispose();
          p.grad = null;
        } else {
          native.fill(p.grad.handle, 0);
        }
      }
    }
  }

  /** Updates the parameters from their gradients (those with no gradient are skipped). */
  abstract step(): void;

  /** @internal A group's parameters that have a gradient, with the gradients made contiguous float32. */
  protected withGrads(group: ParamGroup): { params: Tensor[]; grads: Tensor[] } {
    const params: Tensor[] = [];
    const grads: Tensor[] = [];
    for (const p of group.params) {
      if (p.isDisposed) fail('DISPOSED', 'optimizer: a parameter was disposed');
      const g = p.grad;
      if (!g || g.isDisposed) continue;
      if (!contiguousGrads.has(g)) {
        if (g.dtype !== 'float32' || g.shape.join(',') !== p.shape.join(',')) {
          fail('SHAPE_MISMATCH', `optimizer: a gradient of shape [${g.shape.join(', ')}] (${g.dtype}) for a parameter of shape [${p.shape.join(', ')}]`);
        }
        if (!native.layout(g.handle).contiguous) {
          p.grad = wrap(native.contiguous(g.handle)).keep();
          g.dispose();
        }
        contiguousGrads.add(p.grad!);
      }
      params.push(p);
      grads.push(p.grad!);
    }
    return { params, grads };
  }

  /** @internal Zeros like p, kept (state lives until the optimizer is disposed). */
  protected zerosLike(p: Tensor): Tensor {
    return wrap(native.full(p.shape, 0, 'float32', p.device)).keep();
  }

  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      return { ...hyper, params: params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      }) };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, paramGroups };
  }

  /** Restores hyper-parameters and state (tensors are copied) from stateDict() of an optimizer over the same parameters. */
  loadStateDict(sd: OptimizerStateDict): void {
    if (!sd || typeof sd !== 'object' || !Array.isArray(sd.paramGroups) || typeof sd.state !== 'object') {
      fail('INVALID_ARGUMENT', `loadStateDict: expected {state, paramGroups}, got ${describe(sd)}`);
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      fail('INVALID_ARGUMENT', `loadStateDict: the state dict has ${sd.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    }
    const byIndex: Tensor[] = [];
    sd.paramGroups.forEach((g, gi) => {
      const own = this.paramGroups[gi];
      if (!Array.isArray(g.params) || g.params.length !== own.params.length) {
        fail('INVALID_ARGUMENT', `loadStateDict: group ${gi} has ${Array.isArray(g.params) ? g.params.length : '?'} parameters, this optimizer's ${own.params.length}`);
      }
      g.params.forEach((idx, k) => (byIndex[idx] = own.params[k]));
    });
    // Validate every state tensor before changing anything.
    const next = new Map<Tensor, ParamState>();
    for (const [key, s] of Object.entries(sd.state)) {
      const p = byIndex[Number(key)];
      if (!p) fail('INVALID_ARGUMENT', `loadStateDict: state for parameter ${key}, which no group has`);
      const copy: ParamState = {};
      for (const [name, v] of Object.entries(s)) {
        if (v instanceof Tensor) {
          if (v.isDisposed) fail('DISPOSED', `loadStateDict: state '${name}' of parameter ${key} was disposed`);
          if (v.shape.join(',') !== p.shape.join(',')) {
            fail('SHAPE_MISMATCH', `loadStateDict: state '${name}' of parameter ${key} has shape [${v.shape.join(', ')}], the parameter [${p.shape.join(', ')}]`);
          }
          if (v.dtype !== 'float32') fail('DTYPE', `loadStateDict: state '${name}' of parameter ${key} is ${v.dtype}, expected float32`);
          copy[name] = v;
        } else {
          copy[name] = v;
        }
      }
      next.set(p, copy);
    }
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
    for (const [p, s] of next) {
      const own: ParamState = {};
      for (const [name, v] of Object.entries(s)) {
        own[name] = v instanceof Tensor ? wrap(v.device === p.device ? native.clone(v.handle) : native.to(v.handle, p.device)).keep() : v;
      }
      this.state.set(p, own);
    }
    sd.paramGroups.forEach((g, gi) => {
      const { params: _ignored, ...hyper } = g;
      Object.assign(this.paramGroups[gi], hyper);
    });
  }

  /** Frees the optimizer's state tensors. */
  dispose(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }
}

// Gradients already checked to be contiguous float32 of their parameter's shape.
const contiguousGrads = new WeakSet<Tensor>();

export function checkHyper(value: unknown, name: string, lo: number, hi = Infinity, hiOpen = false): number {
  if (typeof value !== 'number' || !(value >= lo) || !(hiOpen ? value < hi : value <= hi)) {
    fail('INVALID_ARGUMENT', `expected ${name} in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${describe(value)}`);
  }
  return value;
}
