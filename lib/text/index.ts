// Text data: the bundled Moby-Dick corpus and datasets of random context windows.
export { mobyDick, mobyDickDir } from './mobydick';
export type { MobyDick } from './mobydick';
export { TextWindowDataset, evaluateBitsPerChar } from './windows';
export type { TextWindowOptions, BpcOptions } from './windows';
