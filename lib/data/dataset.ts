// Datasets: indexable collections of examples, and the batched fast path DataLoader uses.
import { checkInt, describe, fail } from '../errors';
import { Tensor, checkTensor, tensor, tidy } from '../tensor';
import { concat, unsqueeze } from '../ops/shape';
import { indexSelect } from '../ops/indexing';
import { permutation } from './random';

/** One example (or one batch): inputs x and targets y. */
export interface Example {
  x: Tensor;
  /** The target. A single-tensor TensorDataset has no targets: y is then x itself. */
  y: Tensor;
}

/** A batch: x and y with the batch on axis 0, plus every tensor of the dataset in order. */
export interface Batch extends Example {
  tensors: Tensor[];
  /** Number of examples in the batch. */
  size: number;
}

/** Anything with a length and random access; get(i) returns tensors the caller owns. */
export interface Dataset<T extends Example = Example> {
  readonly length: number;
  get(index: number): T;
}

/**
 * A dataset that can assemble a whole batch with one native gather per tensor. DataLoader uses
 * getBatch when present and falls back to get(i) per example (and one concat) otherwise.
 */
export interface BatchedDataset extends Dataset {
  getBatch(indices: Int32Array): Batch;
}

export function isDataset(value: unknown): value is Dataset {
  if (value === null || typeof value !== 'object') return false;
  const d = value as Partial<Dataset>;
  return typeof d.length === 'number' && typeof d.get === 'function';
}

export function isBatchedDataset(value: unknown): value is BatchedDataset {
  return isDataset(value) && typeof (value as Partial<BatchedDataset>).getBatch === 'function';
}

/** @internal Throws unless value is a Dataset; returns it. */
export function checkDataset(value: unknown, name: string): Dataset {
  if (!isDataset(value)) {
    fail('INVALID_ARGUMENT', `expected ${name} to be a Dataset (an object with a numeric length and get(i)), got ${describe(value)}`);
  }
  checkInt(value.length, `${name}.length`, 0);
  return value;
}

function checkIndex(i: unknown, length: number): number {
  if (typeof i !== 'number' || !Number.isInteger(i)) fail('INVALID_ARGUMENT', `expected an integer index, got ${describe(i)}`);
  if (i < 0 || i >= length) fail('INVALID_ARGUMENT', `index ${i} is out of range for a dataset of length ${length}`);
  return i;
}

function checkIndices(indices: unknown, length: number): Int32Array {
  if (!(indices instanceof Int32Array)) fail('INVALID_ARGUMENT', `expected the indices to be an Int32Array, got ${describe(indices)}`);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (i < 0 || i >= length) fail('INVALID_ARGUMENT', `index ${i} is out of range for a dataset of length ${length}`);
  }
  return indices;
}

/**
 * Examples are the rows (axis 0) of one or more tensors of equal first dimension; the first is
 * x, the second y, further ones ride along in `tensors`. The dataset owns its tensors: they are
 * kept out of tidy() scopes and freed by dispose().
 */
export class TensorDataset implements BatchedDataset {
  readonly tensors: readonly Tensor[];
  readonly length: number;

  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) fail('INVALID_ARGUMENT', 'TensorDataset: expected at least one tensor');
    tensors.forEach((t, i) => checkTensor(t, `tensors[${i}]`));
    for (let i = 0; i < tensors.length; i++) {
      if (tensors[i].ndim === 0) fail('SHAPE_MISMATCH', `TensorDataset: tensors[${i}] is 0-d; examples are taken along axis 0`);
    }
    const n = tensors[0].shape[0];
    for (let i = 1; i < tensors.length; i++) {
      if (tensors[i].shape[0] !== n) {
        fail('SHAPE_MISMATCH', `TensorDataset: all tensors need the same size on axis 0: tensors[0] has ${n}, tensors[${i}] has ${tensors[i].shape[0]}`);
      }
    }
    for (const t of tensors) t.keep();
    this.tensors = tensors;
    this.length = n;
  }

  get x(): Tensor {
    return this.tensors[0];
  }
  get y(): Tensor {
    return this.tensors[this.tensors.length > 1 ? 1 : 0];
  }

  get(index: number): Example & { tensors: Tensor[] } {
    const i = checkIndex(index, this.length);
    const rows = this.tensors.map((t) => t.select(0, i));
    return { x: rows[0], y: rows[rows.length > 1 ? 1 : 0], tensors: rows };
  }

  /** The rows at `indices`, one indexSelect per tensor. */
  getBatch(indices: Int32Array): Batch {
    checkIndices(indices, this.length);
    const idx = tensor(indices, { dtype: 'int32' });
    try {
      const rows = this.tensors.map((t) => indexSelect(t, 0, idx));
      return { x: rows[0], y: rows[rows.length > 1 ? 1 : 0], tensors: rows, size: indices.length };
    } finally {
      idx.dispose();
    }
  }

  dispose(): void {
    for (const t of this.tensors) t.dispose();
  }
}

