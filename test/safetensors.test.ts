import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import * as jl from '../lib/index';
import { expectJouleError } from './helpers';

const st = jl.io.safetensors;

/** A file assembled by hand from the format description: u64 LE length, JSON header, data. */
function handmade(header: string, data: number[], lengthOverride?: bigint): Buffer {
  const json = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  const n = lengthOverride ?? BigInt(json.length);
  for (let i = 0; i < 8; i++) len[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return Buffer.concat([len, json, Buffer.from(data)]);
}

/** Little-endian bytes of float32 values, computed by hand (sign, exponent, mantissa). */
function f32le(values: number[]): number[] {
  const out: number[] = [];
  for (const v of values) {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    out.push(...b);
  }
  return out;
}

describe('safetensors', () => {
  let dir: string;
  before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-st-'))));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('round-trips every dtype, odd shapes, scalars and empty tensors, with metadata', () => {
    const file = path.join(dir, 'a.safetensors');
    jl.tidy(() => {
      const tensors: Record<string, jl.Tensor> = {
        'w.weight': jl.randn([7, 3]),
        'b': jl.tensor([1.5, -2, Infinity, NaN]),
        'ints': jl.tensor(Int32Array.from([0, -1, 2 ** 31 - 1, -(2 ** 31)])),
        'i8': jl.tensor(Int8Array.from([-128, 0, 127]), { shape: [1, 3] }),
        'u8': jl.tensor(Uint8Array.from([0, 255, 7]), { shape: [3, 1, 1] }),
        'scalar': jl.tensor(3.25),
        'empty': jl.zeros([2, 0, 5]),
        'view': jl.arange(12, undefined, 1, { dtype: 'float32' }).reshape([3, 4]).t(),
      };
      st.save(file, tensors, { format: 'pt', note: 'héllo' });
      const { tensors: back, metadata } = st.load(file);
      assert.deepEqual(metadata, { format: 'pt', note: 'héllo' });
      assert.deepEqual(Object.keys(back), Object.keys(tensors));
      for (const [k, t] of Object.entries(tensors)) {
        assert.equal(back[k].dtype, t.dtype, k);
        assert.deepEqual(back[k].shape, t.shape, k);
        assert.deepEqual(Array.from(back[k].data()), Array.from(t.data()), k);
      }
      jl.dispose(back);
    });
    // The layout on disk: header length a multiple of 8, padded with spaces, contiguous offsets.
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
    assert.match(bytes.subarray(8, 8 + n).toString('utf8'), /\} *$/);
    let end = 0;
    for (const [k, v] of Object.entries(header) as [string, { data_offsets: number[] }][]) {
      if (k === '__metadata__') continue;
      assert.equal(v.data_offsets[0], end, k);
      end = v.data_offsets[1];
    }
    assert.equal(8 + n + end, bytes.length);
    assert.deepEqual(header.w_weight, undefined);
    assert.deepEqual(header['w.weight'].shape, [7, 3]);
    assert.equal(header['ints'].dtype, 'I32');
    assert.deepEqual(header['view'].shape, [4, 3]);
  });

  it('loads a file built byte by byte from the specification', () => {
    const header = '{"__metadata__":{"who":"hand"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
      '"b":{"dtype":"I32","shape":[1],"data_offsets":[16,20]},"c":{"dtype":"U8","shape":[3],"data_offsets":[20,23]},' +
      '"d":{"dtype":"I8","shape":[],"data_offsets":[23,24]}}';
    const data = [...f32le([1, 2, 3.5, -4]), 0x2a, 0, 0, 0x80, 1, 2, 255, 0xfe];
    const bytes = handmade(header, data);
    // Unpadded header (not a multiple of 8): still valid, data unaligned.
    assert.notEqual(header.length % 8, 0);
    const file = path.join(dir, 'hand.safetensors');
    fs.writeFileSync(file, bytes);
    const { tensors, metadata } = st.load(file);
    assert.deepEqual(metadata, { who: 'hand' });
    assert.deepEqual(tensors.a.toArray(), [[1, 2], [3.5, -4]]);
    assert.deepEqual(Array.from(tensors.b.data()), [-2147483606]);
    assert.equal(tensors.c.dtype, 'uint8');
    assert.deepEqual(Array.from(tensors.c.data()), [1, 2, 255]);
    assert.equal(tensors.d.dtype, 'int8');
    assert.deepEqual(tensors.d.shape, []);
    assert.equal(tensors.d.item(), -2);
    jl.dispose(tensors);
    // Padding with spaces, an empty header object and a zero-byte tensor are all fine.
    const padded = handmade('{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}      ', []);
    const e = st.deserialize(padded);
    assert.deepEqual(e.tensors.e.shape, [0]);
    jl.dispose(e.tensors);
    const empty = st.deserialize(handmade('{}      ', []));
    assert.deepEqual(empty, { tensors: {}, metadata: {} });
  });

  it('rejects every kind of corrupt file with CHECKPOINT_CORRUPT, never a crash', () => {
    const ok = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    const d8 = f32le([1, 2]);
    const before = jl.memory().tensors;
    const bad = (bytes: Buffer, re: RegExp) => expectJouleError(() => st.deserialize(bytes), 'CHECKPOINT_CORRUPT', re);
    bad(Buffer.alloc(0), /fewer than the 8-byte/);
    bad(Buffer.from([1, 2, 3]), /fewer than the 8-byte/);
    bad(handmade(ok, d8).subarray(0, 20), /runs past the end/); // truncated inside the header
    bad(handmade(ok, d8).subarray(0, handmade(ok, d8).length - 3), /run past the 5-byte data area|needs 8 bytes/); // truncated data
    bad(handmade(ok, d8, 2n ** 63n), /runs past the end/); // huge header length
    bad(handmade(ok, d8, 0xffffffffffffffffn), /runs past the end/);
    const bigHeader = Buffer.alloc(8 + 101_000_000, 0x20);
    bigHeader.writeBigUInt64LE(101_000_000n);
    bad(bigHeader, /100000000-byte limit/);
    bad(handmade('{"a":', d8), /not valid JSON/); // garbled
    bad(handmade('[1,2,3]', d8), /must be a JSON object/);
    bad(handmade('null', d8), /must be a JSON object/);
    bad(Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]), /UTF-8/);
    bad(handmade('{"a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}}', d8), /unknown dtype "F99"/);
    bad(handmade('{"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}}', d8), /dtype must be a string/);
    bad(handmade('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', d8), /non-negative integers/); // negative shape
    bad(handmade('{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', d8), /non-negative integers/);
    bad(handmade('{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', d8), /shape must be an array/);
    bad(handmade('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', d8), /needs 12 bytes/); // wrong size
    bad(handmade('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}', d8), /needs 4 bytes but data_offsets \[0, 8\] span 8/);
    bad(handmade('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', d8), /more than the 8-byte data area/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', d8), /run past the 8-byte data area/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', d8), /end before they begin/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', d8), /non-negative integers/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', d8), /\[begin, end\]/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2]}}', d8), /\[begin, end\]/);
    bad(handmade('{"a":[1,2]}', d8), /expected an object/);
    bad(handmade('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8), /"a" \[0, 8\] and "b" \[4, 8\] overlap/);
    bad(handmade('{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d8), /metadata value 'k' must be a string/);
    bad(handmade('{"__metadata__":[],"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', d8), /object of strings/);
    assert.equal(jl.memory().tensors, before);
    // Gaps are allowed by the format (the Rust implementation rejects them; our writer never makes them).
    const gap = st.deserialize(handmade('{"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}', [9, 9, 7, 9]));
    assert.deepEqual(Array.from(gap.tensors.a.data()), [7]);
    jl.dispose(gap.tensors);
    // A dtype of the format that Joule cannot hold is a DTYPE error, not corruption.
    expectJouleError(() => st.deserialize(handmade('{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', [0, 60])), 'DTYPE', /F16/);
  });

  it('rejects a corrupt file on disk by path, and random garbage never crashes', () => {
    const file = path.join(dir, 'garbled.safetensors');
    jl.tidy(() => st.save(file, { a: jl.ones([4, 4]), b: jl.zeros([3]) }));
    const good = fs.readFileSync(file);
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 200; trial++) {
      const b = Buffer.from(good);
      const flips = 1 + Math.floor(rnd() * 4);
      for (let k = 0; k < flips; k++) b[Math.floor(rnd() * Math.min(b.length, 8 + 120))] = Math.floor(rnd() * 256);
      const cut = rnd() < 0.3 ? Math.floor(rnd() * b.length) : b.length;
      try {
        const r = st.deserialize(b.subarray(0, cut));
        jl.dispose(r.tensors);
      } catch (e) {
        assert.ok(e instanceof jl.JouleError, String(e));
        assert.ok(['CHECKPOINT_CORRUPT', 'DTYPE'].includes(e.code), e.message);
      }
    }
    fs.writeFileSync(file, good.subarray(0, good.length - 1));
    expectJouleError(() => st.load(file), 'CHECKPOINT_CORRUPT', /garbled\.safetensors/);
    expectJouleError(() => st.load(path.join(dir, 'nope.safetensors')), 'INVALID_ARGUMENT', /cannot read/);
  });

  it('writes atomically: no temporary files left, an existing file replaced whole', () => {
    const file = path.join(dir, 'atomic.safetensors');
    jl.tidy(() => {
      st.save(file, { a: jl.ones([2]) });
      st.save(file, { a: jl.full([3], 2) }, { v: '2' });
    });
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), []);
    const { tensors, metadata } = st.load(file);
    assert.deepEqual(Array.from(tensors.a.data()), [2, 2, 2]);
    assert.equal(metadata.v, '2');
    jl.dispose(tensors);
    expectJouleError(() => jl.tidy(() => st.save(path.join(dir, 'no/such/dir/x.safetensors'), { a: jl.ones([1]) })), 'INVALID_ARGUMENT', /cannot write/);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), []);
  });

  it('validates what it is asked to save', () => {
    const file = path.join(dir, 'v.safetensors');
    const t = jl.ones([1]);
    expectJouleError(() => st.save(file, { a: 3 } as never), 'INVALID_ARGUMENT', /Tensor/);
    expectJouleError(() => st.save(file, { __metadata__: t }), 'INVALID_ARGUMENT', /reserved/);
    expectJouleError(() => st.save(file, { a: t }, { n: 1 } as never), 'INVALID_ARGUMENT', /strings/);
    expectJouleError(() => st.save(file, [t] as never), 'INVALID_ARGUMENT', /Record/);
    st.save(file, new Map([['a', t]]));
    const back = st.load(file);
    assert.deepEqual(Object.keys(back.tensors), ['a']);
    jl.dispose(back.tensors);
    expectJouleError(() => st.save('', { a: t }), 'INVALID_ARGUMENT', /file path/);
    t.dispose();
  });

  it('is readable by the Python safetensors package when it is installed', function () {
    const { spawnSync } = require('child_process') as typeof import('child_process');
    const probe = spawnSync('python3', ['-c', 'import safetensors.numpy'], { encoding: 'utf8' });
    if (probe.status !== 0) this.skip();
    const file = path.join(dir, 'py.safetensors');
    jl.tidy(() => st.save(file, { w: jl.tensor([[1, 2], [3, 4]]), i: jl.tensor(Int32Array.from([5])) }, { k: 'v' }));
    const r = spawnSync('python3', ['-c', `from safetensors.numpy import load_file; d = load_file(${JSON.stringify(file)}); print(d['w'].tolist(), d['i'].tolist())`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), '[[1.0, 2.0], [3.0, 4.0]] [5]');
  });
});
