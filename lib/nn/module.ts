// nn.Module: the container of parameters, buffers and sub-modules, as in PyTorch.
//
// Registration is explicit (registerParameter / registerBuffer / registerModule) or by assignment:
// a property holding a Module, or a tensor made with nn.Parameter(), is registered under the
// property's name the next time the module is walked (parameters(), stateDict(), ...), in the
// order the properties were first set — for class fields, their declaration order.
import { noGrad } from '../autograd';
import { describe, fail } from '../errors';
import { native } from '../native';
import { checkDevice, Device, Tensor, wrap } from '../tensor';

const parameterSet = new WeakSet<Tensor>();

/** Marks a tensor as a parameter: a leaf that requires gradients and survives tidy(). */
export function Parameter(t: Tensor, requiresGrad = true): Tensor {
  if (!(t instanceof Tensor)) fail('INVALID_ARGUMENT', `Parameter: expected a Tensor, got ${describe(t)}`);
  if (!t.isLeaf) fail('INVALID_ARGUMENT', 'Parameter: expected a leaf tensor (use detach() first)');
  t.requiresGrad_(requiresGrad);
  t.keep();
  parameterSet.add(t);
  return t;
}

/** Whether t was made a parameter with nn.Parameter() (or registered as one). */
export function isParameter(t: unknown): t is Tensor {
  return t instanceof Tensor && parameterSet.has(t);
}

export interface LoadStateDictOptions {
  /** Missing or unexpected keys are an error (default true); otherwise they are reported. */
  strict?: boolean;
}
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const NAME = /^[A-Za-z_$][\w$]*$|^\d+$/;
const INTERNAL = new Set(['training']);

export abstract class Module {
  /** Whether the module is in training mode (dropout active); see train() / eval(). */
  training = true;

  constructor() {
    // Non-enumerable, so that the property scan below never mistakes them for children.
    Object.defineProperty(this, '_params', { value: new Map<string, Tensor | null>(), enumerable: false });
    Object.defineProperty(this, '_buffers', { value: new Map<string, Tensor | null>(), enumerable: false });
    Object.defineProperty(this, '_modules', { value: new Map<string, Module | null>(), enumerable: false });
  }

  /** @internal */ declare readonly _params: Map<string, Tensor | null>;
  /** @internal */ declare readonly _buffers: Map<string, Tensor | null>;
  /** @internal */ declare readonly _modules: Map<string, Module | null>;

  abstract forward(...inputs: unknown[]): unknown;

  // ---- registration ----

  private checkName(name: string, kind: string): void {
    if (typeof name !== 'string' || !NAME.test(name)) {
      fail('INVALID_ARGUMENT', `${kind}: expected a name made of letters, digits, '_' or '$', got ${describe(name)}`);
    }
    if (INTERNAL.has(name) || (name in Module.prototype)) fail('INVALID_ARGUMENT', `${kind}: '${name}' is a reserved name`);
  }

  private clash(name: string, except: Map<string, unknown>): void {
    for (const m of [this._params, this._buffers, this._modules] as Map<string, unknown>[]) {
      if (m !== except && m.has(name)) fail('INVALID_ARGUMENT', `'${name}' is already registered as another kind of member`);
    }
  }

