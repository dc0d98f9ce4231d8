// Finite-difference gradient checks: every differentiable op in lib/ops and every nn layer and
// loss. The numerical gradient is a central difference of Joule's float32 forward (step 1e-2,
// on inputs kept away from kinks), compared to the analytic gradient of backward() on random
// inputs of awkward shapes (1, 7, 33), with broadcasting and non-contiguous views.
import assert from 'node:assert/strict';
import * as jl from '../lib/index';
import { Tensor } from '../lib/index';
import { setGradHome } from '../lib/autograd';
import { expectJouleError } from './helpers';

const F = jl.nn.functional;

// Deterministic JS random numbers for the inputs (independent of the library RNG).
let seed = 12345;
function rnd(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
}
/** Values with |v| in [lo, lo + span): away from 0, where abs/relu/sign have kinks. */
function values(n: number, lo = 0.1, span = 1, positive = false): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (positive || rnd() < 0.5 ? 1 : -1) * (lo + span * rnd());
  return a;
}

/** Distinct values `step` apart, shuffled (11 is coprime with the sizes used): no ties, no kinks within eps. */
function grid(n: number, offset: number, step = 0.2): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => ((i * 11) % n) * step - (n * step) / 2 + offset);
}

type Spec = { shape: number[]; data?: Float32Array; positive?: boolean };

/**
 * Checks d(sum(f(inputs) * R))/d(input_k) for each input against central differences.
 * f receives leaf tensors (requiring grad) built from the specs' data.
 */
function gradcheck(name: string, specs: Spec[], f: (xs: Tensor[]) => Tensor, opts: { eps?: number; atol?: number; rtol?: number } = {}): void {
  const eps = opts.eps ?? 1e-2;
  const atol = opts.atol ?? 2e-2;
  const rtol = opts.rtol ?? 2e-2;
  const datas = specs.map((s) => s.data ?? values(s.shape.reduce((a, b) => a * b, 1), 0.1, 1, s.positive));
  let weights: Float32Array | null = null;
  const evaluate = (ds: Float32Array[], withGrad: boolean): { value: number; grads: Float32Array[] } => {
    const before = jl.memory().tensors;
    const result = jl.tidy(() => {
      const xs = ds.map((d, i) => jl.tensor(d, { shape: specs[i].shape, requiresGrad: withGrad }));
      const out = f(xs);
      if (!weights) weights = values(out.size, 0.5, 1);
      const w = jl.tensor(weights, { shape: out.shape });
      const loss = jl.sum(jl.mul(out, w));
      const value = loss.item();
      if (!withGrad) return { value, grads: [] };
      loss.backward();
      const grads = xs.map((x) => (x.grad ? (x.grad.data() as Float32Array) : new Float32Array(x.size)));
      xs.forEach((x) => x.dispose());
      return { value, grads };
    });
    assert.equal(jl.memory().tensors, before, `${name}: tensors leaked`);
    return result;
  };
  const { grads } = evaluate(datas, true);
  datas.forEach((d, k) => {
    for (let i = 0; i < d.length; i++) {
      const orig = d[i];
      d[i] = orig + eps;
      const up = evaluate(datas, false).value;
      d[i] = orig - eps;
      const down = evaluate(datas, false).value;
      d[i] = orig;
      const numeric = (up - down) / (2 * eps);
      const analytic = grads[k][i];
      assert.ok(Math.abs(numeric - analytic) <= atol + rtol * Math.abs(numeric),
        `${name}: d/dinput${k}[${i}] analytic ${analytic} vs numeric ${numeric}`);
    }
  });
}

