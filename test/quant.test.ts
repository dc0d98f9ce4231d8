// int8 quantization: kernels against the scalar reference on every ISA path, quantization
// conventions and edge values, the API (quantizeTensor, fakeQuantize, QuantizedLinear, quantize,
// QAT, save/load) and accuracy on MNIST.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as jl from '../lib/index';
import { assertClose, expectJouleError, itTidy, Rng } from './helpers';

const { quant, nn } = jl;
const ISAS: jl.Isa[] = ['avx512', 'avx2', 'generic'];
const SIZES = [1, 3, 17, 33, 65, 257, 1000];

function availableIsas(): jl.Isa[] {
  const prev = jl.getIsa();
  const out: jl.Isa[] = [];
  for (const isa of ISAS) {
    try {
      jl.setIsa(isa);
      out.push(isa);
    } catch {
      // the CPU lacks it
    }
  }
  jl.setIsa(prev);
  return out;
}

function int8Tensor(rng: Rng, shape: number[], lo = -128, hi = 127): jl.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Int8Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(lo, hi + 1);
  return jl.tensor(a, { shape });
}

function floatTensor(rng: Rng, shape: number[], lo = -2, hi = 2): jl.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return jl.tensor(Float32Array.from(rng.floats(n, lo, hi)), { shape });
}

function withIsa(isa: jl.Isa, fn: () => void): void {
  const prev = jl.getIsa();
  jl.setIsa(isa);
  try {
    fn();
  } finally {
    jl.setIsa(prev);
  }
}

