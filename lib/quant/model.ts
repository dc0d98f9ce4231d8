// Whole-model quantization: post-training (dynamic or static with calibration), quantization-aware
// training (prepareQat / convertQat). Each returns a NEW model: the module tree is copied (class,
// fields, parameters and buffers cloned), nn.Linear layers are replaced, the input model is left
// untouched. Module names for `exclude` are the dotted names of namedModules() ('0', 'fc1', 'enc.0').
import { noGrad } from '../autograd';
import { checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import { isBatchedDataset, isDataset } from '../data/dataset';
import { isParameter, Module, Parameter } from '../nn/module';
import { Linear, Sequential } from '../nn/layers';
import { Tensor, tidy, wrap } from '../tensor';
import { QatLinear, QatOptions, QuantizedLinear, QuantizedSequential } from './modules';
import { MinMaxObserver, Observer, PercentileObserver } from './observers';
import { checkBits } from './tensor';

export type Calibration = Iterable<Tensor | { x: Tensor }> | { length: number; get(i: number): { x: Tensor } } | Tensor;

export interface QuantizeOptions {
  /** 'dynamic' (default): activation scales per row at run time; 'static': fixed scales from calibration. */
  mode?: 'dynamic' | 'static';
  /** Input batches (Tensors, {x} batches, a DataLoader) or a Dataset; required for 'static'. */
  calibration?: Calibration;
  /** Examples of calibration used at most (default 2048). */
  calibrationSamples?: number;
  /** 'minmax' (default) or 'percentile' (clips at `percentile` of |x|, default 99.99). */
  observer?: 'minmax' | 'percentile';
  percentile?: number;
  /** Per-output-channel weight scales (default true). */
  perChannel?: boolean;
  /** Weight bits, 2..8 (default 8). */
  weightBits?: number;
  /** Names of modules (and their descendants) to keep in fp32. */
  exclude?: string[];
  /** LLM.int8()-style outlier decomposition threshold (0 = off); see QuantizedLinear. */
  outlierThreshold?: number;
}

const QUANTIZE_KEYS = ['mode', 'calibration', 'calibrationSamples', 'observer', 'percentile', 'perChannel', 'weightBits', 'exclude', 'outlierThreshold'];

function excluded(name: string, exclude: string[]): boolean {
  return exclude.some((e) => name === e || name.startsWith(e + '.'));
}

/**
 * Copies a module tree: same classes and plain fields, cloned parameters and buffers, children
 * copied recursively, and `replace(name, module)` may substitute any module (return undefined to
 * copy it). Fields holding modules inside plain arrays or objects are shared, not copied.
 */
export function cloneModule(root: Module, replace: (name: string, m: Module) => Module | undefined = () => undefined): Module {
  const copyOf = new Map<Module, Module>();
  const visit = (m: Module, name: string): Module => {
    const known = copyOf.get(m);
    if (known) return known;
    const r = replace(name, m);
    if (r !== undefined) {
      copyOf.set(m, r);
      return r;
    }
    const proto = Object.getPrototypeOf(m) === Sequential.prototype ? QuantizedSequential.prototype : Object.getPrototypeOf(m);
    const c = Object.create(proto) as Module;
    for (const key of ['_params', '_buffers', '_modules']) Object.defineProperty(c, key, { value: new Map(), enumerable: false });
    m.stateDict(); // syncs the maps with the properties
    const named = new Map([...m.namedChildren()].map(([n, child]) => [child, n]));
    const src = m as unknown as Record<string, unknown>;
    const dst = c as unknown as Record<string, unknown>;
    const cloned = new Map<Tensor, Tensor>();
    const cloneTensor = (t: Tensor): Tensor => {
      let out = cloned.get(t);
      if (!out) {
        const h = native.clone(t.handle);
        out = isParameter(t) ? Parameter(wrap(h), t.requiresGrad) : wrap(h).keep();
        cloned.set(t, out);
      }
      return out;
    };
    for (const key of Object.keys(m)) {
      const v = src[key];
      if (v instanceof Module) dst[key] = visit(v, name ? `${name}.${named.get(v) ?? key}` : named.get(v) ?? key);
      else if (v instanceof Tensor) dst[key] = cloneTensor(v);
      else dst[key] = v;
    }
    for (const [k, p] of m._params) c._params.set(k, p ? cloneTensor(p) : null);
    for (const [k, b] of m._buffers) c._buffers.set(k, b ? cloneTensor(b) : null);
    for (const [k, ch] of m._modules) {
      const v = ch ? (dst[k] as Module) ?? visit(ch, name ? `${name}.${k}` : k) : null;
      c._modules.set(k, v);
      dst[k] = v;
    }
    copyOf.set(m, c);
    return c;
  };
  return visit(root, '');
}

function* calibrationInputs(cal: Calibration, maxSamples: number): Generator<{ x: Tensor; owned: boolean }> {
  if (cal instanceof Tensor) {
    yield { x: cal, owned: false };
    return;
  }
  let seen = 0;
  if (isDataset(cal)) {
    const n = Math.min(cal.length, maxSamples);
    for (let start = 0; start < n; start += 256) {
      const idx = Int32Array.from({ length: Math.min(256, n - start) }, (_, i) => start + i);
      if (isBatchedDataset(cal)) {
        const b = cal.getBatch(idx);
        yield { x: b.x, owned: true };
        for (const t of b.tensors) t.dispose();
        if (b.y !== b.x) b.y.dispose();
      } else {
        for (const i of idx) {
          const e = cal.get(i);
          yield { x: e.x, owned: true };
          e.x.dispose();
          if (e.y !== e.x) e.y.dispose();
        }
      }
    }
    return;
  }
  if (cal === null || typeof (cal as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    fail('INVALID_ARGUMENT', `quantize: expected calibration to be a Tensor, an iterable of batches or a Dataset, got ${describe(cal)}`);
  }
  for (const item of cal as Iterable<Tensor | { x: Tensor }>) {
    const x = item instanceof Tensor ? item : item && (item as { x: Tensor }).x;
    if (!(x instanceof Tensor)) fail('INVALID_ARGUMENT', `quantize: calibration batches must be Tensors or {x: Tensor}, got ${describe(item)}`);
    yield { x, owned: false };
    seen += x.ndim > 1 ? x.shape[0] : 1;
    if (seen >= maxSamples) return;
  }
}

/** Runs the model on calibration inputs with an observer on the input of every listed Linear. */
function calibrate(model: Module, linears: [string, Linear][], options: QuantizeOptions): Map<string, Observer> {
  const observers = new Map<string, Observer>();
  const restore: (() => void)[] = [];
  for (const [name, lin] of linears) {
    const obs: Observer = options.observer === 'percentile' ? new PercentileObserver(options.percentile ?? 99.99) : new MinMaxObserver();
    observers.set(name, obs);
    const own = lin as unknown as Record<string, unknown>;
    const proto = Object.getPrototypeOf(lin) as Linear;
    const forward = proto.forward;
    const fused = proto.forwardFused;
    own.forward = (x: Tensor) => {
      obs.observe(x);
      return forward.call(lin, x);
    };
    own.forwardFused = (x: Tensor, a: 'none' | 'relu' | 'gelu') => {
      obs.observe(x);
      return fused.call(lin, x, a);
    };
    restore.push(() => {
      delete own.forward;
      delete own.forwardFused;
    });
  }
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      for (const { x } of calibrationInputs(options.calibration!, options.calibrationSamples ?? 2048)) {
        tidy(() => {
          model.forward(x);
        });
      }
    });
  } finally {
    for (const r of restore) r();
    model.train(wasTraining);
  }
  return observers;
}

