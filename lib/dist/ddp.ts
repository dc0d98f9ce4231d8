// DistributedDataParallel: every rank holds a replica of the model and trains it on its own
// shard of each batch; gradients are averaged over the ranks so that the replicas stay equal.
//
// At wrap, rank 0's parameters and buffers are broadcast. Gradients are averaged in flat
// buckets (about bucketMB each, filled in reverse parameter order, the order backward produces
// them): a hook (autograd's registerGradReadyHook) fires as soon as backward has finished a
// parameter's gradient, and when a bucket's last gradient is in, its all-reduce starts on the
// communication thread while backward goes on. Each bucket is one tensor, reduced in place, and
// every parameter's .grad is a view of it (PyTorch's gradient_as_bucket_view): backward makes new
// gradients in the buckets (autograd's setGradHome) and fused ops write them there directly, so
// nothing is copied in or out; a gradient made elsewhere (assigned by the caller) is copied in
// when its bucket is reduced. Before optimizer.step(), await synchronize()
// (or call finishGradients(), which blocks): the remaining buckets are reduced and every
// averaged gradient is in place. Inside noSync(fn) gradients only accumulate locally
// (gradient accumulation); the next synchronised backward reduces the accumulated sums.
import { registerGradReadyHook, setGradHome } from '../autograd';
import { describe, fail, JouleError } from '../errors';
import { native } from '../native';
import { Tensor, wrap } from '../tensor';
import * as dist from './index';

export interface DistributedDataParallelOptions {
  /** The size of a gradient bucket in MiB (default 25). */
  bucketMB?: number;
  /** Broadcast rank 0's buffers (running statistics) at wrap (default true). */
  broadcastBuffers?: boolean;
  /**
   * Reduce the bucket that completes last (when backward is over, so nothing is left to overlap)
   * in synchronize() on the calling thread instead of the communication thread: no thread
   * hand-offs, but synchronize() blocks for that one all-reduce (default true).
   */
  inlineLastBucket?: boolean;
}

/** What DistributedDataParallel needs of a model (nn.Module satisfies it). */
export interface DdpModel {
  forward(...inputs: unknown[]): unknown;
  parameters(): Tensor[];
  buffers?(): Tensor[];
  namedParameters?(): [string, Tensor][];
  train(mode?: boolean): unknown;
  eval(): unknown;
  training: boolean;
  stateDict(): Record<string, Tensor>;
  loadStateDict(dict: Record<string, Tensor>, options?: { strict?: boolean }): unknown;
  zeroGrad?(setToNone?: boolean): void;
}

interface Bucket {
  params: Tensor[];
  /** Element offset of each parameter's gradient in flat. */
  offsets: number[];
  size: number;
  /** The gradients side by side (see flatOf; null until first used and after dispose()). */
  flat: Tensor | null;
  ready: number;
  launched: boolean;
}

export class DistributedDataParallel {
  readonly module: DdpModel;
  readonly bucketBytes: number;
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, Bucket>();
  private readonly seen = new Set<Tensor>();
  private readonly removers: (() => void)[] = [];
  private pending: Promise<void>[] = [];
  private error: unknown = null;
  private syncEnabled = true;
  private active = false;
  private launchedCount = 0;
  private readonly inlineLast: boolean;

