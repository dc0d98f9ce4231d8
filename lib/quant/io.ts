// int8 models as safetensors files (lib/io/safetensors.ts): for each QuantizedLinear `name`,
//   name.weight        I8  [out, in]   the int8 weight (unpacked, PyTorch's layout)
//   name.weight_scale  F32 [out] or [1]
//   name.bias          F32 [out]       (when present)
// every other parameter and buffer under its state-dict name as usual, and in the metadata
// "joule.quant" = JSON {format: 'joule.int8.v1', layers: {name: {inFeatures, outFeatures, perChannel,
// weightBits, inputScale, outlierThreshold, bias}}}. Loading needs the architecture: pass a model of
// the same structure (fp32, e.g. freshly constructed); its listed Linear layers are replaced.
import { describe, fail } from '../errors';
import * as safetensors from '../io/safetensors';
import { Linear } from '../nn/layers';
import { Module } from '../nn/module';
import { Tensor } from '../tensor';
import { cloneModule } from './model';
import { QuantizedLinear } from './modules';

export const QUANT_FORMAT = 'joule.int8.v1';

/** Whether a state-dict key is one of a QuantizedLinear's own buffers (written in the file's own layout instead). */
function quantizedKey(model: Module, key: string): boolean {
  const dot = key.lastIndexOf('.');
  const owner = dot < 0 ? '' : key.slice(0, dot);
  for (const [name, m] of model.namedModules()) if (name === owner) return m instanceof QuantizedLinear;
  return false;
}

interface LayerMeta {
  inFeatures: number;
  outFeatures: number;
  perChannel: boolean;
  weightBits: number;
  inputScale: number;
  outlierThreshold: number;
  bias: boolean;
}

/** Writes a quantized model (atomically) as safetensors; returns the file's size in bytes. */
export function saveQuantized(model: Module, file: string): number {
  if (!(model instanceof Module)) fail('INVALID_ARGUMENT', `saveQuantized: expected an nn.Module, got ${describe(model)}`);
  const tensors = new Map<string, Tensor>();
  const owned: Tensor[] = [];
  const layers: Record<string, LayerMeta> = {};
  const inside = new Set<Module>();
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof QuantizedLinear)) continue;
    inside.add(m);
    const q = m.qweight();
    owned.push(q);
    tensors.set(`${name}.weight`, q);
    tensors.set(`${name}.weight_scale`, m.weightScale);
    if (m.bias) tensors.set(`${name}.bias`, m.bias);
    layers[name] = {
      inFeatures: m.inFeatures, outFeatures: m.outFeatures, perChannel: m.perChannel, weightBits: m.weightBits,
      inputScale: m.inputScale, outlierThreshold: m.outlierThreshold, bias: m.bias !== null,
    };
  }
  for (const [k, t] of Object.entries(model.stateDict())) if (!tensors.has(k) && !quantizedKey(model, k)) tensors.set(k, t);
  try {
    safetensors.save(file, tensors, { 'joule.quant': JSON.stringify({ format: QUANT_FORMAT, layers }) });
  } finally {
    for (const t of owned) t.dispose();
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('fs') as typeof import('fs')).statSync(file).size;
}

/**
 * Reads a file written by saveQuantized into a new model built on `architecture` (a model of the
 * same structure, fp32 or quantized): the layers the file lists become QuantizedLinear, all other
 * parameters and buffers are loaded from the file. The file is validated (CHECKPOINT_CORRUPT).
 */
export function loadQuantized<M extends Module>(file: string, architecture: M): M {
  if (!(architecture instanceof Module)) fail('INVALID_ARGUMENT', `loadQuantized: expected the model architecture (an nn.Module), got ${describe(architecture)}`);
  const { tensors, metadata } = safetensors.load(file);
  try {
    let meta: { format?: string; layers?: Record<string, LayerMeta> };
    try {
      meta = JSON.parse(metadata['joule.quant'] ?? 'null');
    } catch {
      meta = {};
    }
    if (!meta || meta.format !== QUANT_FORMAT || typeof meta.layers !== 'object') {
      fail('CHECKPOINT_CORRUPT', `${file} is not a Joule int8 model (no '${QUANT_FORMAT}' metadata)`);
    }
    const layers = meta.layers!;
    const names = new Set([...architecture.namedModules()].map(([n]) => n));
    for (const name of Object.keys(layers)) if (!names.has(name)) fail('CHECKPOINT_CORRUPT', `${file}: layer '${name}' is not a module of the given architecture`);
    const get = (key: string): Tensor => {
      const t = tensors[key];
      if (!t) fail('CHECKPOINT_CORRUPT', `${file}: missing tensor '${key}'`);
      return t;
    };
    const model = cloneModule(architecture, (name, m) => {
      const l = layers[name];
      if (!l) return undefined;
      if (!(m instanceof Linear) && !(m instanceof QuantizedLinear)) fail('CHECKPOINT_CORRUPT', `${file}: '${name}' is a ${m.constructor.name} in the architecture, not a Linear`);
      const w = get(`${name}.weight`);
      if (w.dtype !== 'int8' || w.shape.join(',') !== `${l.outFeatures},${l.inFeatures}`) fail('CHECKPOINT_CORRUPT', `${file}: '${name}.weight' should be int8 [${l.outFeatures}, ${l.inFeatures}], got ${w.dtype} [${w.shape.join(', ')}]`);
      if (m.inFeatures !== l.inFeatures || m.outFeatures !== l.outFeatures) fail('SHAPE_MISMATCH', `loadQuantized: '${name}' is ${m.inFeatures}->${m.outFeatures} in the architecture but ${l.inFeatures}->${l.outFeatures} in ${file}`);
      return new QuantizedLinear(w, get(`${name}.weight_scale`), l.bias ? get(`${name}.bias`) : null, {
        perChannel: l.perChannel, weightBits: l.weightBits, inputScale: l.inputScale, outlierThreshold: l.outlierThreshold,
      });
    });
    const rest: Record<string, Tensor> = {};
    for (const k of Object.keys(model.stateDict())) if (!quantizedKey(model, k)) rest[k] = get(k);
    model.loadStateDict(rest, { strict: false });
    return model as M;
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}
