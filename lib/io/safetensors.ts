// safetensors files (https://github.com/huggingface/safetensors, format described in its README):
//   8 bytes   N, the header length, unsigned 64-bit little-endian
//   N bytes   UTF-8 JSON: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }
//             (padded with spaces to a multiple of 8 by writers, so the data is aligned)
//   the rest  the byte buffer; offsets are relative to its start; elements little-endian, row-major.
// Writing is atomic (temporary file in the same folder, fsync, rename, fsync of the folder);
// loading validates everything before creating a tensor, and any inconsistency is a JouleError
// CHECKPOINT_CORRUPT saying what is wrong.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, fail } from '../errors';
import { checkDevice, checkTensor, Device, DType, Tensor, tensor } from '../tensor';

export type SafetensorsDType = 'F32' | 'I32' | 'I8' | 'U8';

const TO_JOULE: Record<SafetensorsDType, DType> = { F32: 'float32', I32: 'int32', I8: 'int8', U8: 'uint8' };
const FROM_JOULE: Record<DType, SafetensorsDType> = { float32: 'F32', int32: 'I32', int8: 'I8', uint8: 'U8' };
/** Every dtype the format defines, with its element size in bytes (the F4/F6 sub-byte types aside). */
const SPEC_SIZES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, F8_E8M0: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  F64: 8, I64: 8, U64: 8,
};
/** The Rust reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100 * 1000 * 1000;
const METADATA_KEY = '__metadata__';

export interface TensorInfo {
  dtype: string;
  shape: number[];
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  /** Tensor descriptions in header order. */
  tensors: Record<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Where the byte buffer starts in the file (8 + N). */
  dataStart: number;
}

export interface LoadOptions {
  /** Device for the loaded tensors (default 'cpu'). */
  device?: Device;
}

