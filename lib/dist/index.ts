// Data-parallel distributed training: one process per rank (per GPU with NCCL), started by
// `joule launch`. init() joins the job described by the environment (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT, JOULE_SECRET); collectives then act on tensors of every rank.
//
// The rendezvous store is hosted by the launcher (`joule launch` sets JOULE_STORE_HOSTED=1);
// when the ranks were started some other way, rank 0 hosts it on MASTER_ADDR:MASTER_PORT.
// A rank that dies or stalls makes the collectives of the others fail with DIST_TIMEOUT within
// timeoutMs; after that the group is broken and every later collective fails at once.
import * as os from 'os';
import { checkInt, checkOptions, describe, fail } from '../errors';
import { native } from '../native';
import { Tensor, wrap } from '../tensor';
import { StoreServer } from './store';

export { Store, StoreServer } from './store';
export type { StoreOptions } from './store';
export { DistributedDataParallel } from './ddp';
export type { DistributedDataParallelOptions } from './ddp';
export { DistributedSampler } from './sampler';
export { DistributedDataLoader } from './loader';
export type { DistributedDataLoaderOptions } from './loader';
export { prepareTrainer, reduceMean } from './trainer';
export type { PrepareTrainerOptions, PreparedTrainer } from './trainer';
export type { DistributedSamplerOptions } from './sampler';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface InitOptions {
  /** 'auto' (default): nccl when CUDA and NCCL are usable, else gloo. */
  backend?: 'auto' | Backend;
  /** How long a collective (or the rendezvous) may wait for the other ranks (default 60000 ms). */
  timeoutMs?: number;
  /** Overrides of the environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, JOULE_SECRET). */
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  secret?: string;
  /** The GPU of this rank for nccl (default LOCAL_RANK). */
  device?: number;
}

const OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];
let hostedServer: StoreServer | null = null;

function envInt(name: string, fallback: number | undefined): number {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) fail('INVALID_ARGUMENT', `dist.init: the environment variable ${name} is not set (start the script with \`joule launch\`)`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail('INVALID_ARGUMENT', `dist.init: ${name} must be a non-negative integer, got '${v}'`);
  return n;
}

function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr.startsWith('127.') || addr === '::1';
}

// The address the other ranks reach this one at (Gloo's TCP device binds it).
function localAddress(masterAddr: string): string {
  if (process.env.JOULE_GLOO_HOST) return process.env.JOULE_GLOO_HOST;
  if (isLoopback(masterAddr)) return '127.0.0.1';
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return os.hostname();
}

/** Why the nccl backend cannot be used here ('' when it can). */
export function ncclUnavailableReason(): string {
  return native.distInfo().ncclUnavailableReason;
}

/** Whether the gloo backend was compiled into the addon (it needs libgloo-dev at build time). */
export function glooAvailable(): boolean {
  return native.distInfo().glooCompiled;
}

/** Joins the job: connects to the rendezvous store and the other ranks. Returns the backend used. */
export function init(options: InitOptions = {}): Backend {
  const o = checkOptions(options, 'dist.init options') as InitOptions;
  if (native.distInfo().initialized) fail('INVALID_ARGUMENT', 'dist.init: already initialised (call dist.destroy() first)');
  const requested = o.backend ?? 'auto';
  if (!['auto', 'gloo', 'nccl'].includes(requested)) fail('INVALID_ARGUMENT', `dist.init: expected backend 'auto', 'gloo' or 'nccl', got ${describe(requested)}`);
  const timeoutMs = checkInt(o.timeoutMs ?? 60000, 'timeoutMs', 1);
  const worldSize = o.worldSize ?? envInt('WORLD_SIZE', 1);
  const rank = o.rank ?? envInt('RANK', worldSize === 1 ? 0 : undefined);
  const masterAddr = o.masterAddr ?? process.env.MASTER_ADDR ?? '127.0.0.1';
  let masterPort = o.masterPort ?? envInt('MASTER_PORT', worldSize === 1 ? 0 : 29500);
  const secret = o.secret ?? process.env.JOULE_SECRET ?? '';
  const device = o.device ?? envInt('JOULE_LOCAL_DEVICE', envInt('LOCAL_RANK', 0));
  checkInt(worldSize, 'worldSize', 1);
  checkInt(rank, 'rank', 0);
  if (rank >= worldSize) fail('INVALID_ARGUMENT', `dist.init: RANK (${rank}) must be less than WORLD_SIZE (${worldSize})`);
  let backend: Backend;
  if (requested === 'auto') backend = ncclUnavailableReason() === '' ? 'nccl' : 'gloo';
  else backend = requested;
  const hostStore = rank === 0 && process.env.JOULE_STORE_HOSTED !== '1';
  let server: StoreServer | null = null;
  if (hostStore) {
    server = new StoreServer({ host: masterAddr, port: masterPort, secret });
    masterPort = server.port;
  }
  try {
    native.distInit({ backend, rank, worldSize, masterAddr, masterPort, secret, timeoutMs, hostStore: false, device, hostname: localAddress(masterAddr) });
  } catch (e) {
    server?.close();
    throw e;
  }
  hostedServer = server;
  return backend;
}

