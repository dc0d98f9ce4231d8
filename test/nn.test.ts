// nn: Module bookkeeping, layers, losses against float64 references, and memory in training loops.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';
import { Tensor } from '../lib/index';
import { Rng } from './helpers';

const { nn, optim } = jl;
const F = nn.functional;

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-5): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `[${i}]: ${actual[i]} vs ${expected[i]}`);
}

class Net extends nn.Module {
  fc1 = new nn.Linear(4, 8);
  act = new nn.ReLU();
  fc2 = new nn.Linear(8, 3, { bias: false });
  scale = nn.Parameter(jl.ones([3]));
  constructor() {
    super();
    this.registerBuffer('steps', jl.zeros([1]));
  }
  override forward(x: Tensor): Tensor {
    return jl.mul(this.fc2.forward(this.act.forward(this.fc1.forward(x))), this.scale);
  }
}

describe('nn.Module', () => {
  it('registers by assignment and explicitly, with dotted names in registration order', () => {
    const net = new Net();
    assert.deepEqual(net.namedParameters().map(([n]) => n), ['scale', 'fc1.weight', 'fc1.bias', 'fc2.weight']);
    assert.deepEqual(Object.keys(net.stateDict()), ['scale', 'steps', 'fc1.weight', 'fc1.bias', 'fc2.weight']);
    assert.deepEqual(net.namedBuffers().map(([n]) => n), ['steps']);
    assert.equal(net.children().length, 3);
    assert.equal(net.numParameters(), 3 + 32 + 8 + 24);
    assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf));
    const seq = new nn.Sequential(new nn.Linear(2, 3), new nn.ReLU(), new nn.Linear(3, 1));
    assert.deepEqual(seq.namedParameters().map(([n]) => n), ['0.weight', '0.bias', '2.weight', '2.bias']);
    net.dispose();
    seq.dispose();
  });
  it('parameters survive tidy(); train()/eval() propagate; zeroGrad clears', () => {
    const net = new Net();
    jl.tidy(() => {
      const y = net.forward(jl.randn([5, 4]));
      jl.sum(y).backward();
    });
    assert.ok(net.parameters().every((p) => !p.isDisposed && p.grad !== null));
    net.eval();
    assert.ok(net.modules().every((m) => !m.training));
    net.train();
    assert.ok(net.fc1.training);
    net.zeroGrad();
    assert.ok(net.parameters().every((p) => p.grad === null));
    net.dispose();
  });
  it('stateDict / loadStateDict round-trip copies into the existing tensors; mismatches are clear errors', () => {
    jl.manualSeed(1);
    const a = new Net();
    jl.manualSeed(2);
    const b = new Net();
    const w = b.fc1.weight;
    b.loadStateDict(a.stateDict());
    assert.equal(b.fc1.weight, w, 'identity kept');
    for (const [k, t] of Object.entries(a.stateDict())) assert.deepEqual(Array.from(b.stateDict()[k].data()), Array.from(t.data()));
    const bad = { ...a.stateDict(), 'fc1.bias': jl.zeros([7]) };
    assert.throws(() => b.loadStateDict(bad), (e: jl.JouleError) => e.code === 'SHAPE_MISMATCH' && /fc1\.bias/.test(e.message));
    const badDtype = { ...a.stateDict(), steps: jl.zeros([1], { dtype: 'int32' }) };
    assert.throws(() => b.loadStateDict(badDtype), { code: 'DTYPE' });
    const missing: Record<string, Tensor> = { ...a.stateDict() };
    delete missing['fc2.weight'];
    assert.throws(() => b.loadStateDict({ ...missing, extra: jl.zeros([1]) }), (e: jl.JouleError) => e.code === 'INVALID_ARGUMENT' && /fc2\.weight/.test(e.message) && /extra/.test(e.message));
    const r = b.loadStateDict(missing, { strict: false });
    assert.deepEqual(r, { missingKeys: ['fc2.weight'], unexpectedKeys: [] });
    jl.dispose([bad['fc1.bias'], badDtype.steps]);
    a.dispose();
    b.dispose();
  });
  it('to("cpu") is a no-op on the CPU; dispose frees everything', () => {
    const before = jl.memory().tensors;
    const net = new Net();
    assert.equal(net.to('cpu'), net);
    net.dispose();
    assert.equal(jl.memory().tensors, before);
  });
});