describe('quant: int8 GEMM kernels', () => {
  const isas = availableIsas();

  it('every ISA path selects its kernel', () => {
    for (const isa of isas) withIsa(isa, () => assert.ok(quant.kernelName().length > 0));
    if (isas.includes('avx512') && jl.buildInfo().cpu.avx512vnni) withIsa('avx512', () => assert.equal(quant.kernelName(), 'avx512-vnni'));
    withIsa('generic', () => assert.equal(quant.kernelName(), 'generic'));
  });

  itTidy('int32 products equal the reference exactly on every ISA (sizes 1, 3, 17, 33, 65, 257, 1000; M = 1)', () => {
    const rng = new Rng(7);
    const shapes: [number, number, number][] = [];
    for (const s of SIZES) {
      shapes.push([s, rng.pick([1, 3, 17, 65]), rng.pick(SIZES.slice(0, 6))]);
      shapes.push([1, s, rng.pick(SIZES)]);
      shapes.push([rng.pick([3, 17, 33]), rng.pick([17, 65, 257]), s]);
    }
    shapes.push([257, 1000, 33], [65, 65, 1000], [1, 1000, 1000]);
    for (const [m, n, k] of shapes) {
      const a = int8Tensor(rng, [m, k]);
      const w = int8Tensor(rng, [n, k]);
      const ref = quant.int8MatmulReference(a, w);
      assert.equal(ref.dtype, 'int32');
      for (const isa of isas) {
        withIsa(isa, () => {
          const c = quant.int8Matmul(a, w);
          assert.deepEqual(c.shape, [m, n]);
          assert.deepEqual(c.data(), ref.data(), `${isa} ${m}x${n}x${k}`);
        });
      }
    }
  });

  itTidy('saturated operands (-128 and 127 everywhere) accumulate exactly in int32', () => {
    for (const [va, vw] of [[-128, -128], [127, -128], [-128, 127], [127, 127]]) {
      const k = 1000;
      const a = jl.full([5, k], va, { dtype: 'int8' });
      const w = jl.full([70, k], vw, { dtype: 'int8' });
      for (const isa of isas) {
        withIsa(isa, () => {
          const c = quant.int8Matmul(a, w).data();
          assert.ok(c.every((v) => v === va * vw * k), `${isa}: ${va} x ${vw}`);
        });
      }
    }
  });

  itTidy('the fused fp32 path (dynamic per-row quantization, scales, bias, ReLU/GELU) matches the reference', () => {
    const rng = new Rng(11);
    for (const [m, n, k] of [[1, 65, 33], [17, 257, 65], [33, 10, 1000], [3, 1, 3]] as [number, number, number][]) {
      const x = floatTensor(rng, [m, k], -3, 3);
      const wf = floatTensor(rng, [n, k]);
      const bias = floatTensor(rng, [n]);
      const { q, scale } = quant.quantizeTensor(wf, { perChannel: true });
      for (const activation of ['none', 'relu', 'gelu'] as const) {
        const ref = quant.int8MatmulReference(x, q, { wScale: scale, bias, activation });
        for (const isa of isas) {
          withIsa(isa, () => {
            const layer = new quant.QuantizedLinear(q, scale, bias);
            const y = layer.forwardFused(x, activation);
            assertClose(y, ref, { rtol: 1e-5, atol: 1e-5 }, `${isa} ${activation} ${m}x${n}x${k}`);
            layer.dispose();
          });
        }
      }
    }
  });

  itTidy('dequantized products stay within the bound the scales imply', () => {
    const rng = new Rng(3);
    const [m, n, k] = [9, 40, 300];
    const x = floatTensor(rng, [m, k], -4, 4);
    const w = floatTensor(rng, [n, k], -0.5, 0.5);
    const layer = quant.QuantizedLinear.fromFloat(w, null);
    const y = layer.forward(x).data();
    const exact = x.matmul(w.transpose(0, 1)).data();
    const xd = x.data(), wd = w.data(), ws = layer.weightScale.data();
    for (let i = 0; i < m; i++) {
      let amax = 0;
      for (let p = 0; p < k; p++) amax = Math.max(amax, Math.abs(xd[i * k + p]));
      const dx = amax / 127 / 2;
      for (let j = 0; j < n; j++) {
        const dw = ws[j] / 2;
        let bound = 0;
        for (let p = 0; p < k; p++) bound += Math.abs(xd[i * k + p]) * dw + Math.abs(wd[j * k + p]) * dx + dx * dw;
        const err = Math.abs(y[i * n + j] - exact[i * n + j]);
        assert.ok(err <= bound * 1.0001 + 1e-4, `(${i}, ${j}): error ${err} exceeds ${bound}`);
      }
    }
    layer.dispose();
  });

  itTidy('an all-zero row or weight channel gets scale 0 and gives 0, not NaN', () => {
    const rng = new Rng(5);
    const x = floatTensor(rng, [4, 70]);
    const xz = jl.concat([jl.zeros([1, 70]), x], 0);
    const w = jl.concat([jl.zeros([1, 70]), floatTensor(rng, [20, 70])], 0);
    const { scale } = quant.quantizeTensor(w, { perChannel: true });
    assert.equal(scale.data()[0], 0);
    for (const isa of isas) {
      withIsa(isa, () => {
        const layer = quant.QuantizedLinear.fromFloat(w, null);
        const y = layer.forward(xz);
        const d = y.data();
        assert.ok(d.every((v) => Number.isFinite(v)));
        for (let j = 0; j < 21; j++) assert.ok(d[j] === 0, `row 0, column ${j}: ${d[j]}`);
        for (let i = 0; i < 5; i++) assert.ok(d[i * 21] === 0, `column 0, row ${i}: ${d[i * 21]}`);
        layer.dispose();
      });
    }
    const zq = quant.quantizeTensor(jl.zeros([3, 3]));
    assert.equal(zq.scale.item(), 0);
    assert.ok((quant.dequantize(zq).data() as Float32Array).every((v) => v === 0));
  });

  itTidy('NaN or ±Infinity in an activation row makes that row NaN (other rows unaffected)', () => {
    const rng = new Rng(9);
    const w = floatTensor(rng, [20, 33]);
    const x = floatTensor(rng, [3, 33]);
    const xd = x.data() as Float32Array;
    xd[33 + 5] = NaN;
    xd[2 * 33 + 7] = Infinity;
    const xb = jl.tensor(xd, { shape: [3, 33] });
    for (const isa of isas) {
      withIsa(isa, () => {
        const layer = quant.QuantizedLinear.fromFloat(w, null);
        const y = layer.forward(xb).data();
        for (let j = 0; j < 20; j++) {
          assert.ok(Number.isFinite(y[j]));
          assert.ok(Number.isNaN(y[20 + j]) && Number.isNaN(y[40 + j]), `${isa}: column ${j}`);
        }
        layer.dispose();
      });
    }
  });
});

