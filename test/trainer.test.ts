import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as jl from '../lib/index';
import { expectJouleError } from './helpers';

const { nn, optim } = jl;

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

function mlp(seed: number, dropout = 0): jl.nn.Sequential {
  jl.manualSeed(seed);
  const layers: jl.nn.Module[] = [new nn.Linear(8, 32), new nn.ReLU()];
  if (dropout > 0) layers.push(new nn.Dropout(dropout));
  layers.push(new nn.Linear(32, 4));
  return new nn.Sequential(...layers);
}

function params(model: jl.nn.Module): number[][] {
  return model.parameters().map((p) => Array.from(p.data()));
}

describe('Trainer', function () {
  this.timeout(60000);
  let train: jl.data.TensorDataset;
  let val: jl.data.TensorDataset;
  let dir: string;
  before(() => {
    train = blobs(640, 1);
    val = blobs(256, 2);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-trainer-'));
  });
  after(() => {
    train.dispose();
    val.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fits: the loss falls, metrics and validation are reported, evaluate and predict agree', async () => {
    const model = mlp(0);
    const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
    const trainer = new jl.Trainer({ model, optimizer: opt, loss: 'crossEntropy', metrics: ['accuracy'] });
    const report = await trainer.fit(train, { epochs: 5, batchSize: 32, seed: 3, validation: val, quiet: true });
    assert.equal(report.epochs.length, 5);
    assert.equal(report.samples, 5 * 640);
    assert.equal(report.stoppedEarly, false);
    assert.ok(report.totalSeconds > 0 && report.samplesPerSec > 0);
    // Cost metering: FLOPs and MFU, and joules or the reason they were not measured.
    assert.ok(report.flops > 0 && (report.mfu === null || report.mfu > 0) && (report.joules !== null || report.energySource.length > 0));
    const [first, last] = [report.epochs[0], report.epochs[4]];
    assert.equal(first.epoch, 1);
    assert.ok(last.loss < first.loss * 0.5, `loss ${first.loss} -> ${last.loss}`);
    assert.ok(last.metrics.accuracy > 0.9, `accuracy ${last.metrics.accuracy}`);
    assert.ok(last.valMetrics!.accuracy > 0.85, `val accuracy ${last.valMetrics!.accuracy}`);
    assert.equal(last.lr, 0.01);
    assert.ok(last.seconds > 0 && last.samplesPerSec > 0);
    const ev = trainer.evaluate(val);
    assert.equal(ev.samples, 256);
    assert.ok(Math.abs(ev.loss - last.valLoss!) < 1e-6);
    assert.equal(ev.metrics.accuracy, last.valMetrics!.accuracy);
    const before = jl.memory().tensors;
    const out = trainer.predict(val.x, { batchSize: 100 });
    assert.deepEqual(out.shape, [256, 4]);
    assert.equal(out.requiresGrad, false);
    const out2 = trainer.predict(val);
    assert.deepEqual(Array.from(out2.data()), Array.from(out.data()));
    const acc = jl.nn.functional.accuracy(out, val.y);
    assert.equal(acc, ev.metrics.accuracy);
    jl.dispose([out, out2]);
    assert.equal(jl.memory().tensors, before);
    assert.equal(model.training, true);
    model.dispose();
    opt.dispose();
  });

  it('does not leak: live tensors stay constant over 200 steps', async () => {
    const data = blobs(200 * 16, 4);
    const model = mlp(0, 0.1);
    const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const trainer = new jl.Trainer({ model, optimizer: opt, metrics: ['accuracy'], clipGradNorm: 1 });
    const counts: number[] = [];
    const bytes: number[] = [];
    const report = await trainer.fit(data, {
      epochs: 1, batchSize: 16, quiet: true, validation: val,
      callbacks: { onBatchEnd: () => { counts.push(jl.memory().tensors); bytes.push(jl.memory().bytes); } },
    });
    assert.equal(counts.length, 200);
    assert.equal(trainer.step, 200);
    assert.equal(report.epochs[0].metrics.accuracy > 0, true);
    // From the second step on (the optimizer's state exists), nothing accumulates. (Counts may
    // only fall: finalizers can free garbage other tests left behind.)
    for (let i = 2; i < counts.length; i++) {
      assert.ok(counts[i] <= counts[i - 1], `live tensors grew at step ${i + 1}: ${counts.join(' ')}`);
      assert.ok(bytes[i] <= bytes[i - 1], `live bytes grew at step ${i + 1}`);
    }
    model.dispose();
    opt.dispose();
    data.dispose();
  });

  it('yields to the event loop: a setInterval timer keeps firing during fit()', async () => {
    const model = mlp(0);
    const opt = new optim.Adam(model.parameters());
    const trainer = new jl.Trainer({ model, optimizer: opt });
    let ticks = 0;
    let ticksAtStart = -1;
    const timer = setInterval(() => ticks++, 1);
    try {
      await trainer.fit(train, {
        epochs: 3, batchSize: 8, quiet: true,
        callbacks: { onBatchEnd: (info) => { if (info.step === 1) ticksAtStart = ticks; } },
      });
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks - ticksAtStart > 0, `the timer fired ${ticks - ticksAtStart} times during fit()`);
    model.dispose();
    opt.dispose();
  });

  it('is deterministic, and resuming from a checkpoint gives the uninterrupted result', async () => {
    // Dropout (the native RNG), a scheduler, momentum state and shuffling all have to be restored.
    const setup = (seed: number) => {
      const model = mlp(seed, 0.2);
      const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
      const scheduler = new optim.StepLR(opt, { stepSize: 1, gamma: 0.7 });
      return { model, opt, trainer: new jl.Trainer({ model, optimizer: opt, scheduler, metrics: ['accuracy'] }) };
    };
    const fitOpts = { batchSize: 32, seed: 11, quiet: true };

    const a = setup(0);
    jl.manualSeed(100);
    const ra = await a.trainer.fit(train, { ...fitOpts, epochs: 4 });
    const b = setup(0);
    jl.manualSeed(100);
    const rb = await b.trainer.fit(train, { ...fitOpts, epochs: 4 });
    assert.deepEqual(params(b.model), params(a.model));
    assert.deepEqual(rb.epochs.map((e) => e.loss), ra.epochs.map((e) => e.loss));

    // Interrupted: 2 epochs with checkpoints, then a fresh process state resumes to 4.
    const ckdir = path.join(dir, 'resume');
    const c = setup(0);
    jl.manualSeed(100);
    await c.trainer.fit(train, { ...fitOpts, epochs: 2, checkpoint: { dir: ckdir, every: 1 } });
    assert.deepEqual(fs.readdirSync(ckdir).sort(), ['epoch-0001.safetensors', 'epoch-0002.safetensors']);
    const d = setup(42); // different initial weights: the checkpoint must overwrite them
    jl.manualSeed(999); // a different RNG state: the checkpoint must restore it
    const rd = await d.trainer.fit(train, { batchSize: 32, quiet: true, epochs: 4, resumeFrom: ckdir });
    assert.equal(rd.resumedFromEpoch, 2);
    assert.equal(d.trainer.step, a.trainer.step);
    assert.deepEqual(params(d.model), params(a.model));
    assert.deepEqual(rd.epochs.map((e) => e.loss), ra.epochs.map((e) => e.loss));
    assert.deepEqual(rd.epochs.map((e) => e.lr), ra.epochs.map((e) => e.lr));
    assert.equal(rd.samples, 2 * 640);
    for (const s of [a, b, c, d]) {
      s.model.dispose();
      s.opt.dispose();
    }
  });

  it('stops early when the monitored value stops improving', async () => {
    const model = mlp(0);
    const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
    const values = [0.5, 0.6, 0.55, 0.58, 0.59, 0.9, 0.95];
    let calls = 0;
    const seen: number[] = [];
    const trainer = new jl.Trainer({
      model, optimizer: opt,
      metrics: [{ name: 'score', fn: () => values[Math.min(calls, values.length - 1)] }],
    });
    const report = await trainer.fit(train, {
      epochs: 20, batchSize: 640, quiet: true, validation: val,
      earlyStopping: { monitor: 'valScore', patience: 3, minDelta: 0.01 },
      callbacks: { onEpochEnd: (r) => { seen.push(r.valMetrics!.score); calls++; } },
    });
    // Best 0.6 at epoch 2; epochs 3, 4, 5 do not beat it by 0.01: stop after epoch 5.
    assert.equal(report.stoppedEarly, true);
    assert.equal(report.stopReason, 'earlyStopping');
    assert.equal(report.epochs.length, 5);
    assert.equal(report.bestEpoch, 2);
    assert.equal(report.bestValue, 0.6);
    // The loss only falls here: monitoring it never stops the run.
    const r2 = await trainer.fit(train, { epochs: 3, batchSize: 64, quiet: true, earlyStopping: { monitor: 'loss' } });
    assert.equal(r2.stoppedEarly, false);
    assert.equal(r2.epochs.length, 3);
    model.dispose();
    opt.dispose();
  });

  it('calls the callbacks, and stop() ends the run after the current batch', async () => {
    const model = mlp(0);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01 });
    const trainer = new jl.Trainer({ model, optimizer: opt });
    const events: string[] = [];
    const report = await trainer.fit(train, {
      epochs: 3, batchSize: 320, quiet: true,
      callbacks: {
        onBatchEnd: async (i) => { events.push(`b${i.epoch}.${i.batch}`); await new Promise((r) => setTimeout(r, 1)); },
        onEpochEnd: (r) => { events.push(`e${r.epoch}`); },
        onTrainEnd: (r) => { events.push(`t${r.epochs.length}`); },
      },
    });
    assert.deepEqual(events, ['b1.0', 'b1.1', 'e1', 'b2.0', 'b2.1', 'e2', 'b3.0', 'b3.1', 'e3', 't3']);
    assert.equal(report.stoppedEarly, false);
    const r2 = await trainer.fit(train, { epochs: 5, batchSize: 64, quiet: true, callbacks: { onBatchEnd: (i, t) => { if (i.step >= 3 + 6) t.stop(); } } });
    assert.equal(r2.stoppedEarly, true);
    assert.equal(r2.stopReason, 'stop()');
    assert.equal(r2.samples, 3 * 64);
    model.dispose();
    opt.dispose();
  });

  it('trains a regression with mse, with a DataLoader and a custom loss', async () => {
    jl.manualSeed(5);
    const x = jl.randn([256, 3]);
    const y = jl.tidy(() => x.matmul(jl.tensor([[1], [-2], [0.5]])).reshape([256]).add(0.3));
    const data = new jl.data.TensorDataset(x, y);
    const model = new nn.Sequential(new nn.Linear(3, 1));
    const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
    const trainer = new jl.Trainer({ model, optimizer: opt, loss: 'mse' });
    const loader = new jl.data.DataLoader(data, { batchSize: 32, shuffle: true, seed: 1 });
    const r = await trainer.fit(loader, { epochs: 20, quiet: true });
    assert.ok(r.epochs[19].loss < 1e-4, `mse ${r.epochs[19].loss}`);
    const custom = new jl.Trainer({ model, optimizer: opt, loss: (out, t) => out.reshape([-1]).sub(t).abs().mean() });
    assert.ok(custom.evaluate(data).loss < 0.02);
    expectJouleError(() => new jl.Trainer({ model, optimizer: opt, loss: () => 3 as never }).evaluate(data), 'INVALID_ARGUMENT', /loss function returned 3/);
    model.dispose();
    opt.dispose();
    data.dispose();
  });

  it('shows progress: a bar on a terminal, lines otherwise, nothing when quiet', async () => {
    const model = mlp(0);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01 });
    const trainer = new jl.Trainer({ model, optimizer: opt, metrics: ['accuracy'] });
    const capture = (isTTY: boolean) => {
      const chunks: string[] = [];
      return { chunks, stream: { isTTY, columns: 200, write: (s: string) => chunks.push(s) } };
    };
    const tty = capture(true);
    await trainer.fit(train, { epochs: 1, batchSize: 64, progressStream: tty.stream });
    const bar = tty.chunks.join('');
    assert.match(bar, /\r\x1b\[K/);
    assert.match(bar, /epoch 1\/1 \[=*>? *\] +\d+%  loss \d\.\d{4}  [\d,.]+ samples\/s  ETA \d+:\d\d/);
    assert.match(bar, /epoch 1\/1  loss \d\.\d{4}  accuracy \d\.\d{4}/);
    const plain = capture(false);
    await trainer.fit(train, { epochs: 2, batchSize: 64, progressStream: plain.stream });
    const text = plain.chunks.join('');
    assert.ok(!text.includes('\r'));
    assert.match(text, /^epoch 1\/2  loss/m);
    assert.match(text, /^epoch 2\/2  loss/m);
    const quiet = capture(true);
    await trainer.fit(train, { epochs: 1, batchSize: 64, quiet: true, progressStream: quiet.stream });
    await trainer.fit(train, { epochs: 1, batchSize: 64, progress: false, progressStream: quiet.stream });
    assert.deepEqual(quiet.chunks, []);
    model.dispose();
    opt.dispose();
  });

  it('validates its arguments', async () => {
    const model = mlp(0);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01 });
    const T = jl.Trainer as unknown as new (o: unknown) => jl.Trainer;
    expectJouleError(() => new T(undefined), 'INVALID_ARGUMENT', /model is required/);
    expectJouleError(() => new T({ model }), 'INVALID_ARGUMENT', /optimizer is required/);
    expectJouleError(() => new T({ model: {}, optimizer: opt }), 'INVALID_ARGUMENT', /model has no forward/);
    expectJouleError(() => new T({ model, optimizer: opt, loss: 'hinge' }), 'INVALID_ARGUMENT', /loss/);
    expectJouleError(() => new T({ model, optimizer: opt, metrics: ['f1'] }), 'INVALID_ARGUMENT', /metric/);
    expectJouleError(() => new T({ model, optimizer: opt, metrics: ['accuracy', 'accuracy'] }), 'INVALID_ARGUMENT', /duplicate/);
    expectJouleError(() => new T({ model, optimizer: opt, clipGradNorm: -1 }), 'INVALID_ARGUMENT', /clipGradNorm/);
    expectJouleError(() => new T({ model, optimizer: opt, lr: 1 }), 'INVALID_ARGUMENT', /unknown option 'lr'/);
    expectJouleError(() => new T({ model, optimizer: opt, device: 'tpu' }), 'DEVICE', /device/);
    const trainer = new jl.Trainer({ model, optimizer: opt, metrics: ['accuracy'] });
    const rejects = async (p: () => Promise<unknown>, re: RegExp) => {
      await assert.rejects(p, (e: unknown) => e instanceof jl.JouleError && e.code === 'INVALID_ARGUMENT' && re.test(e.message));
    };
    await rejects(() => trainer.fit({} as never), /Dataset or a DataLoader/);
    await rejects(() => trainer.fit(train, { epochs: 0 }), /epochs/);
    await rejects(() => trainer.fit(train, { batchSize: -4 }), /batchSize/);
    await rejects(() => trainer.fit(train, { epoch: 3 } as never), /unknown option 'epoch'/);
    await rejects(() => trainer.fit(new jl.data.DataLoader(train), { batchSize: 8 }), /DataLoader/);
    await rejects(() => trainer.fit(train, { earlyStopping: { monitor: 'valLoss' } }), /needs fit\(\{validation\}\)/);
    await rejects(() => trainer.fit(train, { earlyStopping: { monitor: 'f1' } }), /cannot monitor 'f1'/);
    await rejects(() => trainer.fit(train, { earlyStopping: { mode: 'up' as never } }), /mode/);
    await rejects(() => trainer.fit(train, { callbacks: { onBatchEnd: 3 as never } }), /onBatchEnd/);
    await rejects(() => trainer.fit(train, { callbacks: { onEpochStart: () => {} } as never }), /onEpochStart/);
    await rejects(() => trainer.fit(train, { checkpoint: { every: 2 } as never }), /dir/);
    await rejects(() => trainer.fit(train, { resumeFrom: path.join(dir, 'nothing-here') }), /does not exist/);
    await rejects(() => trainer.fit(train, { progress: 'fancy' as never }), /progress/);
    await rejects(() => trainer.fit(train, { validation: 5 as never }), /validation/);
    const running = trainer.fit(train, { epochs: 1, quiet: true });
    await rejects(() => trainer.fit(train, { quiet: true }), /already running/);
    await running;
    expectJouleError(() => trainer.evaluate(train, { bs: 3 } as never), 'INVALID_ARGUMENT', /unknown option 'bs'/);
    expectJouleError(() => trainer.predict(jl.tensor(1)), 'SHAPE_MISMATCH', /0-d/);
    model.dispose();
    opt.dispose();
  });

  describe('checkpoints', () => {
    it('hold the model, optimizer state, scheduler, counters and RNG in one safetensors file', async () => {
      const model = mlp(0);
      const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
      const scheduler = new optim.StepLR(opt, { stepSize: 1, gamma: 0.5 });
      const trainer = new jl.Trainer({ model, optimizer: opt, scheduler });
      await trainer.fit(train, { epochs: 2, batchSize: 64, quiet: true });
      const file = path.join(dir, 'ck.safetensors');
      jl.manualSeed(77);
      const rng = jl.getRngState();
      jl.saveCheckpoint(file, { model, optimizer: opt, scheduler, epoch: 2, step: trainer.step, extra: { note: 'x', best: Infinity } });
      const raw = jl.io.safetensors.load(file);
      const names = Object.keys(raw.tensors);
      assert.ok(names.includes('model.0.weight') && names.includes('model.2.bias'), names.join(', '));
      assert.ok(names.some((n) => n.startsWith('optim.state.0.')), names.join(', '));
      assert.equal(raw.metadata['joule.epoch'], '2');
      assert.equal(JSON.parse(raw.metadata['joule.rng']).seed, rng.seed);
      jl.dispose(raw.tensors);

      const model2 = mlp(9);
      const opt2 = new optim.Adam(model2.parameters(), { lr: 0.5 });
      const scheduler2 = new optim.StepLR(opt2, { stepSize: 1, gamma: 0.5 });
      jl.manualSeed(1);
      const before = jl.memory().tensors;
      const loaded = jl.loadCheckpoint(file, { model: model2, optimizer: opt2, scheduler: scheduler2 });
      assert.deepEqual(params(model2), params(model));
      assert.deepEqual(jl.getRngState(), rng);
      assert.equal(loaded.epoch, 2);
      assert.equal(loaded.step, trainer.step);
      assert.deepEqual(loaded.extra, { note: 'x', best: Infinity });
      assert.equal(opt2.paramGroups[0].lr, opt.paramGroups[0].lr);
      assert.deepEqual(scheduler2.getLastLr(), scheduler.getLastLr());
      const sd1 = opt.stateDict();
      const sd2 = opt2.stateDict();
      for (const [k, s] of Object.entries(sd1.state)) {
        for (const [name, v] of Object.entries(s)) {
          const w = sd2.state[Number(k)][name];
          if (v instanceof jl.Tensor) assert.deepEqual(Array.from((w as jl.Tensor).data()), Array.from(v.data()), `${k}.${name}`);
          else assert.equal(w, v);
        }
      }
      // Only the optimizer's state tensors are new (they replaced lazily-absent ones).
      assert.ok(jl.memory().tensors - before <= Object.values(sd2.state).reduce((n, s) => n + Object.values(s).filter((v) => v instanceof jl.Tensor).length, 0));
      for (const m of [model, model2]) m.dispose();
      for (const o of [opt, opt2]) o.dispose();
    });

    it('reject corrupt or foreign files with CHECKPOINT_CORRUPT, and mismatched models clearly', () => {
      const model = mlp(0);
      const file = path.join(dir, 'bad.safetensors');
      jl.tidy(() => jl.io.safetensors.save(file, { 'model.0.weight': jl.zeros([32, 8]) }));
      expectJouleError(() => jl.loadCheckpoint(file, { model }), 'CHECKPOINT_CORRUPT', /not a Joule checkpoint/);
      jl.saveCheckpoint(file, { model, epoch: 1 });
      const bytes = fs.readFileSync(file);
      fs.writeFileSync(file, bytes.subarray(0, bytes.length - 10));
      expectJouleError(() => jl.loadCheckpoint(file, { model }), 'CHECKPOINT_CORRUPT', /bad\.safetensors/);
      jl.saveCheckpoint(file, { model, epoch: 1 });
      const other = new nn.Sequential(new nn.Linear(8, 16));
      expectJouleError(() => jl.loadCheckpoint(file, { model: other }), 'INVALID_ARGUMENT', /missing keys|unexpected keys/);
      const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
      expectJouleError(() => jl.loadCheckpoint(file, { model, optimizer: opt }), 'CHECKPOINT_CORRUPT', /no optimizer state/);
      expectJouleError(() => jl.saveCheckpoint(file, { model, epoch: -1 }), 'INVALID_ARGUMENT', /epoch/);
      expectJouleError(() => jl.saveCheckpoint(file, { model: {} as never }), 'INVALID_ARGUMENT', /stateDict/);
      expectJouleError(() => jl.saveCheckpoint(file, { model, extra: { f: () => 1 } }), 'INVALID_ARGUMENT', /cannot store/);
      model.dispose();
      other.dispose();
    });
  });
});