/** Leaves the job: stops the communication thread (after the queued collectives) and closes the connections. */
export function destroy(): void {
  native.distDestroy();
  hostedServer?.close();
  hostedServer = null;
}

export function isInitialized(): boolean {
  return native.distInfo().initialized;
}
/** This process's rank (0 when not initialised). */
export function rank(): number {
  return native.distInfo().rank;
}
/** The number of ranks (1 when not initialised). */
export function worldSize(): number {
  return native.distInfo().worldSize;
}
/**
 * The most bytes an all-reduce sends in one blocking write, or 0. With two gloo ranks Joule
 * all-reduces on blocking sockets (Gloo's halving-doubling, in pieces of at most 1 MiB), which
 * needs each send to fit the socket's buffer (net.core.wmem_max; JOULE_GLOO_BLOCKING_BYTES can
 * lower it, 0 turns it off); otherwise all-reduces go through Gloo's event loop (0 here).
 */
export function blockingSendBytes(): number {
  return native.distInfo().blockingSendBytes;
}
export function backend(): Backend | null {
  return native.distInfo().backend as Backend | null;
}
/** LOCAL_RANK: the rank on this machine (the GPU index with one process per GPU). */
export function localRank(): number {
  return envInt('LOCAL_RANK', 0);
}

function checkTensor(t: unknown, what: string): Tensor {
  if (!(t instanceof Tensor)) fail('INVALID_ARGUMENT', `${what}: expected a Tensor, got ${describe(t)}`);
  return t;
}
function checkOp(op: unknown, what: string): ReduceOp {
  if (!OPS.includes(op as ReduceOp)) fail('INVALID_ARGUMENT', `${what}: expected op 'sum', 'avg', 'max' or 'min', got ${describe(op)}`);
  return op as ReduceOp;
}

/** Reduces t over all ranks, in place (avg divides the sum by the world size; int32 truncates). Returns t. */
export function allReduce(t: Tensor, op: ReduceOp = 'sum'): Tensor {
  native.distAllReduce(checkTensor(t, 'allReduce').handle, checkOp(op, 'allReduce'), false, true);
  return t;
}
/** allReduce off the JavaScript thread; t must not be used until the Promise settles. */
export async function allReduceAsync(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
  await native.distAllReduce(checkTensor(t, 'allReduceAsync').handle, checkOp(op, 'allReduceAsync'), true, true);
  return t;
}
/** Reduces several tensors (one dtype) as one flat buffer, in place. */
export function allReduceCoalesced(ts: Tensor[], op: ReduceOp = 'sum'): void {
  native.distAllReduceCoalesced(ts.map((t) => checkTensor(t, 'allReduceCoalesced').handle), checkOp(op, 'allReduceCoalesced'), false, true);
}
export async function allReduceCoalescedAsync(ts: Tensor[], op: ReduceOp = 'sum'): Promise<void> {
  await native.distAllReduceCoalesced(ts.map((t) => checkTensor(t, 'allReduceCoalescedAsync').handle), checkOp(op, 'allReduceCoalescedAsync'), true, true);
}
/** Copies rank src's t into t on every rank, in place. Returns t. */
export function broadcast(t: Tensor, src = 0): Tensor {
  native.distBroadcast(checkTensor(t, 'broadcast').handle, checkInt(src, 'src', 0), false, true);
  return t;
}
export async function broadcastAsync(t: Tensor, src = 0): Promise<Tensor> {
  await native.distBroadcast(checkTensor(t, 'broadcastAsync').handle, checkInt(src, 'src', 0), true, true);
  return t;
}
/** Every rank's t, stacked: shape [worldSize, ...t.shape]. */
export function allGather(t: Tensor): Tensor {
  return wrap(native.distAllGather(checkTensor(t, 'allGather').handle, false, true));
}
export async function allGatherAsync(t: Tensor): Promise<Tensor> {
  return wrap(await native.distAllGather(checkTensor(t, 'allGatherAsync').handle, true, true));
}
/** Reduces t (first dimension a multiple of worldSize) over all ranks and returns this rank's slice of dim 0. */
export function reduceScatter(t: Tensor, op: ReduceOp = 'sum'): Tensor {
  return wrap(native.distReduceScatter(checkTensor(t, 'reduceScatter').handle, checkOp(op, 'reduceScatter'), false, true));
}
export async function reduceScatterAsync(t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
  return wrap(await native.distReduceScatter(checkTensor(t, 'reduceScatterAsync').handle, checkOp(op, 'reduceScatterAsync'), true, true));
}
/** Returns when every rank has reached it. */
export function barrier(): void {
  native.distBarrier(false, true);
}
export async function barrierAsync(): Promise<void> {
  await native.distBarrier(true, true);
}
/** @internal Waits until every collective queued so far has run; throws if one failed. */
export function flush(): void {
  native.distAllReduceCoalesced([], 'sum', false, false);
}