  /** Registers a parameter (made a leaf that requires gradients and survives tidy()), or null. */
  registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.checkName(name, 'registerParameter');
    this.clash(name, this._params);
    if (t !== null) {
      if (!(t instanceof Tensor)) fail('INVALID_ARGUMENT', `registerParameter: expected a Tensor or null for '${name}', got ${describe(t)}`);
      if (!parameterSet.has(t)) Parameter(t);
    }
    this._params.set(name, t);
    (this as Record<string, unknown>)[name] = t;
    return t;
  }

  /** Registers state that is not trained (running statistics, ...): saved in stateDict, moved by to(). */
  registerBuffer(name: string, t: Tensor | null): Tensor | null {
    this.checkName(name, 'registerBuffer');
    this.clash(name, this._buffers);
    if (t !== null) {
      if (!(t instanceof Tensor)) fail('INVALID_ARGUMENT', `registerBuffer: expected a Tensor or null for '${name}', got ${describe(t)}`);
      t.keep();
    }
    this._buffers.set(name, t);
    (this as Record<string, unknown>)[name] = t;
    return t;
  }

  registerModule<M extends Module | null>(name: string, m: M): M {
    this.checkName(name, 'registerModule');
    this.clash(name, this._modules);
    if (m !== null && !(m instanceof Module)) fail('INVALID_ARGUMENT', `registerModule: expected a Module or null for '${name}', got ${describe(m)}`);
    this._modules.set(name, m);
    (this as Record<string, unknown>)[name] = m;
    return m;
  }

  /** Picks up members set by assignment, and follows reassignment of registered ones. */
  private sync(): void {
    const self = this as Record<string, unknown>;
    for (const [map, accept] of [
      [this._params, (v: unknown) => v === null || isParameter(v)],
      [this._buffers, (v: unknown) => v === null || v instanceof Tensor],
      [this._modules, (v: unknown) => v === null || v instanceof Module],
    ] as [Map<string, unknown>, (v: unknown) => boolean][]) {
      for (const name of map.keys()) {
        const v = self[name];
        if (v !== map.get(name)) {
          if (v === undefined) map.delete(name);
          else if (accept(v)) {
            if (map === this._buffers && v) (v as Tensor).keep();
            map.set(name, v);
          } else fail('INVALID_ARGUMENT', `'${name}' is registered as a ${map === this._modules ? 'module' : map === this._params ? 'parameter' : 'buffer'}, but now holds ${describe(v)}`);
        }
      }
    }
    for (const name of Object.keys(this)) {
      if (INTERNAL.has(name) || this._params.has(name) || this._buffers.has(name) || this._modules.has(name)) continue;
      const v = self[name];
      if (v instanceof Module) this._modules.set(name, v);
      else if (isParameter(v)) this._params.set(name, v);
    }
  }

  // ---- traversal ----

  *namedChildren(): Generator<[string, Module]> {
    this.sync();
    for (const [name, m] of this._modules) if (m) yield [name, m];
  }
  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }

  /** This module and every descendant, each once, depth first, with dotted names ('' for this one). */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${name}` : name, seen);
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Parameters with dotted names ('0.weight', 'fc1.bias'), each tensor once (shared ones under their first name). */
  namedParameters(options: { recurse?: boolean } = {}): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const mods: [string, Module][] = options.recurse === false ? [['', this]] : [...this.namedModules()];
    for (const [prefix, m] of mods) {
      m.sync();
      for (const [name, p] of m._params) {
        if (!p || seen.has(p)) continue;
        seen.add(p);
        out.push([prefix ? `${prefix}.${name}` : name, p]);
      }
    }
    return out;
  }
  parameters(options: { recurse?: boolean } = {}): Tensor[] {
    return this.namedParameters(options).map(([, p]) => p);
  }

  namedBuffers(options: { recurse?: boolean } = {}): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const mods: [string, Module][] = options.recurse === false ? [['', this]] : [...this.namedModules()];
    for (const [prefix, m] of mods) {
      m.sync();
      for (const [name, b] of m._buffers) {
        if (!b || seen.has(b)) continue;
        seen.add(b);
        out.push([prefix ? `${prefix}.${name}` : name, b]);
      }
    }
    return out;
  }
  buffers(options: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers(options).map(([, b]) => b);
  }

  /** Calls fn on every module (children first, as PyTorch's apply) and returns this. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  // ---- modes ----

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Sets requiresGrad on every parameter (freezing with false). */
  requiresGrad_(value = true): this {
    for (const p of this.parameters()) p.requiresGrad_(value);
    return this;
  }

  // ---- gradients and sizes ----

  /** Clears the parameters' gradients: disposed and set to null (default, as PyTorch), or filled with zeros. */
  zeroGrad(setToNone = true): void {
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone || p.grad.isDisposed) {
        p.grad.dispose();
        p.grad = null;
      } else {
        native.fill(p.grad.handle, 0);
      }
    }
  }

  /** The number of parameter elements (only those that require gradients with {trainable: true}). */
  numParameters(options: { trainable?: boolean } = {}): number {
    let n = 0;
    for (const p of this.parameters()) if (!options.trainable || p.requiresGrad) n += p.size;
    return n;
  }

  // ---- state ----

  /** Parameters and buffers by dotted name, in registration order (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      m.sync();
      for (const map of [m._params, m._buffers]) {
        for (const [name, t] of map) {
          const key = prefix ? `${prefix}.${name}` : name;
          if (t && !(key in out)) out[key] = t;
        }
      }
    }
    return out;
  }

  /**
   * Copies the tensors of `dict` into this module's parameters and buffers (their identity is
   * kept, so optimizers holding them stay valid). Every entry is checked before anything is
   * copied: a shape or dtype mismatch is a JouleError (SHAPE_MISMATCH / DTYPE); missing or
   * unexpected keys are one (INVALID_ARGUMENT) when strict (default), else they are returned.
   */
  loadStateDict(dict: Record<string, Tensor> | Map<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    if (dict === null || typeof dict !== 'object') fail('INVALID_ARGUMENT', `loadStateDict: expected an object of tensors, got ${describe(dict)}`);
    const entries = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const strict = options.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !(k in own));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      const parts: string[] = [];
      if (missingKeys.length) parts.push(`missing keys: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) parts.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
      fail('INVALID_ARGUMENT', `loadStateDict: the state dict does not match the module (${parts.join('; ')})`);
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [key, dst] of Object.entries(own)) {
      const src = entries.get(key);
      if (src === undefined) continue;
      if (!(src instanceof Tensor)) fail('INVALID_ARGUMENT', `loadStateDict: '${key}' is ${describe(src)}, expected a Tensor`);
      if (src.isDisposed) fail('DISPOSED', `loadStateDict: '${key}' is a tensor that was disposed`);
      if (src.shape.join(',') !== dst.shape.join(',')) {
        fail('SHAPE_MISMATCH', `loadStateDict: '${key}' has shape [${src.shape.join(', ')}] in the state dict, but [${dst.shape.join(', ')}] in the module`);
      }
      if (src.dtype !== dst.dtype) fail('DTYPE', `loadStateDict: '${key}' is ${src.dtype} in the state dict, but ${dst.dtype} in the module`);
      pairs.push([dst, src]);
    }
    noGrad(() => {
      for (const [dst, src] of pairs) if (dst !== src) native.copyInto(dst.handle, src.handle);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Moves parameters (with their gradients) and buffers to `device`, in place of the old ones. */
  to(device: Device): this {
    const dev = checkDevice(device);
    for (const m of this.modules()) {
      m.sync();
      const self = m as unknown as Record<string, unknown>;
      for (const [name, p] of m._params) {
        if (!p || p.device === dev) continue;
        const moved = Parameter(wrap(native.to(p.handle, dev)), p.requiresGrad);
        if (p.grad) moved.grad = wrap(native.to(p.grad.handle, dev)).keep();
        p.dispose();
        m._params.set(name, moved);
        self[name] = moved;
      }
      for (const [name, b] of m._buffers) {
        if (!b || b.device === dev) continue;
        const moved = wrap(native.to(b.handle, dev)).keep();
        b.dispose();
        m._buffers.set(name, moved);
        self[name] = moved;
      }
    }
    return this;
  }

  /** Frees every parameter, gradient and buffer of this module and its descendants. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const b of this.buffers()) b.dispose();
  }

  toString(): string {
    const inner = this.children().length ? `\n${[...this.namedChildren()].map(([n, c]) => `  (${n}): ${String(c).replace(/\n/g, '\n  ')}`).join('\n')}\n` : '';
    return `${this.constructor.name}(${this.extraRepr()}${inner})`;
  }
  /** @internal The arguments shown by toString(). */
  extraRepr(): string {
    return '';
  }
}
