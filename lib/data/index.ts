// Datasets, loaders, splits and bundled data sets.
export { TensorDataset, Subset, randomSplit, trainValidationSplit, isDataset, isBatchedDataset } from './dataset';
export type { Dataset, BatchedDataset, Example, Batch } from './dataset';
export { DataLoader, isDataLoader } from './loader';
export type { DataLoaderOptions } from './loader';
export { loadMnist, mnist, mnistDir } from './mnist';
export type { MnistOptions, MnistSplit } from './mnist';
export { loadCsv, parseCsv } from './csv';
export type { CsvOptions } from './csv';
export { parseIdx } from './idx';
export type { IdxArray, IdxType } from './idx';
export { SeededRandom, permutation } from './random';
