// MNIST with a hand-written training loop: DataLoader, tidy() per step, Adam, a cosine
// learning-rate schedule, and a test-set evaluation.  Run: npx tsx examples/mnist-custom-loop.ts
//
// It performs exactly the operations of examples/mnist-trainer.ts, so for the same seed both
// end with the same parameters, bit for bit (test/mnist.test.ts checks it).
import * as jl from '../lib/index';

export interface MnistRunOptions {
  epochs?: number;
  batchSize?: number;
  lr?: number;
  hidden?: number;
  seed?: number;
  /** Train on the first `limit` training examples only (quick runs, tests). */
  limit?: number;
  quiet?: boolean;
}

export const DEFAULTS = { epochs: 6, batchSize: 128, lr: 1e-3, hidden: 256, seed: 0 };

/** The model both examples train: 784-hidden-10 with ReLU, initialised from `seed`. */
export function makeModel(hidden: number, seed: number): jl.nn.Sequential {
  jl.manualSeed(seed);
  return new jl.nn.Sequential(new jl.nn.Linear(784, hidden), new jl.nn.ReLU(), new jl.nn.Linear(hidden, 10));
}

export function mnistData(limit?: number): { train: jl.data.Dataset; test: jl.data.TensorDataset } {
  const { train, test } = jl.data.mnist();
  if (limit === undefined) return { train, test };
  return { train: new jl.data.Subset(train, Int32Array.from({ length: Math.min(limit, train.length) }, (_, i) => i)), test };
}

export async function trainCustomLoop(options: MnistRunOptions = {}) {
  const o = { ...DEFAULTS, ...options };
  const { train, test } = mnistData(o.limit);
  const model = makeModel(o.hidden, o.seed);
  const optimizer = new jl.optim.Adam(model.parameters(), { lr: o.lr });
  const scheduler = new jl.optim.CosineAnnealingLR(optimizer, { tMax: o.epochs });
  const loader = new jl.data.DataLoader(train, { batchSize: o.batchSize, shuffle: true, seed: o.seed });
  const t0 = performance.now();
  const epochLosses: number[] = [];
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    model.train();
    let lossSum = 0;
    let seen = 0;
    for (const batch of loader) {
      // Everything made in a step (the batch included) is freed when the step ends.
      const loss = jl.tidy(() => {
        const l = jl.nn.functional.crossEntropy(model.forward(batch.x) as jl.Tensor, batch.y);
        optimizer.zeroGrad();
        l.backward();
        optimizer.step();
        jl.dispose(batch.tensors);
        return l.item();
      });
      lossSum += loss * batch.size;
      seen += batch.size;
    }
    scheduler.step();
    epochLosses.push(lossSum / seen);
    if (!o.quiet) console.log(`epoch ${epoch + 1}/${o.epochs}  loss ${(lossSum / seen).toFixed(4)}  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  // Test accuracy, in eval mode and without gradients, 1000 images at a time.
  model.eval();
  let correct = 0;
  jl.noGrad(() => {
    for (const b of new jl.data.DataLoader(test, { batchSize: 1000 })) {
      jl.tidy(() => {
        correct += jl.nn.functional.accuracy(model.forward(b.x) as jl.Tensor, b.y) * b.size;
        jl.dispose(b.tensors);
      });
    }
  });
  return { model, optimizer, epochLosses, accuracy: correct / test.length, seconds };
}

if (require.main === module) {
  trainCustomLoop().then(({ accuracy, seconds, model, optimizer }) => {
    console.log(`test accuracy ${(accuracy * 100).toFixed(2)}%  (trained in ${seconds.toFixed(1)} s)`);
    model.dispose();
    optimizer.dispose();
  });
}
