// MNIST with the Trainer: the same model, optimizer, schedule and data order as
// examples/mnist-custom-loop.ts, plus validation, progress and a report.
// Run: npx tsx examples/mnist-trainer.ts
import * as jl from '../lib/index';
import { DEFAULTS, makeModel, mnistData, MnistRunOptions } from './mnist-custom-loop';

export async function trainWithTrainer(options: MnistRunOptions & { validation?: boolean } = {}) {
  const o = { ...DEFAULTS, ...options };
  const { train, test } = mnistData(o.limit);
  const model = makeModel(o.hidden, o.seed);
  const optimizer = new jl.optim.Adam(model.parameters(), { lr: o.lr });
  const scheduler = new jl.optim.CosineAnnealingLR(optimizer, { tMax: o.epochs });
  const trainer = new jl.Trainer({ model, optimizer, scheduler, loss: 'crossEntropy', metrics: ['accuracy'] });
  const report = await trainer.fit(train, {
    epochs: o.epochs,
    batchSize: o.batchSize,
    seed: o.seed,
    validation: o.validation ? test : undefined,
    quiet: o.quiet,
  });
  const { metrics } = trainer.evaluate(test, { batchSize: 1000 });
  return { model, optimizer, trainer, report, accuracy: metrics.accuracy };
}

if (require.main === module) {
  trainWithTrainer({ validation: true }).then(({ accuracy, report, model, optimizer }) => {
    console.log(`test accuracy ${(accuracy * 100).toFixed(2)}%  (${report.totalSeconds.toFixed(1)} s, ${Math.round(report.samplesPerSec)} samples/s)`);
    model.dispose();
    optimizer.dispose();
  });
}
