import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { assertNoLeak, expectJouleError, Rng } from './helpers';

const { nn, optim, distill } = jl;

// ---------------------------------------------------------------- float64 reference

function softmax64(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** alpha · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − alpha) · CE(s, y), batch means, in float64. */
function refKd(s: number[], t: number[], y: number[], n: number, c: number, T: number, alpha: number): { loss: number; soft: number; hard: number } {
  let soft = 0;
  let hard = 0;
  for (let i = 0; i < n; i++) {
    const sr = s.slice(i * c, i * c + c);
    const tr = t.slice(i * c, i * c + c);
    const p = softmax64(tr.map((v) => v / T));
    const q = softmax64(sr.map((v) => v / T));
    let kl = 0;
    for (let k = 0; k < c; k++) if (p[k] > 0) kl += p[k] * (Math.log(p[k]) - Math.log(q[k]));
    soft += T * T * kl;
    hard += -Math.log(softmax64(sr)[y[i]]);
  }
  soft /= n;
  hard /= n;
  return { loss: alpha * soft + (1 - alpha) * hard, soft, hard };
}

/** d loss / d s by central differences of the float64 reference. */
function refGrad(s: number[], t: number[], y: number[], n: number, c: number, T: number, alpha: number): number[] {
  const h = 1e-6;
  return s.map((_, i) => {
    const a = s.slice();
    const b = s.slice();
    a[i] += h;
    b[i] -= h;
    return (refKd(a, t, y, n, c, T, alpha).loss - refKd(b, t, y, n, c, T, alpha).loss) / (2 * h);
  });
}

function randomCase(seed: number, n: number, c: number, scale = 3) {
  const rng = new Rng(seed);
  const s = Array.from(rng.floats(n * c, -scale, scale));
  const t = Array.from(rng.floats(n * c, -scale, scale));
  const y = Array.from({ length: n }, () => rng.int(0, c));
  return { s, t, y };
}

function kdOf(s: number[], t: number[], y: number[], n: number, c: number, T: number, alpha: number) {
  const st = jl.tensor(s, { shape: [n, c], requiresGrad: true });
  const tt = jl.tensor(t, { shape: [n, c], requiresGrad: true }); // must receive no gradient
  const parts = distill.kdLossParts(st, tt, jl.tensor(y, { dtype: 'int32' }), { temperature: T, alpha });
  const value = parts.loss.item();
  parts.loss.backward();
  const grad = Array.from(st.grad!.data());
  const teacherGrad = tt.grad;
  st.grad!.dispose();
  return { value, grad, teacherGrad, soft: parts.soft, hard: parts.hard };
}

function close(actual: number[], expected: number[], rtol: number, atol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]) <= atol + rtol * Math.abs(expected[i]), `${what}[${i}]: got ${a}, expected ${expected[i]}`);
  });
}