describe('nn layers', () => {
  it('Linear init is PyTorch-like and reproducible under manualSeed', () => {
    jl.manualSeed(42);
    const a = new nn.Linear(100, 50);
    jl.manualSeed(42);
    const b = new nn.Linear(100, 50);
    assert.deepEqual(Array.from(a.weight.data()), Array.from(b.weight.data()));
    const bound = 1 / Math.sqrt(100);
    const w = a.weight.data();
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    assert.ok(Math.abs(std - bound / Math.sqrt(3)) < 0.01);
    assert.ok(a.bias!.data().every((v) => Math.abs(v) <= bound));
    a.dispose();
    b.dispose();
  });
  it('Linear forward equals x W^T + b (and the fused ReLU / GELU in Sequential)', () => {
    jl.manualSeed(5);
    const lin = new nn.Linear(7, 3);
    const x = jl.randn([4, 7]);
    jl.tidy(() => {
      const ref = jl.add(jl.matmul(x, jl.transpose(lin.weight)), lin.bias!);
      close(lin.forward(x).data(), Array.from(ref.data()));
      const seq = new nn.Sequential(lin, new nn.GELU());
      close((seq.forward(x) as Tensor).data(), Array.from(jl.gelu(ref).data()));
    });
    x.dispose();
    lin.dispose();
  });
  it('Dropout: reproducible under manualSeed, scaled by 1/(1-p), identity in eval', () => {
    const d = new nn.Dropout(0.25);
    const x = jl.ones([1000]);
    jl.manualSeed(9);
    const a = d.forward(x).data();
    jl.manualSeed(9);
    const b = d.forward(x).data();
    assert.deepEqual(Array.from(a), Array.from(b));
    assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
    const kept = a.filter((v) => v !== 0).length;
    assert.ok(kept > 680 && kept < 820);
    d.eval();
    assert.equal(d.forward(x), x);
    x.dispose();
  });
  it('LayerNorm matches a float64 reference', () => {
    const ln = new nn.LayerNorm(5);
    const data = Array.from({ length: 15 }, (_, i) => Math.sin(i * 1.7) * 3);
    const x = jl.tensor(data, { shape: [3, 5] });
    const y = ln.forward(x).data();
    const ref: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row = data.slice(r * 5, r * 5 + 5);
      const m = row.reduce((s, v) => s + v, 0) / 5;
      const v = row.reduce((s, q) => s + (q - m) ** 2, 0) / 5;
      ref.push(...row.map((q) => (q - m) / Math.sqrt(v + 1e-5)));
    }
    close(y, ref, 1e-5);
    jl.dispose(x);
    ln.dispose();
  });
  it('layer norm forward and backward match float64 at awkward widths and far from zero', () => {
    const rng = new Rng(5);
    for (const d of [1, 15, 16, 17, 33, 128, 1000]) {
      jl.tidy(() => {
        const rows = 9;
        // Rows with a large mean and a small spread: a one-pass variance would cancel.
        const xs = Array.from({ length: rows * d }, (_, i) => (Math.floor(i / d) % 2 ? 1000 : -3) + 0.1 * rng.normal());
        const gs = Array.from({ length: d }, () => 1 + 0.5 * rng.normal());
        const bs = Array.from({ length: d }, () => rng.normal());
        const dys = Array.from({ length: rows * d }, () => rng.normal());
        const x = jl.tensor(xs, { shape: [rows, d] }).requiresGrad_();
        const g = jl.tensor(gs).requiresGrad_();
        const b = jl.tensor(bs).requiresGrad_();
        const y = F.layerNorm(x, [d], g, b, 1e-5);
        y.backward(jl.tensor(dys, { shape: [rows, d] }));
        const f32 = (v: number) => Math.fround(v);
        const yRef: number[] = [], dxRef: number[] = [];
        const dgRef = new Array(d).fill(0), dbRef = new Array(d).fill(0);
        for (let r = 0; r < rows; r++) {
          const row = xs.slice(r * d, (r + 1) * d).map(f32);
          const m = row.reduce((s, v) => s + v, 0) / d;
          const rs = 1 / Math.sqrt(row.reduce((s, v) => s + (v - m) ** 2, 0) / d + 1e-5);
          const h = row.map((v) => (v - m) * rs);
          const gh = h.map((_, i) => dys[r * d + i] * gs[i]);
          const ma = gh.reduce((s, v) => s + v, 0) / d;
          const mb = gh.reduce((s, v, i) => s + v * h[i], 0) / d;
          h.forEach((hi, i) => {
            yRef.push(hi * gs[i] + bs[i]);
            dxRef.push(rs * (gh[i] - ma - hi * mb));
            dgRef[i] += dys[r * d + i] * hi;
            dbRef[i] += dys[r * d + i];
          });
        }
        // Rows at 1000 +- 0.1: float32's spacing there (6e-5) is 6e-4 of the spread, so outputs
        // carry ~1e-3 relative error whatever the method; a one-pass variance would be off by 10x.
        close(y.data(), yRef, 3e-3);
        close(x.grad!.data(), dxRef, 1e-2);
        close(g.grad!.data(), dgRef, 3e-3);
        close(b.grad!.data(), dbRef, 1e-4);
        for (const t of [x, g, b]) t.grad!.dispose();
      });
    }
  });
  it('Embedding picks rows; Flatten merges dims', () => {
    const e = new nn.Embedding(10, 4);
    const idx = jl.tensor([[1, 9], [1, 0]], { dtype: 'int32' });
    const out = e.forward(idx);
    assert.deepEqual(out.shape, [2, 2, 4]);
    const w = e.weight.data();
    close(out.data().slice(4, 8), Array.from(w.slice(36, 40)));
    assert.deepEqual(new nn.Flatten().forward(jl.zeros([2, 3, 4])).shape, [2, 12]);
    e.dispose();
  });
});

