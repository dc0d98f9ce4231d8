// MLP 784-1024-1024-10 training throughput (samples/s) at batch 256, random data.
// Usage: npx tsx bench/mlp_train.ts [sgd|adamw] [steps]   (JOULE_NUM_THREADS sets the threads)
import * as jl from '../lib/index';

const which = process.argv[2] ?? 'sgd';
const steps = Number(process.argv[3] ?? 60);
const batch = 256;
jl.manualSeed(0);
const model = new jl.nn.Sequential(new jl.nn.Linear(784, 1024), new jl.nn.ReLU(), new jl.nn.Linear(1024, 1024), new jl.nn.ReLU(), new jl.nn.Linear(1024, 10));
const opt = which === 'adamw' ? new jl.optim.AdamW(model.parameters(), { lr: 1e-3 }) : new jl.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const xs = Array.from({ length: 4 }, () => jl.randn([batch, 784]));
const ys = Array.from({ length: 4 }, () => jl.randint(0, 10, [batch]));
function step(i: number): number {
  const loss = jl.nn.functional.crossEntropy(model.forward(xs[i % 4]) as jl.Tensor, ys[i % 4]);
  opt.zeroGrad();
  loss.backward();
  opt.step();
  const v = i % 20 === 0 ? loss.item() : 0;
  loss.dispose();
  return v;
}
for (let i = 0; i < 10; i++) step(i);
const t0 = process.hrtime.bigint();
for (let i = 0; i < steps; i++) step(i);
const s = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(`${which} threads=${jl.getNumThreads()} isa=${jl.getIsa()}: ${((steps * batch) / s).toFixed(0)} samples/s (${((s / steps) * 1e3).toFixed(2)} ms/step), live tensors ${jl.memory().tensors}`);