describe('gradcheck: arithmetic ops', () => {
  const binaries: [string, (a: Tensor, b: Tensor) => Tensor, boolean][] = [
    ['add', jl.add, false], ['sub', jl.sub, false], ['mul', jl.mul, false], ['div', jl.div, true],
    ['pow', jl.pow, true], ['maximum', jl.maximum, false], ['minimum', jl.minimum, false],
  ];
  // maximum/minimum have a kink where a = b: grids offset by 0.1 keep every pair 0.1 apart.
  for (const [name, op, positive] of binaries) {
    it(`${name} with broadcasting [7,1,3] x [1,5,3] and [7] x []`, () => {
      const kink = name === 'maximum' || name === 'minimum';
      gradcheck(name, [{ shape: [7, 1, 3], positive, data: kink ? grid(21, 0.05) : undefined },
        { shape: [1, 5, 3], positive: name === 'div', data: kink ? grid(15, 0.15) : undefined }], ([a, b]) => op(a, b));
      gradcheck(`${name} scalar`, [{ shape: [7], positive }, { shape: [], positive: true }], ([a, b]) => op(a, b));
    });
  }
  it('scalar operands (tensor op number, number op tensor)', () => {
    gradcheck('x*3-2', [{ shape: [33] }], ([a]) => jl.sub(jl.mul(a, 3), 2));
    gradcheck('2/x', [{ shape: [7], positive: true }], ([a]) => jl.div(2, a));
    gradcheck('x^2.5', [{ shape: [7], positive: true }], ([a]) => jl.pow(a, 2.5));
    gradcheck('2^x', [{ shape: [7] }], ([a]) => jl.pow(2, a));
  });
  const unaries: [string, (a: Tensor) => Tensor, boolean][] = [
    ['neg', jl.neg, false], ['abs', jl.abs, false], ['exp', jl.exp, false], ['log', jl.log, true],
    ['sqrt', jl.sqrt, true], ['rsqrt', jl.rsqrt, true], ['tanh', jl.tanh, false], ['sigmoid', jl.sigmoid, false],
    ['relu', jl.relu, false], ['gelu', jl.gelu, false], ['silu', jl.silu, false], ['square', jl.square, false],
    ['reciprocal', jl.reciprocal, true], ['sin', jl.sin, false], ['cos', jl.cos, false], ['log1p', jl.log1p, true],
    ['expm1', jl.expm1, false], ['erf', jl.erf, false],
  ];
  for (const [name, op, positive] of unaries) {
    it(`${name} on [7,33] and on a transposed view`, () => {
      gradcheck(name, [{ shape: [7, 33], positive }], ([a]) => op(a));
      gradcheck(`${name} (view)`, [{ shape: [33, 7], positive }], ([a]) => op(jl.transpose(a)));
    });
  }
  it('clamp and where', () => {
    gradcheck('clamp', [{ shape: [7, 7], data: grid(49, 0.1, 0.1) }], ([a]) => jl.clamp(a, -0.5, 0.6));
    gradcheck('where', [{ shape: [7, 1], data: grid(7, 0.05) }, { shape: [1, 7], data: grid(7, 1) }], ([a, b]) => jl.where(jl.gt(jl.add(a, b), 0), a, b));
  });
});

describe('gradcheck: reductions and softmax', () => {
  it('sum, mean over axes, keepDims, all', () => {
    gradcheck('sum all', [{ shape: [7, 33] }], ([a]) => jl.sum(a));
    gradcheck('sum axis', [{ shape: [7, 1, 33] }], ([a]) => jl.sum(a, [0, 2], { keepDims: true }));
    gradcheck('mean axis', [{ shape: [7, 33] }], ([a]) => jl.mean(a, 1));
    gradcheck('mean view', [{ shape: [33, 7] }], ([a]) => jl.mean(jl.transpose(a), 0));
  });
  it('max, min, prod', () => {
    gradcheck('max', [{ shape: [7, 5], data: grid(35, 0.01, 0.1) }], ([a]) => jl.max(a, 1));
    gradcheck('min', [{ shape: [7, 5], data: grid(35, 0.01, 0.1) }], ([a]) => jl.min(a, 0, { keepDims: true }));
    gradcheck('prod', [{ shape: [7, 4], positive: true }], ([a]) => jl.prod(a, 1));
  });
  it('var, std, logsumexp', () => {
    gradcheck('var', [{ shape: [7, 33] }], ([a]) => jl.variance(a, 1));
    gradcheck('std', [{ shape: [7, 6] }], ([a]) => jl.std(a, 1, { correction: 0 }));
    gradcheck('logsumexp', [{ shape: [7, 33] }], ([a]) => jl.logsumexp(a, 1));
  });
  it('softmax, logSoftmax (last and middle axis, views)', () => {
    gradcheck('softmax', [{ shape: [7, 33] }], ([a]) => jl.softmax(a, -1));
    gradcheck('logSoftmax', [{ shape: [3, 7, 5] }], ([a]) => jl.logSoftmax(a, 1));
    gradcheck('softmax view', [{ shape: [5, 7] }], ([a]) => jl.softmax(jl.transpose(a), 1));
  });
});