// float64 reference of cross entropy with label smoothing and ignore_index (PyTorch semantics).
function ceRef(logits: number[][], target: number[], eps = 0, ignore = -100): number {
  let total = 0;
  let count = 0;
  logits.forEach((row, n) => {
    if (target[n] === ignore) return;
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const nll = lse - row[target[n]];
    const smooth = row.reduce((s, v) => s + (lse - v), 0) / row.length;
    total += (1 - eps) * nll + eps * smooth;
    count++;
  });
  return total / count;
}

describe('nn.functional losses', () => {
  const logits = [[1, 2, 0.5, -1], [0.3, -0.2, 2.5, 1], [-1, 0, 0, 4], [2, 2, 2, 2]];
  const target = [1, 2, 3, 0];
  it('crossEntropy matches the float64 reference: plain, smoothing, ignoreIndex, sum/none', () => {
    const x = jl.tensor(logits);
    const t = jl.tensor(target, { dtype: 'int32' });
    close([F.crossEntropy(x, t).item()], [ceRef(logits, target)]);
    close([F.crossEntropy(x, t, { labelSmoothing: 0.1 }).item()], [ceRef(logits, target, 0.1)]);
    close([F.crossEntropy(x, t, { ignoreIndex: 2, labelSmoothing: 0.2 }).item()], [ceRef(logits, target, 0.2, 2)]);
    close([F.crossEntropy(x, t, { reduction: 'sum' }).item()], [4 * ceRef(logits, target)]);
    close(F.crossEntropy(x, t, { reduction: 'none' }).data(), logits.map((r, i) => ceRef([r], [target[i]])));
    const probs = jl.tensor(target.map((c) => [0, 1, 2, 3].map((k) => (k === c ? 1 : 0))));
    close([F.crossEntropy(x, probs).item()], [ceRef(logits, target)]);
    close([F.nllLoss(jl.logSoftmax(x, 1), t).item()], [ceRef(logits, target)]);
  });
  it('crossEntropy is finite for extreme logits (±1e4), with finite gradients', () => {
    const big = [[1e4, -1e4, 0], [-1e4, -1e4, 1e4], [5e3, 1e4, -1e4]];
    const x = jl.tensor(big, { requiresGrad: true });
    const t = jl.tensor([1, 2, 0], { dtype: 'int32' });
    const loss = F.crossEntropy(x, t, { labelSmoothing: 0.1 });
    const v = loss.item();
    assert.ok(Number.isFinite(v));
    close([v], [ceRef(big, [1, 2, 0], 0.1)], 1e-4);
    loss.backward();
    assert.ok(x.grad!.data().every(Number.isFinite));
    jl.dispose([x, t]);
  });
  it('mse, bce-with-logits and klDiv match float64 references', () => {
    const a = [0.5, -1, 2, 3], b = [1, 1, -1, 0.25];
    close([F.mseLoss(jl.tensor(a), jl.tensor(b)).item()], [a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / 4]);
    const y = [0, 1, 1, 0.3];
    const bce = a.map((x, i) => -(y[i] * Math.log(1 / (1 + Math.exp(-x))) + (1 - y[i]) * Math.log(1 - 1 / (1 + Math.exp(-x)))));
    close([F.binaryCrossEntropyWithLogits(jl.tensor(a), jl.tensor(y)).item()], [bce.reduce((s, v) => s + v, 0) / 4]);
    close([F.binaryCrossEntropyWithLogits(jl.tensor([-1e4, 1e4]), jl.tensor([1, 0]), { reduction: 'sum' }).item()], [2e4], 1e-6);
    const p = [[0.1, 0.9], [0.5, 0.5]], q = [[0.3, 0.7], [0.2, 0.8]];
    const kl = p.map((r, i) => r.reduce((s, v, j) => s + v * Math.log(v / q[i][j]), 0)).reduce((s, v) => s + v, 0);
    close([F.klDiv(jl.log(jl.tensor(q)), jl.tensor(p), { reduction: 'batchmean' }).item()], [kl / 2]);
    close([F.klDiv(jl.log(jl.tensor(q)), jl.log(jl.tensor(p)), { reduction: 'sum', logTarget: true }).item()], [kl]);
  });
  it('accuracy', () => {
    assert.equal(F.accuracy(jl.tensor(logits), jl.tensor(target, { dtype: 'int32' })), 1);
    assert.equal(F.accuracy(jl.tensor(logits), jl.tensor([0, 2, 3, 0], { dtype: 'int32' })), 0.75);
  });
});

