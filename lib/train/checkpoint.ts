// Training checkpoints: model, optimizer, scheduler, progress counters and the RNG state in ONE
// safetensors file. Tensors go into the file's tensors ('model.<name>', 'optim.<path>'); the rest
// (hyper-parameters, scalars, epoch, RNG) into __metadata__ as JSON strings, tensors inside the
// optimizer's state replaced by references to their file names.
import { checkInt, checkOptions, describe, fail, JouleError } from '../errors';
import { getRngState, RngState, setRngState, Tensor } from '../tensor';
import * as safetensors from '../io/safetensors';

/** What a checkpoint needs of a model (nn.Module satisfies it). */
export interface StatefulModel {
  stateDict(): Record<string, Tensor> | Map<string, Tensor>;
  loadStateDict(dict: Record<string, Tensor>, options?: { strict?: boolean }): unknown;
}
/** What a checkpoint needs of an optimizer or scheduler (optim.* satisfy it). */
export interface Stateful {
  stateDict(): unknown;
  loadStateDict(state: never): unknown;
}

export interface CheckpointState {
  model: StatefulModel;
  optimizer?: Stateful;
  scheduler?: Stateful;
  /** Epochs completed. */
  epoch?: number;
  /** Optimizer steps taken. */
  step?: number;
  /** The native RNG state; default: getRngState() now. */
  rng?: RngState;
  /** Anything JSON-serialisable (non-finite numbers are preserved). */
  extra?: unknown;
}

export interface LoadedCheckpoint {
  epoch: number;
  step: number;
  rng: RngState | null;
  extra: unknown;
  /** The file's raw metadata. */
  metadata: Record<string, string>;
}

export const CHECKPOINT_FORMAT = 'joule.checkpoint.v1';
const MODEL = 'model.';
const OPTIM = 'optim.';
const SCHED = 'sched.';

// ---- a JSON encoding that keeps tensors (by reference), Maps and non-finite numbers ----

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function encodeValue(value: unknown, prefix: string, tensors: Map<string, Tensor>, where: string, depth = 0): Json {
  if (depth > 32) fail('INVALID_ARGUMENT', `checkpoint: ${where} is nested too deeply (a cycle?)`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : { $number: String(value) };
  if (value instanceof Tensor) {
    if (value.isDisposed) fail('DISPOSED', `checkpoint: ${where} is a tensor that was disposed`);
    const name = prefix + where;
    tensors.set(name, value);
    return { $tensor: name };
  }
  if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, prefix, tensors, `${where}.${i}`, depth + 1));
  if (value instanceof Map) {
    return { $map: [...value.entries()].map(([k, v]) => [encodeValue(k, prefix, tensors, `${where}.key`, depth + 1), encodeValue(v, prefix, tensors, `${where}.${String(k)}`, depth + 1)]) };
  }
  if (typeof value === 'object' && (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)) {
    const out: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value as object)) {
      if (v === undefined) continue;
      out[k.startsWith('$') ? `$${k}` : k] = encodeValue(v, prefix, tensors, where ? `${where}.${k}` : k, depth + 1);
    }
    return out;
  }
  return fail('INVALID_ARGUMENT', `checkpoint: cannot store ${describe(value)} at '${where}' (plain objects, arrays, Maps, numbers, strings, booleans and tensors only)`);
}

function decodeValue(value: Json, tensors: Record<string, Tensor>, used: Set<string>, source: string): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => decodeValue(v, tensors, used, source));
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === '$tensor') {
    const name = value.$tensor;
    if (typeof name !== 'string' || !(name in tensors)) fail('CHECKPOINT_CORRUPT', `${source}: the metadata refers to a tensor ${describe(name)} that the file does not hold`);
    used.add(name);
    return tensors[name];
  }
  if (keys.length === 1 && keys[0] === '$number') return Number(value.$number);
  if (keys.length === 1 && keys[0] === '$map') {
    const entries = value.$map;
    if (!Array.isArray(entries)) fail('CHECKPOINT_CORRUPT', `${source}: a malformed Map in the metadata`);
    return new Map(entries.map((e) => {
      if (!Array.isArray(e) || e.length !== 2) fail('CHECKPOINT_CORRUPT', `${source}: a malformed Map entry in the metadata`);
      return [decodeValue(e[0], tensors, used, source), decodeValue(e[1], tensors, used, source)];
    }));
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.startsWith('$$') ? k.slice(1) : k] = decodeValue(v, tensors, used, source);
  return out;
}