describe('gradcheck: matmul and shapes', () => {
  it('matmul 2-D, batched with broadcasting, 1-D operands, views', () => {
    gradcheck('mm', [{ shape: [7, 33] }, { shape: [33, 5] }], ([a, b]) => jl.matmul(a, b));
    gradcheck('bmm broadcast', [{ shape: [2, 1, 3, 7] }, { shape: [3, 7, 4] }], ([a, b]) => jl.matmul(a, b));
    gradcheck('mv', [{ shape: [5, 7] }, { shape: [7] }], ([a, b]) => jl.matmul(a, b));
    gradcheck('vm', [{ shape: [7] }, { shape: [7, 3] }], ([a, b]) => jl.matmul(a, b));
    gradcheck('mm views', [{ shape: [33, 7] }, { shape: [5, 33] }], ([a, b]) => jl.matmul(jl.transpose(a), jl.transpose(b)));
  });
  it('reshape, view, flatten, squeeze, unsqueeze, transpose, permute', () => {
    gradcheck('reshape', [{ shape: [7, 6] }], ([a]) => jl.reshape(jl.transpose(a), [3, 14]));
    gradcheck('view', [{ shape: [7, 6] }], ([a]) => jl.view(a, [42]));
    gradcheck('flatten', [{ shape: [2, 3, 7] }], ([a]) => jl.flatten(a, 1));
    gradcheck('squeeze', [{ shape: [7, 1, 3] }], ([a]) => jl.squeeze(a, 1));
    gradcheck('unsqueeze', [{ shape: [7, 3] }], ([a]) => jl.mul(jl.unsqueeze(a, 0), jl.tensor([[[1]], [[2]]])));
    gradcheck('permute', [{ shape: [2, 3, 7] }], ([a]) => jl.mul(jl.permute(a, [2, 0, 1]), jl.arange(3).astype('float32')));
  });
  it('slice, narrow, select, expand, contiguous, clone, astype', () => {
    gradcheck('slice', [{ shape: [7, 5] }], ([a]) => jl.slice(a, 0, 1, 7, 2));
    gradcheck('narrow', [{ shape: [7, 5] }], ([a]) => jl.narrow(a, 1, 1, 3));
    gradcheck('select', [{ shape: [7, 5] }], ([a]) => jl.select(a, 1, 3));
    gradcheck('expand', [{ shape: [7, 1] }], ([a]) => jl.expand(a, [2, 7, 33]));
    gradcheck('contiguous', [{ shape: [5, 7] }], ([a]) => jl.contiguous(jl.transpose(a)));
    gradcheck('clone', [{ shape: [7] }], ([a]) => jl.clone(a));
    gradcheck('astype', [{ shape: [7] }], ([a]) => jl.astype(a, 'float32'));
  });
  it('concat, stack, split, chunk', () => {
    gradcheck('concat', [{ shape: [7, 2] }, { shape: [7, 3] }], ([a, b]) => jl.concat([a, b], 1));
    gradcheck('stack', [{ shape: [7] }, { shape: [7] }], ([a, b]) => jl.stack([a, b], 1));
    gradcheck('split', [{ shape: [7, 4] }], ([a]) => { const [p, q] = jl.split(a, [3, 4], 0); return jl.add(jl.sum(p, 0), jl.sum(jl.mul(q, q), 0)); });
    gradcheck('chunk', [{ shape: [7, 4] }], ([a]) => { const [p, q] = jl.chunk(a, 2, 1); return jl.mul(p, q); });
  });
  it('indexSelect (repeated indices), gather, scatterAdd', () => {
    const idx = jl.tensor([3, 0, 3, 6], { dtype: 'int32' });
    gradcheck('indexSelect', [{ shape: [7, 3] }], ([a]) => jl.indexSelect(a, 0, idx));
    const gi = jl.tensor([[0, 2], [1, 1], [4, 0]], { dtype: 'int32' });
    gradcheck('gather', [{ shape: [3, 5] }], ([a]) => jl.gather(a, 1, gi));
    gradcheck('scatterAdd', [{ shape: [3, 5] }, { shape: [3, 2] }], ([a, s]) => jl.scatterAdd(a, 1, gi.slice(1, 0, 2), s));
    idx.dispose();
    gi.dispose();
  });
});

