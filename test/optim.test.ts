// Optimizers against closed-form float64 references over several steps; clipping; schedulers.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';
import { Tensor } from '../lib/index';

const { optim } = jl;

let seed = 99;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
const randArr = (n: number) => Array.from({ length: n }, rnd);

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5, what = ''): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Runs `steps` steps with known gradients on params of the given sizes; returns the float64 data of params and the grads used. */
function run(sizes: number[], make: (ps: Tensor[]) => optim.Optimizer, steps: number, between?: (opt: optim.Optimizer, s: number) => void) {
  const init = sizes.map((n) => randArr(n));
  const grads = Array.from({ length: steps }, () => sizes.map((n) => randArr(n)));
  const ps = init.map((d) => jl.nn.Parameter(jl.tensor(d)));
  const opt = make(ps);
  for (let s = 0; s < steps; s++) {
    ps.forEach((p, i) => {
      opt.zeroGrad();
      void p;
    });
    ps.forEach((p, i) => (p.grad = jl.tensor(grads[s][i]).keep()));
    opt.step();
    between?.(opt, s);
  }
  const out = ps.map((p) => Array.from(p.data()));
  opt.dispose();
  ps.forEach((p) => p.dispose());
  return { init, grads, out };
}

function sgdRef(init: number[], grads: number[][], o: { lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number; maximize?: boolean }): number[] {
  const p = init.slice();
  let buf: number[] | null = null;
  for (const g0 of grads) {
    const d = g0.map((g, i) => (o.maximize ? -g : g) + (o.weightDecay ?? 0) * p[i]);
    let upd = d;
    if (o.momentum) {
      buf = buf === null ? d.slice() : buf.map((b, i) => o.momentum! * b + (1 - (o.dampening ?? 0)) * d[i]);
      upd = o.nesterov ? d.map((v, i) => v + o.momentum! * buf![i]) : buf;
    }
    for (let i = 0; i < p.length; i++) p[i] -= o.lr * upd[i];
  }
  return p;
}

function adamRef(init: number[], grads: number[][], o: { lr: number; betas?: [number, number]; eps?: number; weightDecay?: number; decoupled?: boolean; amsgrad?: boolean }): number[] {
  const [b1, b2] = o.betas ?? [0.9, 0.999];
  const eps = o.eps ?? 1e-8;
  const wd = o.weightDecay ?? 0;
  const p = init.slice();
  const m = p.map(() => 0), v = p.map(() => 0), vmax = p.map(() => 0);
  grads.forEach((g0, s) => {
    const t = s + 1;
    for (let i = 0; i < p.length; i++) {
      let g = g0[i];
      if (o.decoupled) p[i] *= 1 - o.lr * wd;
      else g += wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      vmax[i] = Math.max(vmax[i], v[i]);
      const denom = Math.sqrt(o.amsgrad ? vmax[i] : v[i]) / Math.sqrt(1 - Math.pow(b2, t)) + eps;
      p[i] -= (o.lr / (1 - Math.pow(b1, t))) * (m[i] / denom);
    }
  });
  return p;
}