describe('nn training memory', () => {
  function setup() {
    jl.manualSeed(0);
    const model = new nn.Sequential(new nn.Linear(20, 33), new nn.GELU(), new nn.Dropout(0.1), new nn.LayerNorm(33), new nn.Linear(33, 7), new nn.ReLU(), new nn.Linear(7, 5));
    const x = jl.randn([16, 20]);
    const y = jl.randint(0, 5, [16]);
    return { model, x, y };
  }
  it('a training step inside tidy leaves the live-tensor count where it started', () => {
    const { model, x, y } = setup();
    const opt = new optim.AdamW(model.parameters(), { lr: 1e-2 });
    const step = () => jl.tidy(() => {
      const loss = F.crossEntropy(model.forward(x) as Tensor, y, { labelSmoothing: 0.1 });
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss.item();
    });
    step();
    const start = jl.memory().tensors;
    let first = 0, last = 0;
    for (let i = 0; i < 20; i++) {
      last = step();
      if (i === 0) first = last;
    }
    assert.equal(jl.memory().tensors, start);
    assert.ok(last < first, 'the loss goes down');
    opt.dispose();
    model.dispose();
    jl.dispose([x, y]);
  });
  it('200 steps of a plain loop (no tidy) do not grow the live-tensor count', () => {
    const { model, x, y } = setup();
    const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const counts: number[] = [];
    for (let i = 0; i < 200; i++) {
      const loss = F.crossEntropy(model.forward(x) as Tensor, y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      loss.dispose();
      if (i >= 1) counts.push(jl.memory().tensors);
    }
    assert.equal(Math.max(...counts), Math.min(...counts));
    opt.dispose();
    model.dispose();
    jl.dispose([x, y]);
  });
});