describe('gradcheck: nn layers and losses', () => {
  for (const act of ['none', 'relu', 'gelu'] as const) {
    it(`linear (${act}) on [7,33]->[5], 3-D input, and a transposed input view`, () => {
      gradcheck(`linear ${act}`, [{ shape: [7, 33] }, { shape: [5, 33] }, { shape: [5] }], ([x, w, b]) => F.linear(x, w, b, act));
      gradcheck(`linear ${act} 3-D`, [{ shape: [2, 3, 7] }, { shape: [1, 7] }], ([x, w]) => F.linear(x, w, null, act));
      gradcheck(`linear ${act} view`, [{ shape: [33, 7] }, { shape: [5, 33] }, { shape: [5] }], ([x, w, b]) => F.linear(jl.transpose(x), w, b, act));
    });
  }
  it('linear: the weight used twice accumulates (both terms)', () => {
    gradcheck('tied', [{ shape: [4, 7] }, { shape: [7, 7] }], ([x, w]) => F.linear(F.linear(x, w, null, 'relu'), w));
  });
  it('Sequential of Linear+ReLU / Linear+GELU (fused) matches unfused composition', () => {
    jl.manualSeed(3);
    const fused = new jl.nn.Sequential(new jl.nn.Linear(7, 5), new jl.nn.GELU(), new jl.nn.Linear(5, 3), new jl.nn.ReLU());
    const x = jl.randn([4, 7]);
    const y1 = jl.tidy(() => fused.forward(x) as Tensor);
    const y2 = jl.tidy(() => jl.relu(F.linear(jl.gelu(F.linear(x, fused.parameters()[0], fused.parameters()[1])), fused.parameters()[2], fused.parameters()[3])));
    const a = y1.data(), b = y2.data();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5);
    jl.dispose([x, y1, y2]);
    fused.dispose();
  });
  it('layerNorm with and without affine, over one and two trailing dims', () => {
    gradcheck('layerNorm', [{ shape: [7, 33] }, { shape: [33] }, { shape: [33] }], ([x, w, b]) => F.layerNorm(x, 33, w, b), { eps: 1e-2, atol: 3e-2 });
    gradcheck('layerNorm 2 dims', [{ shape: [3, 2, 5] }], ([x]) => F.layerNorm(x, [2, 5]));
    gradcheck('layerNorm view', [{ shape: [5, 7] }, { shape: [5] }], ([x, w]) => F.layerNorm(jl.transpose(x), 5, w));
  });
  it('embedding (repeated indices accumulate)', () => {
    const idx = jl.tensor([[1, 4], [1, 0], [6, 1]], { dtype: 'int32' });
    gradcheck('embedding', [{ shape: [7, 3] }], ([w]) => jl.reshape(jl.indexSelect(w, 0, jl.reshape(idx, [-1])), [3, 2, 3]));
    idx.dispose();
  });
  it('dropout (fixed seed: the same mask in every evaluation)', () => {
    gradcheck('dropout', [{ shape: [7, 33] }], ([x]) => { jl.manualSeed(7); return F.dropout(x, 0.3); });
  });
  it('crossEntropy: indices, smoothing, ignoreIndex, reductions, [N,C,d] and probabilities', () => {
    const t = jl.tensor([2, 0, 4, 1, 4, 3, 0], { dtype: 'int32' });
    for (const reduction of ['mean', 'sum', 'none'] as const) {
      gradcheck(`ce ${reduction}`, [{ shape: [7, 5] }], ([x]) => F.crossEntropy(x, t, { reduction }));
    }
    gradcheck('ce smoothing', [{ shape: [7, 5] }], ([x]) => F.crossEntropy(x, t, { labelSmoothing: 0.2 }));
    gradcheck('ce ignore', [{ shape: [7, 5] }], ([x]) => F.crossEntropy(x, t, { ignoreIndex: 4, labelSmoothing: 0.1 }));
    gradcheck('ce view', [{ shape: [5, 7] }], ([x]) => F.crossEntropy(jl.transpose(x), t));
    const t3 = jl.tensor([[0, 2, 1], [2, 2, 0]], { dtype: 'int32' });
    gradcheck('ce [N,C,d]', [{ shape: [2, 3, 3] }], ([x]) => F.crossEntropy(x, t3, { labelSmoothing: 0.1 }));
    const probs = jl.softmax(jl.tensor(values(35), { shape: [7, 5] }), 1);
    gradcheck('ce probs', [{ shape: [7, 5] }], ([x]) => F.crossEntropy(x, probs, { labelSmoothing: 0.1 }));
    jl.dispose([t, t3, probs]);
  });
  it('nllLoss, mseLoss, l1Loss, binaryCrossEntropyWithLogits, klDiv', () => {
    const t = jl.tensor([2, 0, 4, 1, 4, 3, 0], { dtype: 'int32' });
    gradcheck('nll', [{ shape: [7, 5] }], ([x]) => F.nllLoss(jl.logSoftmax(x, 1), t, { ignoreIndex: 0 }));
    gradcheck('nll sum', [{ shape: [7, 5] }], ([x]) => F.nllLoss(x, t, { reduction: 'sum' }));
    gradcheck('mse', [{ shape: [7, 3] }, { shape: [1, 3] }], ([a, b]) => F.mseLoss(a, b));
    gradcheck('mse none', [{ shape: [7, 3] }, { shape: [7, 3] }], ([a, b]) => F.mseLoss(a, b, { reduction: 'none' }));
    gradcheck('l1', [{ shape: [33] }, { shape: [33] }], ([a, b]) => F.l1Loss(a, b));
    const y = jl.tensor(values(21, 0, 1, true), { shape: [7, 3] });
    gradcheck('bce', [{ shape: [7, 3] }], ([x]) => F.binaryCrossEntropyWithLogits(x, y));
    gradcheck('bce target+posWeight', [{ shape: [7, 3] }, { shape: [7, 3], positive: true }, { shape: [3], positive: true }],
      ([x, yy, pw]) => F.binaryCrossEntropyWithLogits(x, jl.mul(yy, 0.5), { posWeight: pw, reduction: 'sum' }));
    for (const reduction of ['batchmean', 'mean', 'sum', 'none'] as const) {
      gradcheck(`kl ${reduction}`, [{ shape: [7, 5] }, { shape: [7, 5], positive: true }], ([x, p]) => F.klDiv(jl.logSoftmax(x, 1), jl.div(p, jl.sum(p, 1, { keepDims: true })), { reduction }));
    }
    gradcheck('kl logTarget', [{ shape: [7, 5] }, { shape: [7, 5] }], ([x, l]) => F.klDiv(jl.logSoftmax(x, 1), jl.logSoftmax(l, 1), { logTarget: true }));
    jl.dispose([t, y]);
  });
});