/** Post-training quantization: a new model whose nn.Linear layers are QuantizedLinear. */
export function quantize<M extends Module>(model: M, options: QuantizeOptions = {}): M {
  if (!(model instanceof Module)) fail('INVALID_ARGUMENT', `quantize: expected an nn.Module, got ${describe(model)}`);
  const o = checkOptions(options, 'options') as QuantizeOptions;
  for (const k of Object.keys(o)) if (!QUANTIZE_KEYS.includes(k)) fail('INVALID_ARGUMENT', `quantize: unknown option '${k}' (expected one of ${QUANTIZE_KEYS.join(', ')})`);
  const mode = o.mode ?? 'dynamic';
  if (mode !== 'dynamic' && mode !== 'static') fail('INVALID_ARGUMENT', `quantize: mode must be 'dynamic' or 'static', got ${describe(mode)}`);
  const exclude = o.exclude ?? [];
  if (!Array.isArray(exclude) || exclude.some((e) => typeof e !== 'string')) fail('INVALID_ARGUMENT', `quantize: exclude must be a list of module names, got ${describe(exclude)}`);
  const names = new Set([...model.namedModules()].map(([n]) => n));
  for (const e of exclude) if (!names.has(e)) fail('INVALID_ARGUMENT', `quantize: exclude names '${e}', which is not a module of the model (have: ${[...names].filter(Boolean).join(', ')})`);
  const weightBits = checkBits(o.weightBits);
  const linears = [...model.namedModules()].filter(([n, m]) => m instanceof Linear && !excluded(n, exclude)) as [string, Linear][];
  let scales = new Map<string, number>();
  if (mode === 'static') {
    if (o.calibration === undefined) fail('INVALID_ARGUMENT', "quantize: mode 'static' needs calibration data (options.calibration)");
    const observers = calibrate(model, linears, o);
    scales = new Map([...observers].map(([n, obs]) => [n, obs.scale(127)]));
  }
  const targets = new Map(linears.map(([n, l]) => [l, n]));
  return cloneModule(model, (name, m) => {
    if (!(m instanceof Linear) || !targets.has(m)) return undefined;
    return QuantizedLinear.fromLinear(m, {
      perChannel: o.perChannel ?? true,
      weightBits,
      inputScale: mode === 'static' ? scales.get(targets.get(m)!) ?? 0 : 0,
      outlierThreshold: o.outlierThreshold ?? 0,
    });
  }) as M;
}