describe('distill.kdLoss', () => {
  const cases: [number, number, number, number][] = [
    // n, c, T, alpha
    [1, 2, 1, 0.5],
    [3, 4, 3, 0.7],
    [7, 10, 4, 0.9],
    [33, 5, 2, 0.3],
    [4, 10, 20, 0.9],
  ];
  for (const [n, c, T, alpha] of cases) {
    it(`matches the float64 reference and its finite-difference gradient (N=${n}, C=${c}, T=${T}, alpha=${alpha})`, () => {
      const { s, t, y } = randomCase(n * 100 + c, n, c);
      const r = refKd(s, t, y, n, c, T, alpha);
      jl.tidy(() => {
        const k = kdOf(s, t, y, n, c, T, alpha);
        // T² magnifies float32 rounding of the KL (a small difference of two entropies) at large T.
        close([k.value], [r.loss], 1e-5 + T * T * 2e-7, 1e-6, 'loss');
        close([k.soft], [r.soft], 1e-4 + T * T * 2e-7, 1e-6, 'soft');
        close([k.hard], [r.hard], 1e-5, 1e-6, 'hard');
        close(k.grad, refGrad(s, t, y, n, c, T, alpha), 2e-3, 2e-6, 'grad');
        assert.equal(k.teacherGrad, null, 'no gradient may reach the teacher');
      });
    });
  }

  it('alpha = 0 is the cross entropy with the labels alone', () => {
    const n = 6;
    const c = 7;
    const { s, t, y } = randomCase(11, n, c);
    jl.tidy(() => {
      const k = kdOf(s, t, y, n, c, 5, 0);
      const ce = jl.nn.functional.crossEntropy(jl.tensor(s, { shape: [n, c] }), jl.tensor(y, { dtype: 'int32' })).item();
      close([k.value], [ce], 1e-6, 1e-7, 'loss');
      // The gradient of mean CE: (softmax(s) − onehot(y)) / N.
      const expect: number[] = [];
      for (let i = 0; i < n; i++) softmax64(s.slice(i * c, i * c + c)).forEach((p, j) => expect.push((p - (j === y[i] ? 1 : 0)) / n));
      close(k.grad, expect, 1e-4, 1e-7, 'grad');
      assert.ok(Number.isNaN(k.soft));
    });
  });

  it('alpha = 1 is T² · KL alone: the labels do not matter and may be null', () => {
    const n = 5;
    const c = 6;
    const T = 3;
    const { s, t, y } = randomCase(12, n, c);
    const r = refKd(s, t, y, n, c, T, 1);
    jl.tidy(() => {
      const a = kdOf(s, t, y, n, c, T, 1);
      const b = kdOf(s, t, y.map((v) => (v + 1) % c), n, c, T, 1);
      close([a.value], [r.soft], 1e-5, 1e-6, 'loss');
      close(b.grad, a.grad, 0, 0, 'grad with other labels');
      const st = jl.tensor(s, { shape: [n, c], requiresGrad: true });
      const l = distill.kdLoss(st, jl.tensor(t, { shape: [n, c] }), null, { temperature: T, alpha: 1 });
      close([l.item()], [r.soft], 1e-5, 1e-6, 'loss without labels');
      // d/ds of T²·KL = T · (softmax(s/T) − softmax(t/T)) / N.
      l.backward();
      const expect: number[] = [];
      for (let i = 0; i < n; i++) {
        const q = softmax64(s.slice(i * c, i * c + c).map((v) => v / T));
        const p = softmax64(t.slice(i * c, i * c + c).map((v) => v / T));
        q.forEach((qv, j) => expect.push((T * (qv - p[j])) / n));
      }
      close(Array.from(st.grad!.data()), expect, 1e-4, 1e-7, 'grad');
      st.grad!.dispose();
    });
  });

  it('the T² factor keeps the soft gradient on the scale of the hard one as T grows', () => {
    // Without T², the soft gradient would shrink as 1/T (up to 1/T² for large T); with it, it
    // tends to (s − t)/(N·C) − mean terms: the same order at T = 10 and T = 100.
    const n = 4;
    const c = 5;
    const { s, t, y } = randomCase(13, n, c, 1);
    const norm = (g: number[]) => Math.sqrt(g.reduce((a, v) => a + v * v, 0));
    jl.tidy(() => {
      const g10 = norm(kdOf(s, t, y, n, c, 10, 1).grad);
      const g100 = norm(kdOf(s, t, y, n, c, 100, 1).grad);
      assert.ok(g100 > 0.9 * g10 && g100 < 1.1 * g10, `soft gradient norms at T=10 (${g10}) and T=100 (${g100}) should agree`);
      // And the value: T²·KL → Σ((s − t) − mean)² / (2C) per row as T → ∞ (the logit-matching limit).
      let limit = 0;
      for (let i = 0; i < n; i++) {
        const d = s.slice(i * c, i * c + c).map((v, j) => v - t[i * c + j]);
        const m = d.reduce((a, b) => a + b, 0) / c;
        limit += d.reduce((a, v) => a + (v - m) * (v - m), 0) / (2 * c);
      }
      limit /= n;
      close([kdOf(s, t, y, n, c, 100, 1).value], [limit], 2e-2, 1e-5, 'large-T limit');
    });
  });

  it('is zero (soft part) when the student equals the teacher, and stays finite for extreme logits', () => {
    jl.tidy(() => {
      const s = jl.tensor([[1, 2, 3], [0, -1, 5]]);
      const l = distill.kdLoss(s, s, null, { temperature: 2, alpha: 1 });
      assert.ok(Math.abs(l.item()) < 1e-6);
      const big = jl.tensor([[1000, -1000, 0], [-500, 500, 0]]);
      const t = jl.tensor([[-1000, 1000, 0], [500, -500, 0]]);
      const v = distill.kdLoss(big, t, jl.tensor([0, 1], { dtype: 'int32' }), { temperature: 1, alpha: 0.5 }).item();
      assert.ok(Number.isFinite(v), `got ${v}`);
    });
  });

  it('validates its arguments', () => {
    jl.tidy(() => {
      const s = jl.zeros([2, 3]);
      const y = jl.tensor([0, 1], { dtype: 'int32' });
      expectJouleError(() => distill.kdLoss(s, jl.zeros([2, 4]), y), 'SHAPE_MISMATCH', /teacher/);
      expectJouleError(() => distill.kdLoss(s, s, y, { temperature: 0 }), 'INVALID_ARGUMENT', /temperature/);
      expectJouleError(() => distill.kdLoss(s, s, y, { alpha: 1.5 }), 'INVALID_ARGUMENT', /alpha/);
      expectJouleError(() => distill.kdLoss(s, s, null, { alpha: 0.5 }), 'INVALID_ARGUMENT', /labels/);
      expectJouleError(() => distill.kdLoss(s, s, jl.tensor([0, 1])), 'DTYPE', /int32/);
      expectJouleError(() => distill.kdLoss(s, s, y, { temp: 2 } as never), 'INVALID_ARGUMENT', /unknown option/);
    });
  });

  it('leaks nothing (forward and backward)', () => {
    const { s, t, y } = randomCase(14, 8, 10);
    assertNoLeak(() => {
      const st = jl.tensor(s, { shape: [8, 10], requiresGrad: true });
      distill.kdLoss(st, jl.tensor(t, { shape: [8, 10] }), jl.tensor(y, { dtype: 'int32' })).backward();
      st.grad!.dispose();
    });
  });
});

