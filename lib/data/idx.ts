// The IDX format of the MNIST files: a 4-byte magic (two zero bytes, a type code, the number of
// dimensions), one big-endian uint32 per dimension, then the elements, big-endian, row-major.
import { fail } from '../errors';

export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

const TYPES: Record<number, [IdxType, number]> = {
  0x08: ['uint8', 1],
  0x09: ['int8', 1],
  0x0b: ['int16', 2],
  0x0c: ['int32', 4],
  0x0d: ['float32', 4],
  0x0e: ['float64', 8],
};

export interface IdxArray {
  type: IdxType;
  shape: number[];
  /** The elements in host order: Uint8Array, Int8Array, Int16Array, Int32Array, Float32Array or Float64Array. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Parses an IDX file's bytes; any inconsistency is a JouleError CHECKPOINT_CORRUPT naming `name`. */
export function parseIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray {
  const bad = (why: string): never => fail('CHECKPOINT_CORRUPT', `${name} is not a valid IDX file: ${why}`);
  if (bytes.length < 4) bad(`it has ${bytes.length} bytes, fewer than the 4-byte magic number`);
  if (bytes[0] !== 0 || bytes[1] !== 0) bad(`the magic number must start with two zero bytes, got 0x${hex(bytes[0])}${hex(bytes[1])}`);
  const type = TYPES[bytes[2]];
  if (!type) bad(`unknown element type code 0x${hex(bytes[2])}`);
  const [typeName, elemSize] = type;
  const ndim = bytes[3];
  if (ndim === 0) bad('zero dimensions');
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) bad(`it ends inside the header (${bytes.length} bytes, the header needs ${headerLen})`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let d = 0; d < ndim; d++) {
    const dim = view.getUint32(4 + 4 * d, false);
    shape.push(dim);
    count *= dim;
  }
  const expected = headerLen + count * elemSize;
  if (bytes.length !== expected) {
    bad(`the header declares shape [${shape.join(', ')}] of ${typeName} (${expected} bytes in all) but the file has ${bytes.length} bytes`);
  }
  const body = bytes.subarray(headerLen);
  let data: IdxArray['data'];
  switch (typeName) {
    case 'uint8': data = body.slice(); break;
    case 'int8': data = new Int8Array(body.slice().buffer); break;
    default: {
      const bv = new DataView(body.buffer, body.byteOffset, body.byteLength);
      if (typeName === 'int16') {
        data = new Int16Array(count);
        for (let i = 0; i < count; i++) data[i] = bv.getInt16(2 * i, false);
      } else if (typeName === 'int32') {
        data = new Int32Array(count);
        for (let i = 0; i < count; i++) data[i] = bv.getInt32(4 * i, false);
      } else if (typeName === 'float32') {
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = bv.getFloat32(4 * i, false);
      } else {
        data = new Float64Array(count);
        for (let i = 0; i < count; i++) data[i] = bv.getFloat64(8 * i, false);
      }
    }
  }
  return { type: typeName, shape, data };
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