  constructor(model: DdpModel, options: DistributedDataParallelOptions = {}) {
    if (!model || typeof model.parameters !== 'function' || typeof model.forward !== 'function') {
      fail('INVALID_ARGUMENT', `DistributedDataParallel: expected a model with forward() and parameters(), got ${describe(model)}`);
    }
    if (!dist.isInitialized()) fail('INVALID_ARGUMENT', 'DistributedDataParallel: call dist.init() first');
    const mb = options.bucketMB ?? 25;
    if (typeof mb !== 'number' || !(mb > 0)) fail('INVALID_ARGUMENT', `DistributedDataParallel: bucketMB must be a positive number, got ${describe(mb)}`);
    this.module = model;
    this.inlineLast = options.inlineLastBucket !== false;
    this.bucketBytes = Math.max(4, Math.floor(mb * 1024 * 1024));
    const params = model.parameters().filter((p) => p.requiresGrad);

    // The same model and buckets on every rank (the buckets' all-reduces skip the per-call check
    // of the dist functions): compare the parameter count, total size, sizes in order and bucket size.
    let sizes = 0;
    for (const p of params) sizes = (Math.imul(sizes, 31) + p.size) | 0;
    const mine = [params.length, params.reduce((a, p) => a + p.size, 0) % 2 ** 31, sizes & 0x7fffffff, this.bucketBytes % 2 ** 31];
    const sig = wrap(native.fromBuffer(new Int32Array(mine), [mine.length], 'int32', 'cpu'));
    const reduced = (op: 'min' | 'max') => {
      const t = dist.allReduce(sig.clone(), op);
      const values = t.data();
      t.dispose();
      return values;
    };
    const lo = reduced('min');
    const hi = reduced('max');
    sig.dispose();
    if (lo[0] !== hi[0] || lo[1] !== hi[1] || lo[2] !== hi[2]) {
      fail('INVALID_ARGUMENT', `DistributedDataParallel: the ranks' models differ (${lo[0]}..${hi[0]} parameters, ${lo[1]}..${hi[1]} elements` +
        `${lo[2] !== hi[2] ? ', parameter sizes in a different order' : ''})`);
    }
    if (lo[3] !== hi[3]) fail('INVALID_ARGUMENT', `DistributedDataParallel: the ranks' bucketMB differ (${lo[3]}..${hi[3]} bytes)`);
    // Rank 0's state everywhere.
    for (const p of params) dist.broadcast(p, 0);
    if (options.broadcastBuffers !== false && typeof model.buffers === 'function') {
      for (const b of model.buffers()) if (b.dtype === 'float32' || b.dtype === 'int32') dist.broadcast(b, 0);
    }

    // Buckets in reverse order: the last layers' gradients are ready first.
    const newBucket = (): Bucket => ({ params: [], offsets: [], size: 0, flat: null, ready: 0, launched: false });
    let current = newBucket();
    for (const p of params.slice().reverse()) {
      if (current.params.length > 0 && (current.size + p.size) * 4 > this.bucketBytes) {
        this.buckets.push(current);
        current = newBucket();
      }
      current.params.push(p);
      current.offsets.push(current.size);
      current.size += p.size;
      this.bucketOf.set(p, current);
    }
    if (current.params.length) this.buckets.push(current);
    for (const b of this.buckets) {
      b.params.forEach((p, i) => {
        this.removers.push(setGradHome(p, () => this.viewOf(this.flatOf(b), b.offsets[i], p)));
      });
    }
    for (const p of params) this.removers.push(registerGradReadyHook(p, (leaf) => this.onGradReady(leaf)));
  }

  /** The number of gradient buckets. */
  get numBuckets(): number {
    return this.buckets.length;
  }

  /** Buckets whose all-reduce has started since the last synchronize() (during backward: all but the last). */
  get launchedBuckets(): number {
    return this.launchedCount;
  }

  forward(...inputs: unknown[]): unknown {
    return this.module.forward(...inputs);
  }
  parameters(): Tensor[] {
    return this.module.parameters();
  }
  namedParameters(): [string, Tensor][] {
    if (!this.module.namedParameters) fail('INVALID_ARGUMENT', 'DistributedDataParallel: the wrapped model has no namedParameters()');
    return this.module.namedParameters();
  }
  buffers(): Tensor[] {
    return this.module.buffers ? this.module.buffers() : [];
  }
  get training(): boolean {
    return this.module.training;
  }
  train(mode = true): this {
    this.module.train(mode);
    return this;
  }
  eval(): this {
    this.module.eval();
    return this;
  }
  stateDict(): Record<string, Tensor> {
    return this.module.stateDict();
  }
  loadStateDict(dict: Record<string, Tensor>, options?: { strict?: boolean }): unknown {
    return this.module.loadStateDict(dict, options);
  }
  zeroGrad(setToNone = true): void {
    if (this.module.zeroGrad) this.module.zeroGrad(setToNone);
    else for (const p of this.parameters()) if (p.grad) { p.grad.dispose(); p.grad = null; }
  }