// ---------------------------------------------------------------- the Distiller

/** Separable blobs: y = argmax(x W) for a fixed W; x [n, 8], 4 classes. */
function blobs(n: number, seed: number): jl.data.TensorDataset {
  return jl.tidy(() => {
    jl.manualSeed(1234);
    const w = jl.randn([8, 4]);
    jl.manualSeed(seed);
    const x = jl.randn([n, 8]);
    const y = x.matmul(w).argmax(1).astype('int32');
    return new jl.data.TensorDataset(x.keep(), y.keep());
  });
}

function mlp(seed: number, hidden: number, dropout = 0): jl.nn.Sequential {
  jl.manualSeed(seed);
  const layers: jl.nn.Module[] = [new nn.Linear(8, hidden), new nn.ReLU()];
  if (dropout > 0) layers.push(new nn.Dropout(dropout));
  layers.push(new nn.Linear(hidden, 4));
  return new nn.Sequential(...layers);
}

async function trainedTeacher(train: jl.data.Dataset): Promise<jl.nn.Sequential> {
  const teacher = mlp(1, 64, 0.1);
  const opt = new optim.Adam(teacher.parameters(), { lr: 1e-2 });
  await new jl.Trainer({ model: teacher, optimizer: opt }).fit(train, { epochs: 8, batchSize: 32, quiet: true });
  opt.dispose();
  return teacher;
}