/** The examples of `dataset` at `indices` (a view: nothing is copied). */
export class Subset implements BatchedDataset {
  readonly dataset: Dataset;
  readonly indices: Int32Array;

  constructor(dataset: Dataset, indices: Int32Array | number[]) {
    this.dataset = checkDataset(dataset, 'dataset');
    if (!(indices instanceof Int32Array) && !Array.isArray(indices)) {
      fail('INVALID_ARGUMENT', `Subset: expected indices to be an Int32Array or an array of integers, got ${describe(indices)}`);
    }
    if (Array.isArray(indices)) indices.forEach((v, k) => checkInt(v, `indices[${k}]`, 0));
    const idx = indices instanceof Int32Array ? indices : Int32Array.from(indices);
    this.indices = checkIndices(idx, dataset.length);
  }

  get length(): number {
    return this.indices.length;
  }

  get(index: number): Example {
    return this.dataset.get(this.indices[checkIndex(index, this.indices.length)]);
  }

  getBatch(indices: Int32Array): Batch {
    checkIndices(indices, this.indices.length);
    const mapped = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) mapped[k] = this.indices[indices[k]];
    return collate(this.dataset, mapped);
  }
}

/** @internal A batch of the examples at `indices`: the dataset's getBatch, or get(i) + one concat. */
export function collate(dataset: Dataset, indices: Int32Array): Batch {
  if (isBatchedDataset(dataset)) return dataset.getBatch(indices);
  if (indices.length === 0) fail('INVALID_ARGUMENT', 'cannot assemble an empty batch from a dataset without getBatch()');
  // tidy frees the examples and their unsqueezed views; only the two batch tensors survive.
  return tidy(() => {
    const examples = Array.from(indices, (i) => dataset.get(i));
    const sameXY = examples[0].y === examples[0].x;
    const x = concat(examples.map((e) => unsqueeze(e.x, 0)), 0);
    const y = sameXY ? x : concat(examples.map((e) => unsqueeze(e.y, 0)), 0);
    return { x, y, tensors: sameXY ? [x] : [x, y], size: indices.length };
  });
}

function splitSizes(n: number, lengths: number[]): number[] {
  if (!Array.isArray(lengths) || lengths.length === 0) fail('INVALID_ARGUMENT', `randomSplit: expected lengths to be a non-empty array, got ${describe(lengths)}`);
  for (const l of lengths) {
    if (typeof l !== 'number' || !Number.isFinite(l) || l < 0) fail('INVALID_ARGUMENT', `randomSplit: expected non-negative lengths or fractions, got ${describe(l)}`);
  }
  const total = lengths.reduce((a, b) => a + b, 0);
  const allInts = lengths.every((l) => Number.isInteger(l));
  if (allInts && total === n) return lengths.slice();
  if (lengths.every((l) => l <= 1) && Math.abs(total - 1) < 1e-6) {
    // Fractions: floor each, then hand out the remainder one by one, first splits first.
    const sizes = lengths.map((f) => Math.floor(f * n));
    let rest = n - sizes.reduce((a, b) => a + b, 0);
    for (let i = 0; rest > 0; i = (i + 1) % sizes.length, rest--) sizes[i]++;
    return sizes;
  }
  return fail('INVALID_ARGUMENT', `randomSplit: lengths [${lengths.join(', ')}] must be integers summing to the dataset length ${n}, or fractions summing to 1`);
}

/** Disjoint random subsets of the given lengths (or fractions), the same for the same seed. */
export function randomSplit(dataset: Dataset, lengths: number[], seed = 0): Subset[] {
  checkDataset(dataset, 'dataset');
  checkInt(seed, 'seed', 0);
  const sizes = splitSizes(dataset.length, lengths);
  const perm = permutation(dataset.length, seed, 0x5eed);
  const out: Subset[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(new Subset(dataset, perm.slice(at, at + s)));
    at += s;
  }
  return out;
}

/** A seeded random split into training and validation sets, `validationFraction` of it for validation. */
export function trainValidationSplit(dataset: Dataset, validationFraction: number, seed = 0): { train: Subset; validation: Subset } {
  checkDataset(dataset, 'dataset');
  if (typeof validationFraction !== 'number' || !(validationFraction > 0 && validationFraction < 1)) {
    fail('INVALID_ARGUMENT', `trainValidationSplit: expected validationFraction to be a number between 0 and 1 (exclusive), got ${describe(validationFraction)}`);
  }
  const nVal = Math.round(dataset.length * validationFraction);
  const [train, validation] = randomSplit(dataset, [dataset.length - nVal, nVal], seed);
  return { train, validation };
}