describe('optim.SGD', () => {
  const cases = [
    { lr: 0.1 },
    { lr: 0.1, momentum: 0.9 },
    { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
    { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 0.1 },
    { lr: 0.05, momentum: 0.5, maximize: true, weightDecay: 0.1 },
  ];
  for (const c of cases) {
    it(`matches the float64 reference over 6 steps: ${JSON.stringify(c)}`, () => {
      const before = jl.memory().tensors;
      const { init, grads, out } = run([1, 7, 33, 70001], (ps) => new optim.SGD(ps, c), 6);
      init.forEach((d, k) => close(out[k], sgdRef(d, grads.map((g) => g[k]), c), 1e-5, `param ${k}`));
      assert.equal(jl.memory().tensors, before);
    });
  }
  it('validates hyper-parameters', () => {
    const p = jl.nn.Parameter(jl.zeros([2]));
    assert.throws(() => new optim.SGD([p], { lr: -1 }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => new optim.SGD([p], { lr: 0.1, nesterov: true }), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => new optim.SGD([], { lr: 0.1 }), { code: 'INVALID_ARGUMENT' });
    p.dispose();
  });
  it('skips parameters without a gradient, and per-group learning rates apply', () => {
    const a = jl.nn.Parameter(jl.tensor([1, 2]));
    const b = jl.nn.Parameter(jl.tensor([3]));
    const c = jl.nn.Parameter(jl.tensor([5]));
    const opt = new optim.SGD([{ params: [a, c] }, { params: [b], lr: 1 }], { lr: 0.5 });
    a.grad = jl.tensor([1, 1]).keep();
    b.grad = jl.tensor([1]).keep();
    opt.step();
    assert.deepEqual(Array.from(a.data()), [0.5, 1.5]);
    assert.deepEqual(Array.from(b.data()), [2]);
    assert.deepEqual(Array.from(c.data()), [5]);
    opt.zeroGrad();
    assert.equal(a.grad, null);
    opt.dispose();
    jl.dispose([a, b, c]);
  });
});

describe('optim.Adam / AdamW', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['Adam', { lr: 0.01 }],
    ['Adam', { lr: 0.01, weightDecay: 0.1, betas: [0.8, 0.99], eps: 1e-6 }],
    ['Adam', { lr: 0.01, amsgrad: true }],
    ['AdamW', { lr: 0.01 }],
    ['AdamW', { lr: 0.02, weightDecay: 0.3, amsgrad: true }],
  ];
  for (const [kind, c] of cases) {
    it(`${kind} matches the float64 reference over 7 steps (bias correction): ${JSON.stringify(c)}`, () => {
      const { init, grads, out } = run([1, 7, 33, 70001], (ps) => (kind === 'Adam' ? new optim.Adam(ps, c) : new optim.AdamW(ps, c)), 7);
      const ref = { ...c, decoupled: kind === 'AdamW', weightDecay: (c.weightDecay as number | undefined) ?? (kind === 'AdamW' ? 0.01 : 0) } as Parameters<typeof adamRef>[2];
      init.forEach((d, k) => close(out[k], adamRef(d, grads.map((g) => g[k]), ref), 2e-5, `param ${k}`));
    });
  }
  it('stateDict round-trip: a restored optimizer continues exactly as the original', () => {
    const data = randArr(40);
    const g1 = randArr(40), g2 = randArr(40);
    const p1 = jl.nn.Parameter(jl.tensor(data));
    const opt1 = new optim.AdamW([p1], { lr: 0.01, amsgrad: true });
    p1.grad = jl.tensor(g1).keep();
    opt1.step();
    const sd = opt1.stateDict();
    assert.equal(sd.state[0].step, 1);
    assert.ok(sd.state[0].expAvg instanceof Tensor);
    const p2 = jl.nn.Parameter(jl.tensor(Array.from(p1.data())));
    const opt2 = new optim.AdamW([p2], { lr: 0.5 });
    opt2.loadStateDict(sd);
    assert.equal(opt2.paramGroups[0].lr, 0.01);
    for (const [p, o] of [[p1, opt1], [p2, opt2]] as const) {
      p.grad = jl.tensor(g2).keep();
      o.step();
    }
    close(p2.data(), Array.from(p1.data()), 1e-7);
    opt1.dispose();
    opt2.dispose();
    jl.dispose([p1, p2]);
  });
  it('SGD momentum state round-trips', () => {
    const p1 = jl.nn.Parameter(jl.tensor([1, 2, 3]));
    const opt1 = new optim.SGD([p1], { lr: 0.1, momentum: 0.9 });
    p1.grad = jl.tensor([1, -1, 2]).keep();
    opt1.step();
    const p2 = jl.nn.Parameter(jl.tensor(Array.from(p1.data())));
    const opt2 = new optim.SGD([p2], { lr: 0.1, momentum: 0.9 });
    opt2.loadStateDict(opt1.stateDict());
    for (const [p, o] of [[p1, opt1], [p2, opt2]] as const) {
      p.grad = jl.tensor([0.5, 0.5, 0.5]).keep();
      o.step();
    }
    close(p2.data(), Array.from(p1.data()), 1e-7);
    assert.throws(() => opt2.loadStateDict({ state: { 0: { momentumBuffer: jl.zeros([4]) } }, paramGroups: [{ params: [0], lr: 0.1 }] }), { code: 'SHAPE_MISMATCH' });
    opt1.dispose();
    opt2.dispose();
    jl.dispose([p1, p2]);
  });
});

