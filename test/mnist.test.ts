// MNIST end to end: the Trainer reaches >= 97.5% test accuracy with a small MLP, and the
// hand-written loop of examples/mnist-custom-loop.ts matches the Trainer bit for bit.
import * as assert from 'node:assert/strict';

import * as jl from '../lib/index';
import { trainCustomLoop } from '../examples/mnist-custom-loop';
import { trainWithTrainer } from '../examples/mnist-trainer';

describe('MNIST', function () {
  this.timeout(180000);

  it('an MLP 784-256-10 (Adam, batch 128, 6 epochs) reaches >= 97.5% test accuracy', async () => {
    const { accuracy, report, model, optimizer } = await trainWithTrainer({ quiet: true });
    // Recorded for the log, not asserted: tests assert behaviour, never timings.
    console.log(`      MNIST: ${(accuracy * 100).toFixed(2)}% test accuracy, ${report.totalSeconds.toFixed(1)} s, ${Math.round(report.samplesPerSec)} samples/s`);
    assert.ok(accuracy >= 0.975, `test accuracy ${accuracy}`);
    assert.equal(report.epochs.length, 6);
    assert.equal(report.samples, 6 * 60000);
    model.dispose();
    optimizer.dispose();
  });

  it('the custom loop and the Trainer end with the same parameters and losses for the same seed', async () => {
    const opts = { epochs: 2, limit: 6000, hidden: 64, seed: 7, quiet: true };
    const before = jl.memory().tensors;
    const a = await trainCustomLoop(opts);
    const b = await trainWithTrainer(opts);
    assert.deepEqual(b.report.epochs.map((e) => e.loss), a.epochLosses);
    const pa = a.model.parameters();
    const pb = b.model.parameters();
    assert.equal(pa.length, 4);
    pa.forEach((p, i) => assert.deepEqual(Array.from(pb[i].data()), Array.from(p.data()), `parameter ${i}`));
    assert.equal(b.accuracy, a.accuracy);
    for (const r of [a, b]) {
      r.model.dispose();
      r.optimizer.dispose();
    }
    assert.equal(jl.memory().tensors, before);
  });
});