function checkStateful(value: unknown, name: string, model = false): void {
  if (value === null || typeof value !== 'object' || typeof (value as Stateful).stateDict !== 'function' || typeof (value as Stateful).loadStateDict !== 'function') {
    fail('INVALID_ARGUMENT', `checkpoint: expected ${name} to have stateDict() and loadStateDict()${model ? ' (an nn.Module)' : ''}, got ${describe(value)}`);
  }
}

/**
 * Saves a checkpoint atomically (see io.safetensors.save). Model tensors are stored as
 * 'model.<name>', so the file also loads as plain weights in other tools.
 */
export function saveCheckpoint(path: string, state: CheckpointState): void {
  const s = checkOptions(state, 'state') as unknown as CheckpointState;
  for (const k of Object.keys(s)) {
    if (!['model', 'optimizer', 'scheduler', 'epoch', 'step', 'rng', 'extra'].includes(k)) fail('INVALID_ARGUMENT', `saveCheckpoint: unknown field '${k}'`);
  }
  checkStateful(s.model, 'model', true);
  if (s.optimizer !== undefined) checkStateful(s.optimizer, 'optimizer');
  if (s.scheduler !== undefined) checkStateful(s.scheduler, 'scheduler');
  const epoch = s.epoch === undefined ? 0 : checkInt(s.epoch, 'epoch', 0);
  const step = s.step === undefined ? 0 : checkInt(s.step, 'step', 0);
  const rng = s.rng ?? getRngState();
  if (!rng || typeof rng.seed !== 'string' || typeof rng.offset !== 'string') fail('INVALID_ARGUMENT', `saveCheckpoint: expected rng to be {seed, offset} from getRngState(), got ${describe(rng)}`);

  const tensors = new Map<string, Tensor>();
  const sd = s.model.stateDict();
  const entries = sd instanceof Map ? [...sd.entries()] : Object.entries(sd);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) fail('INVALID_ARGUMENT', `saveCheckpoint: model.stateDict()['${name}'] is ${describe(t)}, expected a Tensor`);
    tensors.set(MODEL + name, t);
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    'joule.format': CHECKPOINT_FORMAT,
    'joule.epoch': String(epoch),
    'joule.step': String(step),
    'joule.rng': JSON.stringify({ seed: rng.seed, offset: rng.offset }),
  };
  if (s.optimizer) metadata['joule.optimizer'] = JSON.stringify(encodeValue(s.optimizer.stateDict(), OPTIM, tensors, ''));
  if (s.scheduler) metadata['joule.scheduler'] = JSON.stringify(encodeValue(s.scheduler.stateDict(), SCHED, tensors, ''));
  if (s.extra !== undefined) metadata['joule.extra'] = JSON.stringify(encodeValue(s.extra, 'extra.', tensors, ''));
  safetensors.save(path, tensors, metadata);
}

export interface LoadCheckpointOptions {
  model: StatefulModel;
  optimizer?: Stateful;
  scheduler?: Stateful;
  /** Restore the native RNG state saved in the file (default true). */
  restoreRng?: boolean;
  /** Passed to model.loadStateDict (default true). */
  strict?: boolean;
}