  /** Runs fn with gradient averaging off: backward passes inside only accumulate gradients locally. */
  noSync<T>(fn: () => T): T {
    const prev = this.syncEnabled;
    this.syncEnabled = false;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this.syncEnabled = prev;
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => (this.syncEnabled = prev)) as unknown as T;
    }
    this.syncEnabled = prev;
    return result;
  }

  private onGradReady(p: Tensor): void {
    if (!this.syncEnabled) return;
    const bucket = this.bucketOf.get(p);
    if (!bucket || bucket.launched || this.seen.has(p)) return;
    this.seen.add(p);
    this.active = true;
    bucket.ready++;
    if (bucket.ready === bucket.params.length) {
      // The last bucket waits for synchronize() (see inlineLastBucket).
      if (this.inlineLast && this.launchedCount === this.buckets.length - 1) return;
      this.launch(bucket, true);
    }
  }

  /**
   * Gathers the bucket's gradients into its flat tensor and makes each parameter's .grad a view
   * of it; returns the flat tensor. A gradient that already is its view (accumulated in place)
   * stays; a missing one (parameter unused in this forward) becomes zeros, so that every rank
   * reduces the same buffer.
   */
  private gather(bucket: Bucket): Tensor {
    const flat = this.flatOf(bucket);
    bucket.params.forEach((p, i) => {
      const off = bucket.offsets[i];
      const g = p.grad;
      if (g !== null && !g.isDisposed && this.isBucketView(g, flat, off)) return;
      const view = this.viewOf(flat, off, p).keep();
      if (g === null || g.isDisposed) {
        native.fill(view.handle, 0);
      } else {
        native.copyInto(view.handle, g.handle);
        g.dispose();
      }
      p.grad = view;
    });
    return flat;
  }

  /** The bucket's tensor, made on first use (on the parameters' device). */
  private flatOf(bucket: Bucket): Tensor {
    if (bucket.flat === null || bucket.flat.isDisposed) {
      bucket.flat = wrap(native.full([bucket.size], 0, 'float32', bucket.params[0].device)).keep();
    }
    return bucket.flat;
  }

  /** Parameter p's part of a bucket, shaped like p. */
  private viewOf(flat: Tensor, offset: number, p: Tensor): Tensor {
    const part = native.slice(flat.handle, 0, offset, offset + p.size, 1);
    const view = wrap(native.reshape(part, p.shape));
    native.dispose(part);
    return view;
  }

  private isBucketView(g: Tensor, flat: Tensor, offset: number): boolean {
    if (!native.sameStorage(g.handle, flat.handle)) return false;
    const layout = native.layout(g.handle);
    return layout.contiguous && layout.offset === native.layout(flat.handle).offset + offset;
  }

  // Only a step's first bucket is checked against the other ranks' calls (verify): the buckets
  // were agreed when wrapping, so what remains to catch is a rank out of step (one more backward
  // pass than the others, which then are in some other collective: unchecked, Gloo would abort
  // their process). One small round trip per step instead of one per bucket.
  private launch(bucket: Bucket, async: boolean): void {
    const verify = this.launchedCount === 0;
    bucket.launched = true;
    this.launchedCount++;
    const flat = this.gather(bucket);
    if (async) {
      const done = native.distAllReduce(flat.handle, 'avg', true, verify);
      done.catch((e: unknown) => {
        if (this.error === null) this.error = e;
      });
      this.pending.push(done);
    } else {
      native.distAllReduce(flat.handle, 'avg', false, verify);
    }
  }

  private static outOfStep(e: unknown): unknown {
    if (!(e instanceof JouleError) || e.code !== 'DIST_MISMATCH') return e;
    return new JouleError('DIST_MISMATCH', 'DistributedDataParallel: the ranks are out of step: this rank is averaging gradients while ' +
      'another is in a different collective (every rank must run the same number of backward passes; DistributedSampler ' +
      `gives every rank the same number of batches). ${e.message}`);
  }

  private reset(): void {
    for (const b of this.buckets) {
      b.ready = 0;
      b.launched = false;
    }
    this.seen.clear();
    this.pending = [];
    this.active = false;
    this.launchedCount = 0;
  }

  /** Waits until every gradient is averaged over the ranks; call after backward(), before optimizer.step(). */
  async synchronize(): Promise<void> {
    if (!this.active) return;
    const pending = this.pending;
    try {
      const rest = this.buckets.filter((b) => !b.launched);
      // Queued behind the pending buckets, in the same order on every rank.
      const inline = this.inlineLast && rest.length === 1 && rest[0].ready === rest[0].params.length;
      for (const b of rest) this.launch(b, !inline);
      await Promise.all(this.pending);
    } catch (e) {
      throw DistributedDataParallel.outOfStep(e);
    } finally {
      if (pending === this.pending) this.reset();
    }
  }

  /** synchronize(), blocking the JavaScript thread instead of returning a Promise. */
  finishGradients(): void {
    if (!this.active) return;
    try {
      for (const b of this.buckets) if (!b.launched) this.launch(b, false);
      dist.flush();
    } catch (e) {
      throw DistributedDataParallel.outOfStep(e);
    } finally {
      this.reset();
    }
  }

  /**
   * The optimizer, with step() preceded by finishGradients(): for loops that call
   * optimizer.step() right after backward() (the Trainer). Everything else is the optimizer's.
   */
  syncOptimizer<O extends { step(): void }>(optimizer: O): O {
    return new Proxy(optimizer, {
      get: (target, prop, receiver) => {
        if (prop === 'step') {
          return () => {
            this.finishGradients();
            target.step();
          };
        }
        const v = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  }

  /** Removes the gradient hooks (the model keeps working unsynchronised). */
  dispose(): void {
    for (const r of this.removers) r();
    this.removers.length = 0;
    // The parameters' gradients may still be views of the buckets: they keep their memory.
    for (const b of this.buckets) {
      if (b.flat !== null && !b.flat.isDisposed) b.flat.dispose();
      b.flat = null;
    }
  }
}