/** A new model whose nn.Linear layers are QatLinear (fake-quantized weights and inputs): train it, then convertQat. */
export function prepareQat<M extends Module>(model: M, options: QatOptions & { exclude?: string[] } = {}): M {
  if (!(model instanceof Module)) fail('INVALID_ARGUMENT', `prepareQat: expected an nn.Module, got ${describe(model)}`);
  const exclude = options.exclude ?? [];
  return cloneModule(model, (name, m) => (m instanceof Linear && !excluded(name, exclude) ? new QatLinear(m, options) : undefined)) as M;
}

/** The int8 model of a QAT-trained model: each QatLinear becomes a QuantizedLinear with the same quantization. */
export function convertQat<M extends Module>(model: M, options: { outlierThreshold?: number } = {}): M {
  if (!(model instanceof Module)) fail('INVALID_ARGUMENT', `convertQat: expected an nn.Module, got ${describe(model)}`);
  return cloneModule(model, (_name, m) => (m instanceof QatLinear ? m.toQuantized(options) : undefined)) as M;
}

/** Bytes of the stored model: int8 weights + fp32 scales for quantized layers, fp32 for all other parameters and buffers. */
export function modelBytes(model: Module): number {
  let bytes = 0;
  const inQuantized = new Set<Tensor>();
  for (const m of model.modules()) {
    if (m instanceof QuantizedLinear) {
      bytes += m.storageBytes;
      for (const b of m.buffers()) inQuantized.add(b);
    }
  }
  for (const t of [...model.parameters(), ...model.buffers()]) {
    if (!inQuantized.has(t)) bytes += t.size * (t.dtype === 'float32' || t.dtype === 'int32' ? 4 : 1);
  }
  return bytes;
}