function parseJson(text: string | undefined, key: string, source: string): Json | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    return fail('CHECKPOINT_CORRUPT', `${source}: metadata '${key}' is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Restores a checkpoint into the given model (and optimizer, scheduler) and the RNG; returns
 * the epoch, step and extra saved with it. The file is validated fully before anything changes
 * (CHECKPOINT_CORRUPT otherwise), and the tensors it loads are freed once copied.
 */
export function loadCheckpoint(path: string, options: LoadCheckpointOptions): LoadedCheckpoint {
  const o = checkOptions(options, 'options') as unknown as LoadCheckpointOptions;
  for (const k of Object.keys(o)) {
    if (!['model', 'optimizer', 'scheduler', 'restoreRng', 'strict'].includes(k)) fail('INVALID_ARGUMENT', `loadCheckpoint: unknown option '${k}'`);
  }
  checkStateful(o.model, 'model', true);
  if (o.optimizer !== undefined) checkStateful(o.optimizer, 'optimizer');
  if (o.scheduler !== undefined) checkStateful(o.scheduler, 'scheduler');
  const { tensors, metadata } = safetensors.load(path);
  try {
    const corrupt = (why: string): never => fail('CHECKPOINT_CORRUPT', `${path}: ${why}`);
    if (metadata['joule.format'] !== CHECKPOINT_FORMAT) corrupt(`not a Joule checkpoint (metadata 'joule.format' is ${describe(metadata['joule.format'])}, expected '${CHECKPOINT_FORMAT}')`);
    const epoch = Number(metadata['joule.epoch']);
    const step = Number(metadata['joule.step']);
    if (!Number.isSafeInteger(epoch) || epoch < 0) corrupt(`metadata 'joule.epoch' is ${describe(metadata['joule.epoch'])}`);
    if (!Number.isSafeInteger(step) || step < 0) corrupt(`metadata 'joule.step' is ${describe(metadata['joule.step'])}`);
    const rngJson = parseJson(metadata['joule.rng'], 'joule.rng', path) as { seed?: unknown; offset?: unknown } | undefined;
    if (rngJson !== undefined && (rngJson === null || typeof rngJson.seed !== 'string' || typeof rngJson.offset !== 'string')) corrupt(`metadata 'joule.rng' is not {seed, offset}`);
    const used = new Set<string>();
    const decode = (key: string) => {
      const j = parseJson(metadata[key], key, path);
      return j === undefined ? undefined : decodeValue(j, tensors, used, path);
    };
    const optimState = decode('joule.optimizer');
    const schedState = decode('joule.scheduler');
    const extra = decode('joule.extra');
    if (o.optimizer && optimState === undefined) corrupt('an optimizer was given, but the checkpoint holds no optimizer state');
    if (o.scheduler && schedState === undefined) corrupt('a scheduler was given, but the checkpoint holds no scheduler state');

    const modelDict: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(tensors)) if (name.startsWith(MODEL)) modelDict[name.slice(MODEL.length)] = t;
    o.model.loadStateDict(modelDict, { strict: o.strict ?? true });
    if (o.optimizer) o.optimizer.loadStateDict(optimState as never);
    if (o.scheduler) o.scheduler.loadStateDict(schedState as never);
    const rng = rngJson ? { seed: rngJson.seed as string, offset: rngJson.offset as string } : null;
    if (rng && o.restoreRng !== false) setRngState(rng);
    // Tensors that `extra` refers to go to the caller; every other loaded tensor was copied.
    const extraTensors = new Set<Tensor>();
    const collectExtra = (v: unknown) => {
      if (v instanceof Tensor) extraTensors.add(v);
      else if (Array.isArray(v)) v.forEach(collectExtra);
      else if (v instanceof Map) v.forEach(collectExtra);
      else if (v && typeof v === 'object') Object.values(v).forEach(collectExtra);
    };
    collectExtra(extra);
    for (const t of Object.values(tensors)) if (!extraTensors.has(t)) t.dispose();
    return { epoch, step, rng, extra, metadata };
  } catch (e) {
    for (const t of Object.values(tensors)) t.dispose();
    if (e instanceof JouleError) throw e;
    throw new JouleError('CHECKPOINT_CORRUPT', `${path}: ${(e as Error).message}`);
  }
}
