// Loads the addon and declares its surface. Everything native goes through this file.
import * as fs from 'fs';
import * as path from 'path';
import { ErrorCode, JouleError } from './errors';

/** An opaque reference to a tensor owned by the addon. */
export interface Handle {
  readonly __handle: unique symbol;
}

export type DTypeName = 'float32' | 'int32' | 'int8' | 'uint8';
export type Axes = number[];

export interface DeviceMemory {
  device: string;
  tensors: number;
  bytes: number;
  cachedBytes: number;
}

export interface BuildInfo {
  version: string;
  buildSystem: string;
  cpu: {
    model: string;
    avx2: boolean;
    fma: boolean;
    avx512f: boolean;
    avx512bw: boolean;
    avx512vl: boolean;
    avx512vnni: boolean;
    avx512bf16: boolean;
    avxvnni: boolean;
    isa: string;
  };
  cuda: {
    compiled: boolean;
    architectures: string;
    runtimeVersion: number;
    deviceCount: number;
    reason: string;
    devices: string[];
  };
}

/** An opaque reference to a decoder built by decoderCreate. */
export interface DecoderHandle {
  readonly __decoder: unique symbol;
}

export interface DecoderNormSpec {
  weight: Handle | null;
  bias: Handle | null;
  eps: number;
}

/** A float32 Linear ({weight, bias}) or an int8 one ({packed, colSums, wScale, bias, inputScale, outlierThreshold}). */
export interface DecoderLinearSpec {
  weight?: Handle;
  packed?: Handle;
  colSums?: Handle;
  wScale?: Handle;
  bias: Handle | null;
  inputScale?: number;
  outlierThreshold?: number;
}

export interface DecoderSpec {
  heads: number;
  causal: boolean;
  tokenEmbedding: Handle;
  positionEmbedding: Handle;
  finalNorm: DecoderNormSpec;
  lmHead: DecoderLinearSpec;
  layers: {
    ln1: DecoderNormSpec;
    ln2: DecoderNormSpec;
    qkv: DecoderLinearSpec;
    proj: DecoderLinearSpec;
    fc1: DecoderLinearSpec;
    fc2: DecoderLinearSpec;
    cacheK: Handle;
    cacheV: Handle;
  }[];
}