describe('distill.Distiller', function () {
  this.timeout(60000);
  let train: jl.data.TensorDataset;
  let test: jl.data.TensorDataset;
  let teacher: jl.nn.Sequential;
  before(async () => {
    train = blobs(512, 1);
    test = blobs(256, 2);
    teacher = await trainedTeacher(train);
  });
  after(() => {
    train.dispose();
    test.dispose();
    teacher.dispose();
  });

  it('trains a student that learns the task, with the cost fields in its report', async () => {
    const student = mlp(2, 16);
    const opt = new optim.Adam(student.parameters(), { lr: 1e-2 });
    const d = new distill.Distiller({ teacher, student, temperature: 4, alpha: 0.9, optimizer: opt });
    const teacherBefore = teacher.parameters().map((p) => Array.from(p.data()));
    const r = await d.fit(train, { epochs: 5, batchSize: 32, validation: test, quiet: true });
    assert.equal(r.epochs.length, 5);
    assert.ok(r.epochs[4].loss < r.epochs[0].loss, 'the loss goes down');
    assert.ok(r.epochs[4].valMetrics!.accuracy > 0.85, `accuracy ${r.epochs[4].valMetrics!.accuracy}`);
    for (const e of r.epochs) {
      assert.ok(Number.isFinite(e.softLoss) && Number.isFinite(e.hardLoss));
      assert.ok(e.flops! > 0 && e.mfu !== undefined && typeof e.energySource === 'string');
    }
    assert.equal(r.samples, 5 * 512);
    assert.ok(r.samplesPerSec > 0);
    assert.ok(r.flops > 0, 'FLOPs are counted');
    assert.ok(r.mfu === null || (r.mfu > 0 && r.mfu < 1.5), `mfu ${r.mfu}`);
    assert.ok(r.joules !== null || r.energySource.length > 0, 'energy or the reason it was not measured');
    assert.equal(r.joulesPerSample === null, r.joules === null);
    assert.equal(r.cachedTeacher, true);
    assert.ok(r.teacherSeconds > 0);
    // The teacher is left untouched and back in training mode.
    teacher.parameters().forEach((p, i) => assert.deepEqual(Array.from(p.data()), teacherBefore[i]));
    assert.equal(teacher.training, true);
    student.dispose();
    opt.dispose();
  });

  it('gives the same student with cached and with on-the-fly teacher logits', async () => {
    const run = async (cache: boolean) => {
      const student = mlp(3, 16);
      const opt = new optim.SGD(student.parameters(), { lr: 0.1 });
      const d = new distill.Distiller({ teacher, student, temperature: 3, alpha: 0.7, optimizer: opt });
      const r = await d.fit(train, { epochs: 2, batchSize: 64, seed: 5, quiet: true, cacheTeacherLogits: cache });
      const w = student.parameters().map((p) => Array.from(p.data()));
      student.dispose();
      return { w, r };
    };
    const a = await run(true);
    const b = await run(false);
    assert.equal(a.r.cachedTeacher, true);
    assert.equal(b.r.cachedTeacher, false);
    a.w.forEach((w, i) => w.forEach((v, j) => assert.ok(Math.abs(v - b.w[i][j]) < 1e-5, `param ${i}[${j}]: ${v} vs ${b.w[i][j]}`)));
    // Without the cache the teacher runs every epoch: more FLOPs for the same samples.
    assert.ok(b.r.flops > a.r.flops || b.r.flopsSource === 'kernels');
  });

  it('with alpha = 0 trains exactly as the Trainer with cross entropy', async () => {
    const s1 = mlp(4, 16);
    const o1 = new optim.SGD(s1.parameters(), { lr: 0.1 });
    await new jl.Trainer({ model: s1, optimizer: o1 }).fit(train, { epochs: 2, batchSize: 64, seed: 3, quiet: true });
    const s2 = mlp(4, 16);
    const o2 = new optim.SGD(s2.parameters(), { lr: 0.1 });
    await new distill.Distiller({ teacher, student: s2, alpha: 0, optimizer: o2 }).fit(train, { epochs: 2, batchSize: 64, seed: 3, quiet: true });
    s1.parameters().forEach((p, i) => assert.deepEqual(Array.from(p.data()), Array.from(s2.parameters()[i].data())));
    s1.dispose();
    s2.dispose();
  });

  it('accepts an int8-quantized teacher', async () => {
    const q = jl.quant.quantize(teacher, { mode: 'dynamic' });
    const student = mlp(5, 16);
    const d = new distill.Distiller({ teacher: q, student, optimizer: new optim.Adam(student.parameters(), { lr: 1e-2 }) });
    const r = await d.fit(train, { epochs: 5, batchSize: 32, validation: test, quiet: true, cacheTeacherLogits: false });
    const qAcc = jl.tidy(() => jl.noGrad(() => nn.functional.accuracy(q.eval().forward(test.x) as jl.Tensor, test.y)));
    const fAcc = jl.tidy(() => jl.noGrad(() => nn.functional.accuracy(teacher.eval().forward(test.x) as jl.Tensor, test.y)));
    teacher.train();
    assert.ok(Math.abs(qAcc - fAcc) < 0.03, `int8 teacher ${qAcc}, fp32 teacher ${fAcc}`);
    assert.ok(r.epochs[4].valMetrics!.accuracy > 0.8, `accuracy ${r.epochs[4].valMetrics!.accuracy}`);
    student.dispose();
    q.dispose();
  });

  it('trains a hint (intermediate features, with an automatic projection)', async () => {
    const student = mlp(6, 16);
    const d = new distill.Distiller({
      teacher, student, optimizer: (params) => new optim.Adam(params, { lr: 1e-2 }),
      hint: { teacherLayer: 1, studentLayer: 1, weight: 0.5 },
    });
    assert.ok(d.hint!.projection instanceof nn.Linear);
    const r = await d.fit(train, { epochs: 4, batchSize: 32, validation: test, quiet: true });
    const hints = r.epochs.map((e) => e.hintLoss!);
    assert.ok(hints.every(Number.isFinite));
    assert.ok(hints[3] < hints[0], `the hint loss goes down: ${hints.join(', ')}`);
    assert.ok(r.epochs[3].valMetrics!.accuracy > 0.8);
    student.dispose();
  });

  it('validates its options', () => {
    const student = mlp(7, 16);
    const opt = new optim.SGD(student.parameters(), { lr: 0.1 });
    expectJouleError(() => new distill.Distiller({ teacher, student, optimizer: opt, temperature: -1 }), 'INVALID_ARGUMENT', /temperature/);
    expectJouleError(() => new distill.Distiller({ teacher: {} as never, student, optimizer: opt }), 'INVALID_ARGUMENT', /teacher/);
    expectJouleError(() => new distill.Distiller({ teacher, student: teacher, optimizer: opt }), 'INVALID_ARGUMENT', /same model/);
    expectJouleError(() => new distill.Distiller({ teacher, student, optimizer: opt, hint: { teacherLayer: 9, studentLayer: 0 } }), 'INVALID_ARGUMENT', /teacherLayer/);
    expectJouleError(() => new distill.Distiller({ teacher, student, optimizer: opt, hint: { teacherLayer: 1, studentLayer: 1 } }), 'INVALID_ARGUMENT', /projection/);
    expectJouleError(() => new distill.Distiller({ teacher, student, optimizer: opt, bogus: 1 } as never), 'INVALID_ARGUMENT', /unknown option/);
    student.dispose();
  });
});
