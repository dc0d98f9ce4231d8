// Learning-rate schedulers: each step() sets every group's lr from the scheduler's closed form
// at the next step count (PyTorch's semantics: constructing one sets the lr for step 0).
import { checkInt, describe, fail } from '../errors';
import { Optimizer } from './optimizer';

export interface SchedulerState {
  lastEpoch: number;
  baseLrs: number[];
  lastLrs: number[];
}

export abstract class LRScheduler {
  readonly optimizer: Optimizer;
  /** The number of step() calls so far (-1 before the constructor's initial step). */
  lastEpoch: number;
  baseLrs: number[];
  private lastLrs: number[] = [];

  constructor(optimizer: Optimizer, lastEpoch = -1) {
    if (!(optimizer instanceof Optimizer)) fail('INVALID_ARGUMENT', `scheduler: expected an Optimizer, got ${describe(optimizer)}`);
    this.optimizer = optimizer;
    this.baseLrs = optimizer.paramGroups.map((g) => (g.initialLr as number | undefined) ?? g.lr);
    this.lastEpoch = checkInt(lastEpoch, 'lastEpoch', -1);
  }

  /** Sets the learning rates for step `lastEpoch` (called by subclasses at the end of their constructor). */
  protected init(): void {
    this.step();
  }

  /** The learning rate of each group at step `epoch`. */
  protected abstract lrAt(epoch: number, baseLr: number, group: number): number;

  step(): void {
    this.lastEpoch++;
    this.lastLrs = this.optimizer.paramGroups.map((g, i) => {
      const lr = this.lrAt(this.lastEpoch, this.baseLrs[i] ?? g.lr, i);
      g.lr = lr;
      return lr;
    });
  }

  /** The learning rates the last step() set, one per group. */
  getLastLr(): number[] {
    return this.lastLrs.slice();
  }

  stateDict(): SchedulerState {
    return { lastEpoch: this.lastEpoch, baseLrs: this.baseLrs.slice(), lastLrs: this.lastLrs.slice() };
  }
  loadStateDict(state: SchedulerState): void {
    if (!state || typeof state.lastEpoch !== 'number' || !Array.isArray(state.baseLrs)) {
      fail('INVALID_ARGUMENT', `scheduler loadStateDict: expected {lastEpoch, baseLrs}, got ${describe(state)}`);
    }
    this.lastEpoch = state.lastEpoch;
    this.baseLrs = state.baseLrs.slice();
    this.lastLrs = (state.lastLrs ?? []).slice();
    this.optimizer.paramGroups.forEach((g, i) => {
      if (this.lastLrs[i] !== undefined) g.lr = this.lastLrs[i];
    });
  }
}

/** lr = base * gamma^floor(epoch / stepSize). */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer, options: { stepSize: number; gamma?: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch);
    this.stepSize = checkInt(options.stepSize, 'stepSize', 1);
    this.gamma = options.gamma ?? 0.1;
    this.init();
  }
  protected lrAt(epoch: number, base: number): number {
    return base * Math.pow(this.gamma, Math.floor(epoch / this.stepSize));
  }
}

/** lr = base * gamma^epoch. */
export class ExponentialLR extends LRScheduler {
  constructor(optimizer: Optimizer, readonly options: { gamma: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch);
    this.init();
  }
  protected lrAt(epoch: number, base: number): number {
    return base * Math.pow(this.options.gamma, epoch);
  }
}

/** lr = etaMin + (base - etaMin) (1 + cos(pi epoch / tMax)) / 2 (the closed form of PyTorch's CosineAnnealingLR). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer, options: { tMax: number; etaMin?: number; lastEpoch?: number }) {
    super(optimizer, options?.lastEpoch);
    this.tMax = checkInt(options.tMax, 'tMax', 1);
    this.etaMin = options.etaMin ?? 0;
    this.init();
  }
  protected lrAt(epoch: number, base: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * epoch) / this.tMax))) / 2;
  }
}

/** lr = base * lambda(epoch), one function for all groups or one per group. */
export class LambdaLR extends LRScheduler {
  private readonly fns: ((epoch: number) => number)[];
  constructor(optimizer: Optimizer, lrLambda: ((epoch: number) => number) | ((epoch: number) => number)[], options: { lastEpoch?: number } = {}) {
    super(optimizer, options.lastEpoch);
    const n = optimizer.paramGroups.length;
    this.fns = Array.isArray(lrLambda) ? lrLambda : new Array(n).fill(lrLambda);
    if (this.fns.length !== n || this.fns.some((f) => typeof f !== 'function')) {
      fail('INVALID_ARGUMENT', `LambdaLR: expected a function or ${n} functions (one per group)`);
    }
    this.init();
  }
  protected lrAt(epoch: number, base: number, group: number): number {
    return base * this.fns[group](epoch);
  }
}

export interface WarmupCosineOptions {
  /** Steps of linear warm-up from 0 to the base lr. */
  warmupSteps: number;
  /** Steps in all: the cosine decays from the base lr to minLr over totalSteps - warmupSteps, then stays. */
  totalSteps: number;
  minLr?: number;
  lastEpoch?: number;
}

/**
 * Linear warm-up then cosine decay: lr = base * step / warmupSteps during warm-up, then
 * minLr + (base - minLr) (1 + cos(pi * progress)) / 2 with progress from 0 to 1.
 */
export class WarmupCosineLR extends LRScheduler {
  readonly warmupSteps: number;
  readonly totalSteps: number;
  readonly minLr: number;
  constructor(optimizer: Optimizer, options: WarmupCosineOptions) {
    super(optimizer, options?.lastEpoch);
    this.warmupSteps = checkInt(options.warmupSteps, 'warmupSteps', 0);
    this.totalSteps = checkInt(options.totalSteps, 'totalSteps', 1);
    if (this.totalSteps < this.warmupSteps) fail('INVALID_ARGUMENT', `warmupCosine: totalSteps ${this.totalSteps} is less than warmupSteps ${this.warmupSteps}`);
    this.minLr = options.minLr ?? 0;
    this.init();
  }
  protected lrAt(epoch: number, base: number): number {
    if (epoch < this.warmupSteps) return (base * epoch) / this.warmupSteps;
    const span = this.totalSteps - this.warmupSteps;
    const progress = span === 0 ? 1 : Math.min(1, (epoch - this.warmupSteps) / span);
    return this.minLr + ((base - this.minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }
}

/** Linear warm-up then cosine decay (see WarmupCosineLR). */
export function warmupCosine(optimizer: Optimizer, options: WarmupCosineOptions): WarmupCosineLR {
  return new WarmupCosineLR(optimizer, options);
}