describe('quant: memory', () => {
  itTidy('a quantized model frees everything it holds when disposed', () => {
    const m = new nn.Sequential(new nn.Linear(20, 30), new nn.ReLU(), new nn.Linear(30, 5));
    const q = quant.quantize(m, { outlierThreshold: 3 });
    const qat = quant.prepareQat(m);
    const c = quant.convertQat(qat);
    const x = jl.randn([3, 20]).mul(2);
    q.forward(x);
    c.forward(x);
    for (const model of [q, qat, c, m]) model.dispose();
  });
});

describe('quant: tensors', () => {
  itTidy('symmetric int8: scale = absmax / 127, round half to even, range [-127, 127]', () => {
    const x = jl.tensor([127, 0.5, 1.5, 2.5, -2.5, -127, 3.49]);
    const { q, scale, qmin, qmax } = quant.quantizeTensor(x);
    assert.equal(scale.item(), 1);
    assert.deepEqual(Array.from(q.data()), [127, 0, 2, 2, -2, -127, 3]);
    assert.equal(q.dtype, 'int8');
    assert.deepEqual([qmin, qmax], [-127, 127]);
  });

  itTidy('per-channel scales along an axis', () => {
    const x = jl.tensor([[1, -2, 0.5], [10, 5, -20]]);
    const r0 = quant.quantizeTensor(x, { perChannel: true, axis: 0 });
    assertClose(r0.scale, [2 / 127, 20 / 127]);
    const r1 = quant.quantizeTensor(x, { perChannel: true, axis: 1 });
    assertClose(r1.scale, [10 / 127, 5 / 127, 20 / 127]);
    assertClose(quant.dequantize(r1), x, { atol: 20 / 127 / 2 + 1e-6, rtol: 0 });
  });

  itTidy('affine uint8 with a zero point round-trips within scale / 2', () => {
    const rng = new Rng(2);
    const x = floatTensor(rng, [50], -1, 3);
    const { q, scale, zeroPoint } = quant.quantizeTensor(x, { dtype: 'uint8' });
    assert.equal(q.dtype, 'uint8');
    assert.ok(zeroPoint!.item() > 0 && zeroPoint!.item() < 255);
    assertClose(quant.dequantize(q, scale, zeroPoint, -1), x, { atol: scale.item() / 2 + 1e-6, rtol: 0 });
  });

  itTidy('quantizing with a given scale saturates at -128 and 127', () => {
    const x = jl.tensor([-1000, -128.4, -127.6, 0, 126.5, 127.4, 1e9]);
    const out = quant.fakeQuantize(x, 1, 0, -128, 127);
    assert.deepEqual(Array.from(out.data()), [-128, -128, -128, 0, 126, 127, 127]);
  });

  itTidy('non-finite inputs are rejected with INVALID_ARGUMENT', () => {
    expectJouleError(() => quant.quantizeTensor(jl.tensor([1, NaN, 2])), 'INVALID_ARGUMENT', /non-finite/);
    expectJouleError(() => quant.quantizeTensor(jl.tensor([1, Infinity])), 'INVALID_ARGUMENT', /non-finite/);
    expectJouleError(() => quant.quantizeTensor(jl.tensor([1, -Infinity]), { dtype: 'uint8' }), 'INVALID_ARGUMENT');
    expectJouleError(() => quant.quantizeTensor(jl.tensor([1]), { dtype: 'int4' as never }), 'DTYPE');
    expectJouleError(() => quant.quantizeTensor(jl.tensor([1]), { perChannel: true, axis: 3 }), 'INVALID_ARGUMENT');
  });

  itTidy('fakeQuantize: straight-through gradient inside the range, zero where it saturated', () => {
    const x = jl.tensor([-3, -0.26, 0.1, 0.5, 2.9], { requiresGrad: true });
    const y = quant.fakeQuantize(x, 0.02, 0, -127, 127);
    assertClose(y, [-2.54, -0.26, 0.1, 0.5, 2.54], { atol: 1e-6 });
    y.mul(jl.tensor([1, 2, 3, 4, 5])).sum().backward();
    assertClose(x.grad!, [0, 2, 3, 4, 0]);
  });
});