describe('gradient homes (setGradHome)', () => {
  it('backward makes a new leaf gradient in its home, over stale values, for fused and generic ops, and adds to it after', () => {
    const home = jl.full([3, 12], 7).keep(); // stale values: every op must write over them
    const w = jl.randn([3, 4]).keep().requiresGrad_();
    const bias = jl.randn([3]).keep().requiresGrad_();
    const v = jl.randn([4]).keep().requiresGrad_();
    const x = jl.randn([5, 4]).keep();
    const asked: string[] = [];
    const removers = [
      setGradHome(w, () => {
        asked.push('w');
        return home.slice(0, 0, 1).reshape([3, 4]);
      }),
      setGradHome(bias, () => {
        asked.push('bias');
        return home.slice(0, 2, 3).slice(1, 0, 3).reshape([3]);
      }),
      setGradHome(v, () => {
        asked.push('v');
        return home.slice(0, 1, 2).slice(1, 0, 4).reshape([4]);
      }),
    ];
    const loss = () => jl.tidy(() => jl.add(F.linear(x, w, bias).square().sum(), jl.mul(x, v).square().sum()).backward());
    const expected = () => jl.tidy(() => {
      const [ww, bb, vv] = [w, bias, v].map((t) => t.detach().requiresGrad_());
      jl.add(F.linear(x, ww, bb).square().sum(), jl.mul(x, vv).square().sum()).backward();
      return [ww, bb, vv].map((t) => Array.from(t.grad!.data() as Float32Array));
    });
    loss();
    // linear writes dW and db over its homes' stale values; the generic path copies over v's.
    assert.deepEqual(asked.sort(), ['bias', 'v', 'w']);
    const [wr, br, vr] = expected();
    const row = (r: number, n: number) => Array.from(home.data() as Float32Array).slice(r * 12, r * 12 + n);
    assert.deepEqual(row(0, 12), wr);
    assert.deepEqual(row(1, 4), vr);
    assert.deepEqual(row(2, 3), br);
    assert.deepEqual(row(1, 12).slice(4), [7, 7, 7, 7, 7, 7, 7, 7], 'outside the homes untouched');
    assert.deepEqual(row(2, 12).slice(3), [7, 7, 7, 7, 7, 7, 7, 7, 7], 'outside the homes untouched');
    // The gradients are views of the home: a second backward adds there (and asks no home).
    loss();
    const twice = row(0, 12);
    twice.forEach((g, i) => assert.ok(Math.abs(g - 2 * wr[i]) <= 1e-5 * Math.abs(g) + 1e-6));
    row(2, 3).forEach((g, i) => assert.ok(Math.abs(g - 2 * br[i]) <= 1e-5 * Math.abs(g) + 1e-6));
    assert.equal(asked.length, 3);
    // Without a home, a new gradient is the leaf's own tensor again.
    for (const r of removers) r();
    w.grad!.dispose(); w.grad = null;
    loss();
    assert.deepEqual(row(0, 12), twice);
    jl.dispose([home, w, bias, v, x, w.grad!, bias.grad!, v.grad!]);
  });

  it('a fused op that fails leaves the gradient unset, not a half-written home', () => {
    const home = jl.full([3, 4], 7).keep();
    const w = jl.randn([3, 4]).keep().requiresGrad_();
    const remove = setGradHome(w, () => home.reshape([3, 4]));
    // The input disposed before backward: linear's backward throws once the home was handed out.
    const x = jl.randn([5, 4]);
    const y = F.linear(x, w).sum();
    x.dispose();
    expectJouleError(() => y.backward(), 'DISPOSED', /disposed/);
    assert.equal(w.grad, null);
    assert.deepEqual(Array.from(home.data() as Float32Array), new Array(12).fill(7), 'the home is not written');
    remove();
    jl.dispose([home, w, y]);
  });
});