export interface Loaded {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

type TensorRecord = Record<string, Tensor> | Map<string, Tensor>;

function entriesOf(tensors: unknown): [string, Tensor][] {
  let list: [string, unknown][];
  if (tensors instanceof Map) list = [...tensors.entries()];
  else if (tensors !== null && typeof tensors === 'object' && !Array.isArray(tensors)) list = Object.entries(tensors);
  else return fail('INVALID_ARGUMENT', `safetensors: expected tensors to be a Record<string, Tensor> or a Map, got ${describe(tensors)}`);
  return list.map(([name, t]) => {
    if (typeof name !== 'string' || name.length === 0) fail('INVALID_ARGUMENT', `safetensors: tensor names must be non-empty strings, got ${describe(name)}`);
    if (name === METADATA_KEY) fail('INVALID_ARGUMENT', `safetensors: '${METADATA_KEY}' is reserved and cannot name a tensor`);
    return [name, checkTensor(t, `tensors[${JSON.stringify(name)}]`)];
  });
}

function checkMetadata(metadata: unknown): Record<string, string> {
  if (metadata === undefined || metadata === null) return {};
  if (typeof metadata !== 'object' || Array.isArray(metadata)) fail('INVALID_ARGUMENT', `safetensors: expected metadata to be a Record<string, string>, got ${describe(metadata)}`);
  for (const [k, v] of Object.entries(metadata as object)) {
    if (typeof v !== 'string') fail('INVALID_ARGUMENT', `safetensors: metadata values must be strings; '${k}' is ${describe(v)} (JSON.stringify it)`);
  }
  return metadata as Record<string, string>;
}

function checkHostEndianness(): void {
  if (os.endianness() !== 'LE') fail('BACKEND_UNAVAILABLE', 'safetensors: only little-endian hosts are supported');
}

/** The file as chunks: the 8-byte length, the padded header, then each tensor's bytes. */
function encode(tensors: TensorRecord, metadata?: Record<string, string>): Uint8Array[] {
  checkHostEndianness();
  const entries = entriesOf(tensors);
  const meta = checkMetadata(metadata);
  const header: Record<string, unknown> = {};
  if (Object.keys(meta).length > 0) header[METADATA_KEY] = meta;
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const data = t.data();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    header[name] = { dtype: FROM_JOULE[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    chunks.push(bytes);
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return [len, json, ...chunks];
}

/** The bytes of a safetensors file holding `tensors` (in their order) and `metadata`. */
export function serialize(tensors: TensorRecord, metadata?: Record<string, string>): Buffer {
  return Buffer.concat(encode(tensors, metadata));
}

/**
 * Writes `chunks` to `file` atomically: a reader sees the old file or the complete new one,
 * never a partial write, even across a crash (temporary file, fsync, rename, fsync the folder).
 */
export function writeFileAtomic(file: string, chunks: Uint8Array[]): void {
  if (typeof file !== 'string' || file.length === 0) fail('INVALID_ARGUMENT', `expected a file path, got ${describe(file)}`);
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
    for (const c of chunks) {
      let done = 0;
      while (done < c.length) done += fs.writeSync(fd, c, done, c.length - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== null) {
      try { fs.closeSync(fd); } catch { /* already failing */ }
    }
    try { fs.unlinkSync(tmp); } catch { /* never created */ }
    return fail('INVALID_ARGUMENT', `cannot write ${file}: ${(e as Error).message}`);
  }
  // The rename is durable once the folder's entry is on disk. Some platforms (Windows) cannot
  // open a folder for fsync; the file itself is already safe there.
  try {
    const dfd = fs.openSync(dir, 'r');
    try { fs.fsyncSync(dfd); } finally { fs.closeSync(dfd); }
  } catch { /* not supported here */ }
}

/** Saves tensors (and string metadata) as a safetensors file, atomically. */
export function save(file: string, tensors: TensorRecord, metadata?: Record<string, string>): void {
  writeFileAtomic(file, encode(tensors, metadata));
}

function corrupt(source: string, why: string): never {
  return fail('CHECKPOINT_CORRUPT', `${source} is not a valid safetensors file: ${why}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Parses and validates the header of a safetensors file's bytes: sizes, JSON, dtypes, shapes,
 * offsets inside the data area, byte counts matching shapes, no two tensors overlapping,
 * metadata values strings. Gaps between tensors are allowed (the format does not forbid them;
 * the Rust reference implementation rejects them, and our writer never makes them).
 */
export function parseHeader(bytes: Uint8Array, source = 'the data'): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array)) fail('INVALID_ARGUMENT', `safetensors: expected bytes as a Uint8Array or Buffer, got ${describe(bytes)}`);
  const size = bytes.length;
  if (size < 8) corrupt(source, `it has ${size} bytes, fewer than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(size - 8)) corrupt(source, `the header length ${n64} runs past the end of the file (${size - 8} bytes follow the length)`);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) corrupt(source, `the header length ${n} is over the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) corrupt(source, `the header length ${n} is too short for a JSON object`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return corrupt(source, 'the header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return corrupt(source, `the header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) corrupt(source, `the header must be a JSON object, got ${Array.isArray(json) ? 'an array' : json === null ? 'null' : typeof json}`);

  const dataStart = 8 + n;
  const dataSize = size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Record<string, TensorInfo> = {};
  for (const [name, entry] of Object.entries(json)) {
    if (name === METADATA_KEY) {
      if (!isPlainObject(entry)) corrupt(source, `'${METADATA_KEY}' must be an object of strings, got ${describe(entry)}`);
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') corrupt(source, `metadata value '${k}' must be a string, got ${describe(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor ${JSON.stringify(name)}`;
    if (!isPlainObject(entry)) corrupt(source, `${where}: expected an object with dtype, shape and data_offsets, got ${describe(entry)}`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') corrupt(source, `${where}: dtype must be a string, got ${describe(dtype)}`);
    const elemSize = SPEC_SIZES[dtype];
    if (elemSize === undefined) corrupt(source, `${where}: unknown dtype ${describe(dtype)}`);
    if (!Array.isArray(shape)) corrupt(source, `${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
    let count = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) corrupt(source, `${where}: shape must hold non-negative integers, got ${describe(d)} in ${JSON.stringify(shape)}`);
      count *= d;
    }
    if (shape.includes(0)) count = 0;
    // A product beyond the file size cannot match (and would lose precision): stop here.
    if (count * elemSize > dataSize && !shape.includes(0)) {
      corrupt(source, `${where}: shape ${JSON.stringify(shape)} of ${dtype} needs ${count * elemSize} bytes, more than the ${dataSize}-byte data area`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2) corrupt(source, `${where}: data_offsets must be [begin, end], got ${describe(offsets)}`);
    const [begin, end] = offsets as unknown[];
    for (const o of [begin, end]) {
      if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) corrupt(source, `${where}: data_offsets must be non-negative integers, got ${JSON.stringify(offsets)}`);
    }
    const b = begin as number;
    const e = end as number;
    if (e < b) corrupt(source, `${where}: data_offsets [${b}, ${e}] end before they begin`);
    if (e > dataSize) corrupt(source, `${where}: data_offsets [${b}, ${e}] run past the ${dataSize}-byte data area`);
    if (e - b !== count * elemSize) {
      corrupt(source, `${where}: shape ${JSON.stringify(shape)} of ${dtype} needs ${count * elemSize} bytes but data_offsets [${b}, ${e}] span ${e - b}`);
    }
    tensors[name] = { dtype, shape: (shape as number[]).slice(), dataOffsets: [b, e] };
  }
  const spans = Object.entries(tensors)
    .filter(([, t]) => t.dataOffsets[1] > t.dataOffsets[0])
    .sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < spans.length; i++) {
    const [prevName, prev] = spans[i - 1];
    const [name, cur] = spans[i];
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      corrupt(source, `tensors ${JSON.stringify(prevName)} [${prev.dataOffsets.join(', ')}] and ${JSON.stringify(name)} [${cur.dataOffsets.join(', ')}] overlap`);
    }
  }
  return { tensors, metadata, dataStart };
}

/** Tensors and metadata from the bytes of a safetensors file; validates fully first. */
export function deserialize(bytes: Uint8Array, options: LoadOptions = {}, source = 'the data'): Loaded {
  checkHostEndianness();
  const device = options.device === undefined ? 'cpu' : checkDevice(options.device);
  const header = parseHeader(bytes, source);
  for (const [name, info] of Object.entries(header.tensors)) {
    if (!(info.dtype in TO_JOULE)) {
      fail('DTYPE', `${source}: tensor ${JSON.stringify(name)} has dtype ${info.dtype}, which Joule does not support (supported: ${Object.keys(TO_JOULE).join(', ')})`);
    }
    if (info.shape.length > 16) fail('SHAPE_MISMATCH', `${source}: tensor ${JSON.stringify(name)} has ${info.shape.length} dimensions; Joule supports at most 16`);
  }
  const out: Record<string, Tensor> = {};
  try {
    for (const [name, info] of Object.entries(header.tensors)) {
      const dtype = TO_JOULE[info.dtype as SafetensorsDType];
      const [b, e] = info.dataOffsets;
      // A fresh, aligned copy: the data area need not be aligned to the element size.
      // (Buffer#slice would be a view, hence the explicit copy.)
      const raw = new Uint8Array(e - b);
      raw.set(bytes.subarray(header.dataStart + b, header.dataStart + e));
      const typed =
        dtype === 'float32' ? new Float32Array(raw.buffer, 0, raw.length / 4)
        : dtype === 'int32' ? new Int32Array(raw.buffer, 0, raw.length / 4)
        : dtype === 'int8' ? new Int8Array(raw.buffer, 0, raw.length)
        : new Uint8Array(raw.buffer, 0, raw.length);
      out[name] = tensor(typed, { shape: info.shape, dtype, device });
    }
  } catch (err) {
    for (const t of Object.values(out)) t.dispose();
    throw err;
  }
  return { tensors: out, metadata: header.metadata };
}

function readFile(file: string): Buffer {
  if (typeof file !== 'string' || file.length === 0) fail('INVALID_ARGUMENT', `expected a file path, got ${describe(file)}`);
  try {
    return fs.readFileSync(file);
  } catch (e) {
    return fail('INVALID_ARGUMENT', `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Loads a safetensors file: { tensors (in header order), metadata }. The caller owns the tensors. */
export function load(file: string, options: LoadOptions = {}): Loaded {
  return deserialize(readFile(file), options, file);
}

/** The validated header of a safetensors file, without creating tensors. */
export function inspect(file: string): SafetensorsHeader {
  return parseHeader(readFile(file), file);
}