describe('quant: models', function () {
  this.timeout(120000);
  let train: jl.data.MnistSplit extends never ? never : ReturnType<typeof jl.data.mnist>['train'];
  let test: typeof train;
  let model: jl.nn.Sequential;
  let fpAcc = 0;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-quant-'));

  function fit(m: jl.nn.Module, lr: number, steps: number): void {
    const opt = new jl.optim.Adam(m.parameters(), { lr });
    const loader = new jl.data.DataLoader(train, { batchSize: 128, shuffle: true, seed: 1 });
    m.train();
    let n = 0;
    for (const b of loader) {
      jl.tidy(() => {
        const loss = nn.functional.crossEntropy(m.forward(b.x) as jl.Tensor, b.y);
        opt.zeroGrad();
        loss.backward();
        opt.step();
      });
      jl.dispose(b.tensors);
      if (++n >= steps) break;
    }
    m.eval();
  }

  function accuracy(m: jl.nn.Module): number {
    return jl.tidy(() => {
      const pred = jl.noGrad(() => (m.forward(test.x) as jl.Tensor).argmax(1)).data();
      const y = test.y.data();
      let c = 0;
      for (let i = 0; i < y.length; i++) if (pred[i] === y[i]) c++;
      return (100 * c) / y.length;
    });
  }

  before(() => {
    ({ train, test } = jl.data.mnist());
    jl.manualSeed(0);
    model = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 256), new nn.ReLU(), new nn.Linear(256, 10));
    fit(model, 1e-3, 470); // one epoch
    fpAcc = accuracy(model);
  });
  after(() => {
    model.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a trained MNIST MLP keeps its accuracy within 0.5 points (dynamic and static int8)', () => {
    assert.ok(fpAcc > 94, `fp32 accuracy ${fpAcc}`);
    const dyn = quant.quantize(model);
    assert.ok(dyn.at(0) instanceof quant.QuantizedLinear && dyn.at(4) instanceof quant.QuantizedLinear);
    assert.ok(model.at(0) instanceof nn.Linear, 'the input model is left untouched');
    const dynAcc = accuracy(dyn);
    assert.ok(Math.abs(dynAcc - fpAcc) <= 0.5, `dynamic int8 ${dynAcc} vs fp32 ${fpAcc}`);
    for (const observer of ['minmax', 'percentile'] as const) {
      const st = quant.quantize(model, { mode: 'static', calibration: train, calibrationSamples: 1024, observer });
      assert.ok((st.at(2) as jl.quant.QuantizedLinear).inputScale > 0);
      const stAcc = accuracy(st);
      assert.ok(Math.abs(stAcc - fpAcc) <= 0.5, `static (${observer}) int8 ${stAcc} vs fp32 ${fpAcc}`);
      st.dispose();
    }
    dyn.dispose();
  });

  it('exclude keeps the named layers in fp32', () => {
    const q = quant.quantize(model, { exclude: ['4'] });
    assert.ok(q.at(0) instanceof quant.QuantizedLinear);
    assert.ok(q.at(4) instanceof nn.Linear);
    expectJouleError(() => quant.quantize(model, { exclude: ['nope'] }), 'INVALID_ARGUMENT', /not a module/);
    q.dispose();
  });

  it('QAT recovers the accuracy that post-training quantization lost (2-bit weights)', () => {
    const opts = { perChannel: true, weightBits: 2 };
    const ptq = quant.quantize(model, opts);
    const ptqAcc = accuracy(ptq);
    const qat = quant.prepareQat(model, opts);
    assert.ok(qat.at(0) instanceof quant.QatLinear);
    fit(qat, 1e-3, 150);
    const converted = quant.convertQat(qat);
    assert.ok(converted.at(0) instanceof quant.QuantizedLinear);
    const qatAcc = accuracy(converted);
    assert.ok(ptqAcc < fpAcc - 3, `the case should hurt PTQ: ${ptqAcc} vs fp32 ${fpAcc}`);
    assert.ok(qatAcc > fpAcc - 1.5, `QAT ${qatAcc} vs fp32 ${fpAcc} (PTQ ${ptqAcc})`);
    for (const m of [ptq, qat, converted]) m.dispose();
  });

  it('saves as safetensors (int8 + scales) at least 3.9x smaller, and loads back identically', () => {
    const q = quant.quantize(model);
    const qFile = path.join(tmp, 'mlp-int8.safetensors');
    const fFile = path.join(tmp, 'mlp-fp32.safetensors');
    const qBytes = quant.saveQuantized(q, qFile);
    jl.io.saveSafetensors(fFile, model.stateDict());
    const ratio = fs.statSync(fFile).size / qBytes;
    assert.ok(ratio >= 3.9, `size ratio ${ratio}`);
    const header = jl.io.safetensors.inspect(qFile);
    assert.equal(header.tensors['0.weight'].dtype, 'I8');
    assert.equal(header.tensors['0.weight_scale'].dtype, 'F32');
    const architecture = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 256), new nn.ReLU(), new nn.Linear(256, 10));
    const loaded = quant.loadQuantized(qFile, architecture);
    jl.tidy(() => {
      const x = test.x.slice(0, 0, 64);
      assert.deepEqual((loaded.forward(x) as jl.Tensor).data(), (q.forward(x) as jl.Tensor).data());
    });
    expectJouleError(() => quant.loadQuantized(fFile, architecture), 'CHECKPOINT_CORRUPT');
    for (const m of [q, loaded, architecture]) m.dispose();
  });

  itTidy('outlier decomposition (LLM.int8()) cuts the error that outlier features cause', () => {
    const rng = new Rng(4);
    const k = 256;
    const xd = rng.floats(32 * k, -1, 1);
    for (let i = 0; i < 32; i++) for (const f of [3, 77, 200]) xd[i * k + f] = 40 * (rng.next() + 0.5);
    const x = jl.tensor(Float32Array.from(xd), { shape: [32, k] });
    const w = floatTensor(rng, [64, k], -0.1, 0.1);
    const exact = x.matmul(w.transpose(0, 1));
    const err = (y: jl.Tensor) => exact.sub(y).abs().max().item();
    const plain = quant.QuantizedLinear.fromFloat(w, null);
    const mixed = quant.QuantizedLinear.fromFloat(w, null, { outlierThreshold: 6 });
    const e0 = err(plain.forward(x));
    const e1 = err(mixed.forward(x));
    assert.ok(e1 < e0 / 4, `outlier error ${e1} vs plain ${e0}`);
    // Without outliers above the threshold it is the plain path.
    const small = x.clamp(-1, 1);
    assert.deepEqual(mixed.forward(small).data(), plain.forward(small).data());
    plain.dispose();
    mixed.dispose();
  });
});