export interface Native {
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  isHandle(value: unknown): boolean;
  meta(h: Handle): [number[], DTypeName, string];
  layout(h: Handle): { strides: number[]; offset: number; contiguous: boolean };
  sameStorage(a: Handle, b: Handle): boolean;
  dispose(h: Handle): void;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, shape: number[], dtype: DTypeName, device: string): Handle;
  toBuffer(h: Handle): ArrayBuffer;
  item(h: Handle): number;

  full(shape: number[], value: number, dtype: DTypeName, device: string): Handle;
  arange(start: number, end: number, step: number, dtype: DTypeName, device: string): Handle;
  linspace(start: number, end: number, steps: number, dtype: DTypeName, device: string): Handle;
  eye(rows: number, cols: number, dtype: DTypeName, device: string): Handle;
  manualSeed(seed: number): void;
  rngState(): { seed: string; offset: string };
  setRngState(seed: string, offset: string): void;
  rand(shape: number[], device: string): Handle;
  randn(shape: number[], device: string): Handle;
  randint(low: number, high: number, shape: number[], device: string): Handle;
  bernoulliMask(shape: number[], keep: number, device: string): Handle;

  reshape(h: Handle, shape: number[]): Handle;
  view(h: Handle, shape: number[]): Handle;
  permute(h: Handle, axes: number[]): Handle;
  transpose(h: Handle, a: number, b: number): Handle;
  slice(h: Handle, axis: number, start: number, end: number, step: number): Handle;
  select(h: Handle, axis: number, index: number): Handle;
  expand(h: Handle, shape: number[]): Handle;
  squeeze(h: Handle, axes: number[]): Handle;
  unsqueeze(h: Handle, axis: number): Handle;
  contiguous(h: Handle): Handle;
  clone(h: Handle): Handle;
  cast(h: Handle, dtype: DTypeName): Handle;
  to(h: Handle, device: string): Handle;
  copyInto(dst: Handle, src: Handle): void;
  concat(hs: Handle[], axis: number): Handle;

  binary(op: string, a: Handle, b: Handle): Handle;
  binaryScalar(op: string, a: Handle, s: number, scalarFirst: boolean): Handle;
  binaryInplace(op: string, a: Handle, b: Handle): void;
  binaryScalarInplace(op: string, a: Handle, s: number): void;
  unary(op: string, a: Handle): Handle;
  unaryInplace(op: string, a: Handle): void;
  clamp(a: Handle, min: number, max: number): Handle;
  where(cond: Handle, a: Handle, b: Handle): Handle;
  fill(h: Handle, value: number): void;

  reduce(op: string, a: Handle, axes: Axes, keepDims: boolean): Handle;
  variance(a: Handle, axes: Axes, correction: number, keepDims: boolean): Handle;
  logsumexp(a: Handle, axes: Axes, keepDims: boolean): Handle;
  softmax(a: Handle, axis: number): Handle;
  logSoftmax(a: Handle, axis: number): Handle;
  matmul(a: Handle, b: Handle): Handle;
  indexSelect(a: Handle, axis: number, index: Handle): Handle;
  gather(a: Handle, axis: number, index: Handle): Handle;
  scatterAdd(a: Handle, axis: number, index: Handle, src: Handle): Handle;
  /** a with src's slices added at 1-D index along axis (repeated indices accumulate in order). */
  indexAdd(a: Handle, axis: number, index: Handle, src: Handle): Handle;

  addmm_(c: Handle, a: Handle, b: Handle, alpha: number, beta: number, bias: Handle | null, activation: 'none' | 'relu' | 'gelu'): void;
  linear(x: Handle, w: Handle, bias: Handle | null, activation: 'none' | 'relu' | 'gelu'): Handle;
  // nn/optim (cpp/napi/nn_bindings.cpp)
  /** [y] for 'none'/'relu' (relu's backward uses y), [y, preActivation] for 'gelu'. */
  linearTrain(x: Handle, w: Handle, bias: Handle | null, activation: 'none' | 'relu' | 'gelu'): Handle[];
  /**
   * [dx, dw, db]; dwInto/dbInto receive their gradient (then null is returned for it), added to
   * what they hold when accumulateDw/accumulateDb, else written over it.
   */
  linearBackward(dy: Handle, x: Handle, w: Handle, saved: Handle | null, activation: 'none' | 'relu' | 'gelu',
    needDx: boolean, needDw: boolean, needDb: boolean, dwInto: Handle | null, dbInto: Handle | null,
    accumulateDw: boolean, accumulateDb: boolean): (Handle | null)[];
  /** [loss, lse]: loss [] or [N, d...] for 'none'; lse is kept for the backward. */
  crossEntropy(logits: Handle, target: Handle, labelSmoothing: number, ignoreIndex: number, reduction: 'none' | 'mean' | 'sum'): Handle[];
  crossEntropyBackward(grad: Handle, logits: Handle, target: Handle, lse: Handle, labelSmoothing: number, ignoreIndex: number,
    reduction: 'none' | 'mean' | 'sum'): Handle;
  /** [y, mean, rstd] */
  layerNorm(x: Handle, weight: Handle | null, bias: Handle | null, eps: number): Handle[];
  /** [dx, dweight, dbias] */
  layerNormBackward(dy: Handle, x: Handle, mean: Handle, rstd: Handle, weight: Handle | null, needDx: boolean, needAffine: boolean): (Handle | null)[];
  sgdStep(params: Handle[], grads: Handle[], bufs: Handle[], initialised: boolean[], lr: number, momentum: number,
    dampening: number, weightDecay: number, nesterov: boolean, maximize: boolean): void;
  adamStep(params: Handle[], grads: Handle[], expAvg: Handle[], expAvgSq: Handle[], maxExpAvgSq: Handle[], steps: number[],
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, decoupled: boolean, amsgrad: boolean, maximize: boolean): void;
  totalNorm(tensors: Handle[], normType: number): number;
  scaleInplace(tensors: Handle[], factor: number): void;

  // int8 quantization (cpp/napi/quant_bindings.cpp)
  /** [scale] (symmetric) or [scale, zeroPoint int32]; axis -1 = per tensor. */
  quantParams(x: Handle, axis: number, symmetric: boolean, qmin: number, qmax: number): Handle[];
  quantize(x: Handle, scale: Handle, zeroPoint: Handle | null, axis: number, qmin: number, qmax: number, dtype: 'int8' | 'uint8'): Handle;
  dequantize(q: Handle, scale: Handle, zeroPoint: Handle | null, axis: number): Handle;
  /** [packed int8 [ceil(N/64), ceil(K/4), 256], colSums int32 [N]] */
  quantPackWeight(w: Handle): Handle[];
  quantUnpackWeight(packed: Handle, n: number, k: number): Handle;
  quantLinear(x: Handle, packed: Handle, colSums: Handle, wScale: Handle, bias: Handle | null, activation: 'none' | 'relu' | 'gelu',
    inputScale: number, outlierThreshold: number): Handle;
  quantMatmulInt8(a: Handle, aScale: Handle | null, packed: Handle, colSums: Handle, wScale: Handle | null, bias: Handle | null,
    activation: 'none' | 'relu' | 'gelu'): Handle;
  quantLinearReference(a: Handle, aScale: Handle | null, w: Handle, wScale: Handle | null, bias: Handle | null,
    activation: 'none' | 'relu' | 'gelu', inputScale: number): Handle;
  quantKernel(): string;

  // fused attention (cpp/napi/attention_bindings.cpp); scale null = 1/sqrt(D)
  /** [out [B, H, Tq, D] (a view of [B, Tq, H, D] memory), lse [B, H, Tq]] */
  attentionForward(q: Handle, k: Handle, v: Handle, causal: boolean, scale: number | null): Handle[];
  /** [dq, dk, dv]; an xInto receives its gradient (overwritten) and null is returned for it. */
  attentionBackward(dout: Handle, q: Handle, k: Handle, v: Handle, out: Handle, lse: Handle, causal: boolean, scale: number | null,
    dqInto: Handle | null, dkInto: Handle | null, dvInto: Handle | null): (Handle | null)[];
  /** Appends the new positions of qkv [B, T, 3C] to the caches [B, H, cap, D] at `length` and attends: [B, T, C]. */
  attentionQkvCached(qkv: Handle, cacheK: Handle, cacheV: Handle, length: number, heads: number, causal: boolean, scale: number | null): Handle;

  // the composed GPT decoder step (cpp/napi/decoder_bindings.cpp)
  decoderCreate(spec: DecoderSpec): DecoderHandle;
  /** ids int32 [B, T] at positions [start, start + T) -> logits of the last position [B, vocab]. */
  decoderStep(decoder: DecoderHandle, ids: Handle, start: number): Handle;
  decoderRelease(decoder: DecoderHandle): void;

  memory(): DeviceMemory[];
  releaseCachedMemory(): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setIsa(isa: string): void;
  getIsa(): string;
  buildInfo(): BuildInfo;
  cpuPeak(threads: number, seconds: number): number;
  gpuEnergy(): { ok: boolean; error: string; joules: number[]; names: string[] };
  flopCount(): number;
  libraryLoadError(soname: 'libnccl.so.2' | 'libnvidia-ml.so.1'): string;
  // dist (cpp/napi/dist_bindings.cpp): the rendezvous store, the default process group, collectives
  distStoreServe(host: string, port: number, secret: string): [number, number];
  distStoreServerStop(server: number): void;
  distStoreConnect(host: string, port: number, secret: string, timeoutMs: number): number;
  distStoreClose(store: number): void;
  distStoreSet(store: number, key: string, value: string | Uint8Array): void;
  distStoreGet(store: number, key: string, timeoutMs?: number): Buffer;
  distStoreAdd(store: number, key: string, delta: number): number;
  distStoreCompareSet(store: number, key: string, expected: string | Uint8Array, desired: string | Uint8Array): Buffer;
  distStoreWait(store: number, keys: string[], timeoutMs?: number): void;
  distStoreCheck(store: number, keys: string[]): boolean;
  distStoreDelete(store: number, key: string): boolean;
  distInit(options: { backend: 'gloo' | 'nccl'; rank: number; worldSize: number; masterAddr: string; masterPort: number;
    secret: string; timeoutMs: number; hostStore: boolean; device: number; hostname: string }): string;
  distDestroy(): void;
  distInfo(): { initialized: boolean; rank: number; worldSize: number; backend: string | null; glooCompiled: boolean; blockingSendBytes: number; ncclUnavailableReason: string };
  distAllReduce(h: Handle, op: string, async: false, verify: boolean): void;
  distAllReduce(h: Handle, op: string, async: true, verify: boolean): Promise<void>;
  distAllReduceCoalesced(hs: Handle[], op: string, async: false, verify: boolean): void;
  distAllReduceCoalesced(hs: Handle[], op: string, async: true, verify: boolean): Promise<void>;
  distBroadcast(h: Handle, root: number, async: false, verify: boolean): void;
  distBroadcast(h: Handle, root: number, async: true, verify: boolean): Promise<void>;
  distAllGather(h: Handle, async: false, verify: boolean): Handle;
  distAllGather(h: Handle, async: true, verify: boolean): Promise<Handle>;
  distReduceScatter(h: Handle, op: string, async: false, verify: boolean): Handle;
  distReduceScatter(h: Handle, op: string, async: true, verify: boolean): Promise<Handle>;
  distBarrier(async: false, verify: boolean): void;
  distBarrier(async: true, verify: boolean): Promise<void>;
}

/** The folder holding package.json, from lib/ (tsx) or dist/lib/ (compiled). */
export function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'cpp'))) return dir;
    dir = path.dirname(dir);
  }
  return path.join(__dirname, '..');
}

function load(): Native {
  const root = packageRoot();
  let addon: Native;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require('node-gyp-build')(root) as Native;
  } catch (e) {
    throw new JouleError(
      'BACKEND_UNAVAILABLE',
      `the Joule native addon could not be loaded from ${root}: ${(e as Error).message}. ` +
        'Run `npm run build:native` (needs a C++17 compiler and cmake or node-gyp).',
    );
  }
  addon.setErrorFactory((code, message) => new JouleError(code as ErrorCode, message));
  return addon;
}

export const native: Native = load();
