import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as jl from '../lib/index';
import { expectJouleError } from './helpers';

const { DataLoader, TensorDataset, Subset, randomSplit, trainValidationSplit, loadMnist, parseCsv, loadCsv, parseIdx, permutation } = jl.data;

/** A dataset whose x rows are [i, 10i] and y is i, so a batch tells which examples it holds. */
function indexed(n: number): jl.data.TensorDataset {
  const x = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    x[2 * i] = i;
    x[2 * i + 1] = 10 * i;
  }
  return new TensorDataset(jl.tensor(x, { shape: [n, 2] }), jl.tensor(Int32Array.from({ length: n }, (_, i) => i)));
}

function epochIds(loader: jl.data.DataLoader): number[][] {
  const out: number[][] = [];
  for (const b of loader) {
    const ids = Array.from(b.y.data());
    const xs = b.x.data();
    ids.forEach((id, k) => {
      assert.equal(xs[2 * k], id);
      assert.equal(xs[2 * k + 1], 10 * id);
    });
    assert.equal(b.size, ids.length);
    out.push(ids);
    jl.dispose(b.tensors);
  }
  return out;
}

describe('data', () => {
  let ds: jl.data.TensorDataset;
  before(() => (ds = indexed(103)));
  after(() => ds.dispose());

  describe('TensorDataset', () => {
    it('gives rows of every tensor, validates its arguments', () => {
      assert.equal(ds.length, 103);
      const e = ds.get(7);
      assert.deepEqual(Array.from(e.x.data()), [7, 70]);
      assert.equal(e.y.item(), 7);
      jl.dispose(e);
      expectJouleError(() => ds.get(103), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => ds.get(-1), 'INVALID_ARGUMENT', /out of range/);
      expectJouleError(() => ds.get(1.5), 'INVALID_ARGUMENT', /integer/);
      expectJouleError(() => new TensorDataset(), 'INVALID_ARGUMENT', /at least one/);
      const a = jl.zeros([3, 2]);
      const b = jl.zeros([4]);
      expectJouleError(() => new TensorDataset(a, b), 'SHAPE_MISMATCH', /axis 0/);
      expectJouleError(() => new TensorDataset(a, 3 as unknown as jl.Tensor), 'INVALID_ARGUMENT', /Tensor/);
      jl.dispose([a, b]);
    });

    it('keeps its tensors out of tidy() and frees them on dispose()', () => {
      const before = jl.memory().tensors;
      const d = jl.tidy(() => new TensorDataset(jl.ones([4, 3]), jl.zeros([4])));
      assert.equal(jl.memory().tensors, before + 2);
      assert.equal(d.length, 4);
      d.dispose();
      assert.equal(jl.memory().tensors, before);
    });
  });

  describe('DataLoader', () => {
    it('batches in order, the last batch partial unless dropLast', () => {
      const l = new DataLoader(ds, { batchSize: 10 });
      assert.equal(l.length, 11);
      const batches = epochIds(l);
      assert.equal(batches.length, 11);
      assert.deepEqual(batches.map((b) => b.length), [...Array(10).fill(10), 3]);
      assert.deepEqual(batches.flat(), Array.from({ length: 103 }, (_, i) => i));
      const d = new DataLoader(ds, { batchSize: 10, dropLast: true });
      assert.equal(d.length, 10);
      assert.equal(d.samplesPerEpoch, 100);
      const db = epochIds(d);
      assert.equal(db.length, 10);
      assert.ok(db.every((b) => b.length === 10));
    });

    it('shuffles with a seed: every example once per epoch, a new order each epoch, reproducible', () => {
      const a = new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 42 });
      const e0 = epochIds(a).flat();
      const e1 = epochIds(a).flat();
      assert.deepEqual([...e0].sort((p, q) => p - q), Array.from({ length: 103 }, (_, i) => i));
      assert.deepEqual([...e1].sort((p, q) => p - q), Array.from({ length: 103 }, (_, i) => i));
      assert.notDeepEqual(e0, e1);
      assert.notDeepEqual(e0, Array.from({ length: 103 }, (_, i) => i));
      const b = new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 42 });
      assert.deepEqual(epochIds(b).flat(), e0);
      b.setEpoch(1);
      assert.deepEqual(epochIds(b).flat(), e1);
      assert.equal(b.epoch, 2);
      const c = new DataLoader(ds, { batchSize: 16, shuffle: true, seed: 43 });
      assert.notDeepEqual(epochIds(c).flat(), e0);
      // The order does not depend on the batch size or on the native RNG.
      jl.manualSeed(5);
      jl.dispose(jl.randn([100]));
      const d = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 42 });
      assert.deepEqual(epochIds(d).flat(), e0);
    });

    it('covers every example exactly once with dropLast dropping only the tail of the order', () => {
      const l = new DataLoader(ds, { batchSize: 25, shuffle: true, seed: 3, dropLast: true });
      const ids = epochIds(l).flat();
      assert.equal(ids.length, 100);
      assert.equal(new Set(ids).size, 100);
      assert.deepEqual(ids, Array.from(l.order(0)).slice(0, 100));
    });

    it('makes one batch per step without leaking, and frees everything with the batch', () => {
      const before = jl.memory().tensors;
      const l = new DataLoader(ds, { batchSize: 8, shuffle: true });
      for (const b of l) {
        assert.equal(b.tensors.length, 2);
        jl.dispose(b.tensors);
      }
      assert.equal(jl.memory().tensors, before);
      jl.tidy(() => {
        for (const b of l) b.x.sum();
      });
      assert.equal(jl.memory().tensors, before);
    });

    it('works on datasets without getBatch (one get per example)', () => {
      const plain: jl.data.Dataset = { length: 5, get: (i) => ({ x: jl.tensor([i, i]), y: jl.tensor(i, { dtype: 'int32' }) }) };
      const before = jl.memory().tensors;
      const batches = [...new DataLoader(plain, { batchSize: 2 })];
      assert.deepEqual(batches.map((b) => b.x.shape), [[2, 2], [2, 2], [1, 2]]);
      assert.deepEqual(Array.from(batches[1].y.data()), [2, 3]);
      for (const b of batches) jl.dispose(b.tensors);
      assert.equal(jl.memory().tensors, before);
    });

    it('validates its options', () => {
      expectJouleError(() => new DataLoader(ds, { batchSize: 0 }), 'INVALID_ARGUMENT', /batchSize/);
      expectJouleError(() => new DataLoader(ds, { batchSize: 2.5 }), 'INVALID_ARGUMENT', /batchSize/);
      expectJouleError(() => new DataLoader(ds, { shuffle: 'yes' as unknown as boolean }), 'INVALID_ARGUMENT', /shuffle/);
      expectJouleError(() => new DataLoader(ds, { seed: -1 }), 'INVALID_ARGUMENT', /seed/);
      expectJouleError(() => new DataLoader(ds, { bachSize: 2 } as never), 'INVALID_ARGUMENT', /bachSize/);
      expectJouleError(() => new DataLoader({} as never), 'INVALID_ARGUMENT', /Dataset/);
      expectJouleError(() => new DataLoader(ds).setEpoch(-2), 'INVALID_ARGUMENT', /epoch/);
    });
  });

  describe('splits', () => {
    it('randomSplit: disjoint, complete, seeded; counts or fractions', () => {
      const [a, b, c] = randomSplit(ds, [50, 50, 3], 1);
      const ids = (s: jl.data.Subset) => Array.from(s.indices);
      assert.deepEqual([a.length, b.length, c.length], [50, 50, 3]);
      assert.deepEqual([...ids(a), ...ids(b), ...ids(c)].sort((p, q) => p - q), Array.from({ length: 103 }, (_, i) => i));
      assert.deepEqual(ids(randomSplit(ds, [50, 50, 3], 1)[0]), ids(a));
      assert.notDeepEqual(ids(randomSplit(ds, [50, 50, 3], 2)[0]), ids(a));
      const f = randomSplit(ds, [0.8, 0.2], 0);
      assert.deepEqual(f.map((s) => s.length), [83, 20]);
      expectJouleError(() => randomSplit(ds, [10, 10]), 'INVALID_ARGUMENT', /sum/);
      expectJouleError(() => randomSplit(ds, [-1, 104]), 'INVALID_ARGUMENT', /non-negative/);
    });

    it('subsets batch through their parent, and get() maps indices', () => {
      const s = new Subset(ds, [5, 9, 11]);
      const e = s.get(1);
      assert.equal(e.y.item(), 9);
      jl.dispose(e);
      assert.deepEqual(epochIds(new DataLoader(s, { batchSize: 2 })), [[5, 9], [11]]);
      expectJouleError(() => new Subset(ds, [200]), 'INVALID_ARGUMENT', /out of range/);
    });

    it('trainValidationSplit', () => {
      const { train, validation } = trainValidationSplit(ds, 0.2, 7);
      assert.equal(validation.length, 21);
      assert.equal(train.length, 82);
      const all = new Set([...train.indices, ...validation.indices]);
      assert.equal(all.size, 103);
      expectJouleError(() => trainValidationSplit(ds, 1.2), 'INVALID_ARGUMENT', /validationFraction/);
    });

    it('permutation is a permutation and stable across runs', () => {
      const p = permutation(10, 123, 0);
      assert.deepEqual([...p].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.deepEqual(Array.from(permutation(10, 123, 0)), Array.from(p));
    });
  });

  describe('MNIST', function () {
    this.timeout(60000);
    it('loads 60k/10k normalised images and int32 labels 0..9, cached per process', () => {
      const train = loadMnist();
      const test = loadMnist({ split: 'test' });
      assert.deepEqual(train.x.shape, [60000, 784]);
      assert.deepEqual(train.y.shape, [60000]);
      assert.equal(train.x.dtype, 'float32');
      assert.equal(train.y.dtype, 'int32');
      assert.deepEqual(test.x.shape, [10000, 784]);
      assert.equal(loadMnist(), train);
      const labels = train.y.data();
      const counts = new Array(10).fill(0);
      for (const l of labels) counts[l]++;
      assert.ok(counts.every((c) => c > 5000 && c < 7000), `label counts ${counts}`);
      assert.ok(Math.abs(train.x.mean().item()) < 0.01);
      assert.ok(Math.abs(train.x.std().item() - 1) < 0.01);
      // The standard first training labels of MNIST.
      assert.deepEqual(Array.from(labels.subarray(0, 5)), [5, 0, 4, 1, 9]);
      const unit = loadMnist({ split: 'test', layout: 'image', normalize: 'unit' });
      assert.deepEqual(unit.x.shape, [10000, 1, 28, 28]);
      assert.ok(unit.x.min().item() === 0 && unit.x.max().item() === 1);
      expectJouleError(() => loadMnist({ split: 'val' as never }), 'INVALID_ARGUMENT', /split/);
      expectJouleError(() => loadMnist({ normalise: 'unit' } as never), 'INVALID_ARGUMENT', /normalise/);
    });

    it('rebuilds a disposed cached dataset', () => {
      const t = loadMnist({ split: 'test', normalize: 'none' });
      t.dispose();
      const again = loadMnist({ split: 'test', normalize: 'none' });
      assert.notEqual(again, t);
      assert.equal(again.x.max().item(), 255);
      again.dispose();
    });

    it('rejects corrupt IDX files with CHECKPOINT_CORRUPT', () => {
      const good = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
      const a = parseIdx(good);
      assert.deepEqual(a.shape, [3]);
      assert.deepEqual(Array.from(a.data), [1, 2, 3]);
      const i32 = parseIdx(new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe]));
      assert.deepEqual(Array.from(i32.data), [-2]);
      expectJouleError(() => parseIdx(new Uint8Array([0, 0, 8])), 'CHECKPOINT_CORRUPT', /4-byte magic/);
      expectJouleError(() => parseIdx(new Uint8Array([1, 0, 8, 1, 0, 0, 0, 0])), 'CHECKPOINT_CORRUPT', /zero bytes/);
      expectJouleError(() => parseIdx(new Uint8Array([0, 0, 7, 1, 0, 0, 0, 0])), 'CHECKPOINT_CORRUPT', /type code/);
      expectJouleError(() => parseIdx(new Uint8Array([0, 0, 8, 2, 0, 0, 0, 1])), 'CHECKPOINT_CORRUPT', /header/);
      expectJouleError(() => parseIdx(good.subarray(0, 10)), 'CHECKPOINT_CORRUPT', /3 bytes|11 bytes/);
      expectJouleError(() => parseIdx(new Uint8Array([0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff, 1])), 'CHECKPOINT_CORRUPT', /shape/);

      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-mnist-'));
      try {
        const images = new Uint8Array(16 + 2 * 784);
        images.set([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28]);
        fs.writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), images);
        fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 3, 12]));
        expectJouleError(() => loadMnist({ split: 'test', dir }), 'CHECKPOINT_CORRUPT', /label 12/);
        fs.writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 3, 1, 2]));
        expectJouleError(() => loadMnist({ split: 'test', dir: dir + '/' }), 'CHECKPOINT_CORRUPT', /2 images but/);
        expectJouleError(() => loadMnist({ split: 'train', dir }), 'INVALID_ARGUMENT', /not found/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('CSV', () => {
    it('reads a header, numeric columns and a chosen label column', () => {
      const d = parseCsv('a,b,label,c\n1,2,0,3\r\n4,5.5,2,6\n\n-7,8e1,1,"9"\n', { label: 'label' });
      assert.equal(d.length, 3);
      assert.deepEqual(d.x.toArray(), [[1, 2, 3], [4, 5.5, 6], [-7, 80, 9]]);
      assert.equal(d.y.dtype, 'int32');
      assert.deepEqual(Array.from(d.y.data()), [0, 2, 1]);
      d.dispose();
    });

    it('defaults to the last column, detects a missing header, float labels', () => {
      const d = parseCsv('1;2;0.5\n3;4;1.5\n', { delimiter: ';' });
      assert.deepEqual(d.x.toArray(), [[1, 2], [3, 4]]);
      assert.equal(d.y.dtype, 'float32');
      assert.deepEqual(Array.from(d.y.data()), [0.5, 1.5]);
      d.dispose();
      const e = parseCsv('y,x1,x2\n1,2,3\n', { label: 0, features: ['x2', 'x1'], labelType: 'float32' });
      assert.deepEqual(e.x.toArray(), [[3, 2]]);
      assert.equal(e.y.dtype, 'float32');
      e.dispose();
      const u = parseCsv('1,2\n3,4\n', { label: null });
      assert.deepEqual(u.x.shape, [2, 2]);
      assert.equal(u.y, u.x);
      u.dispose();
    });

    it('loads a file, and reports bad input by line and column', () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-csv-'));
      const file = path.join(dir, 'iris.csv');
      try {
        fs.writeFileSync(file, '\ufeffsepal,petal,species\n5.1,1.4,0\n6.2,4.5,1\n7.7,6.7,2\n');
        const d = loadCsv(file, { label: 'species' });
        assert.deepEqual(d.x.shape, [3, 2]);
        assert.deepEqual(Array.from(d.y.data()), [0, 1, 2]);
        const loader = new DataLoader(d, { batchSize: 2 });
        const b = [...loader];
        assert.deepEqual(b[0].x.shape, [2, 2]);
        for (const x of b) jl.dispose(x.tensors);
        d.dispose();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
      expectJouleError(() => loadCsv(path.join(dir, 'missing.csv')), 'INVALID_ARGUMENT', /cannot read/);
      expectJouleError(() => parseCsv('a,b\n1,x\n'), 'INVALID_ARGUMENT', /line 2, column 'b'/);
      expectJouleError(() => parseCsv('a,b\n1,2,3\n'), 'INVALID_ARGUMENT', /line 2 has 3 fields/);
      expectJouleError(() => parseCsv('a,b\n1,2\n', { label: 'c' }), 'INVALID_ARGUMENT', /no label column named "c"/);
      expectJouleError(() => parseCsv('1,2\n', { label: 'c' }), 'INVALID_ARGUMENT', /no header/);
      expectJouleError(() => parseCsv('1,2.5\n', { labelType: 'int32' }), 'INVALID_ARGUMENT', /int32/);
      expectJouleError(() => parseCsv(''), 'INVALID_ARGUMENT', /no rows/);
      expectJouleError(() => parseCsv('a,b\n'), 'INVALID_ARGUMENT', /no data rows/);
      expectJouleError(() => parseCsv('a\n"1\n'), 'INVALID_ARGUMENT', /never closed/);
    });
  });
});