describe('optim.clipGradNorm', () => {
  it('returns the total norm over all gradients and scales them to maxNorm', () => {
    const ga = randArr(7), gb = randArr(70000);
    const a = jl.nn.Parameter(jl.zeros([7]));
    const b = jl.nn.Parameter(jl.zeros([70000]));
    a.grad = jl.tensor(ga).keep();
    b.grad = jl.tensor(gb).keep();
    const norm = Math.sqrt([...ga, ...gb].reduce((s, v) => s + v * v, 0));
    const got = optim.clipGradNorm([a, b], 1.0);
    assert.ok(Math.abs(got - norm) < 1e-4 * norm);
    const after = optim.gradNorm([a, b]);
    assert.ok(Math.abs(after - 1) < 1e-4);
    close(a.grad!.data(), ga.map((v) => v / (norm + 1e-6)), 1e-5);
    const inf = optim.clipGradNorm([a, b], 100, Infinity);
    assert.ok(Math.abs(inf - Math.max(...[...ga, ...gb].map(Math.abs)) / (norm + 1e-6)) < 1e-6);
    const l1 = optim.gradNorm([a], 1);
    assert.ok(Math.abs(l1 - ga.reduce((s, v) => s + Math.abs(v), 0) / (norm + 1e-6)) < 1e-5);
    jl.dispose([a, b]);
  });

  it('a NaN gradient makes every norm NaN, wherever it sits and on any thread count', () => {
    const threads = jl.getNumThreads();
    try {
      for (const t of [1, 2]) {
        jl.setNumThreads(t);
        for (const at of [0, 40000, 69999]) {
          const g = randArr(70000);
          g[at] = NaN;
          const p = jl.nn.Parameter(jl.zeros([70000]));
          p.grad = jl.tensor(g).keep();
          for (const norm of [2, 1, 3, Infinity]) assert.ok(Number.isNaN(optim.gradNorm([p], norm)), `p=${norm}, NaN at ${at}, ${t} threads`);
          jl.dispose([p]);
        }
      }
    } finally {
      jl.setNumThreads(threads);
    }
  });
});

describe('optim schedulers', () => {
  const make = () => new optim.SGD([jl.nn.Parameter(jl.zeros([1]))], { lr: 1 });
  it('StepLR', () => {
    const opt = make();
    const s = new optim.StepLR(opt, { stepSize: 2, gamma: 0.5 });
    const lrs = [s.getLastLr()[0]];
    for (let i = 0; i < 5; i++) { s.step(); lrs.push(opt.paramGroups[0].lr); }
    assert.deepEqual(lrs, [1, 1, 0.5, 0.5, 0.25, 0.25]);
  });
  it('CosineAnnealingLR and LambdaLR', () => {
    const opt = make();
    const s = new optim.CosineAnnealingLR(opt, { tMax: 4, etaMin: 0.1 });
    const lrs = [s.getLastLr()[0]];
    for (let i = 0; i < 4; i++) { s.step(); lrs.push(s.getLastLr()[0]); }
    close(lrs, [0, 1, 2, 3, 4].map((e) => 0.1 + 0.9 * (1 + Math.cos((Math.PI * e) / 4)) / 2), 1e-12);
    const opt2 = make();
    const l = new optim.LambdaLR(opt2, (e) => 1 / (e + 1));
    l.step();
    assert.equal(opt2.paramGroups[0].lr, 0.5);
  });
  it('warmupCosine: linear warm-up, cosine to minLr, then flat; stateDict restores', () => {
    const opt = make();
    const s = optim.warmupCosine(opt, { warmupSteps: 4, totalSteps: 12, minLr: 0.1 });
    const lrs = [s.getLastLr()[0]];
    for (let i = 0; i < 14; i++) { s.step(); lrs.push(s.getLastLr()[0]); }
    close(lrs.slice(0, 5), [0, 0.25, 0.5, 0.75, 1], 1e-12);
    assert.ok(Math.abs(lrs[8] - (0.1 + 0.9 * 0.5)) < 1e-12);
    assert.ok(Math.abs(lrs[12] - 0.1) < 1e-12 && Math.abs(lrs[14] - 0.1) < 1e-12);
    const st = s.stateDict();
    const opt2 = make();
    const s2 = optim.warmupCosine(opt2, { warmupSteps: 4, totalSteps: 12, minLr: 0.1 });
    s2.loadStateDict(st);
    assert.equal(s2.lastEpoch, 14);
    assert.equal(opt2.paramGroups[0].lr, 0.1);
  });
});
