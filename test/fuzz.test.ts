// Random bad calls: every error that comes out of the public API or the raw addon must be a
// JouleError, and nothing may crash the process. The fuzzing runs in a child process (the same
// file, run as a script), so that a crash is reported as a failed test with the last call made
// instead of taking mocha down with it.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import type * as JL from '../lib/index';
import type { Rng as RngType } from './helpers';

interface Offence {
  call: string;
  error: string;
}
interface Summary {
  calls: number;
  threw: number;
  joule: number;
  offences: Offence[];
  codes: Record<string, number>;
}

const PUBLIC_CALLS = 1000;
const METHOD_CALLS = 1000;
const NATIVE_CALLS = 3000;

function describeValue(v: unknown): string {
  if (typeof v === 'symbol') return 'Symbol()';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'function';
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? v.slice(0, 20) + '…' : v);
  if (Array.isArray(v)) return v.length > 8 ? `[array of ${v.length}]` : `[${v.map(describeValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    const name = (v as object).constructor?.name ?? 'null-proto';
    if (name === 'Tensor' || name === 'TensorHandle') return name;
    if (name === 'Object') return `{${Object.entries(v).map(([k, x]) => `${k}: ${describeValue(x)}`).join(', ')}}`;
    return name;
  }
  return String(v);
}

/** Runs the fuzzing and returns what it saw (called in the child process). */
export function runFuzz(seed: number): Summary {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const jl = require('../lib/index') as typeof JL;
  const { Rng } = require('./helpers') as { Rng: typeof RngType };
  const { native } = require('../lib/native') as typeof import('../lib/native');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const rng = new Rng(seed);
  const summary: Summary = { calls: 0, threw: 0, joule: 0, offences: [], codes: {} };
  const threads = jl.getNumThreads();
  const isa = jl.getIsa();

  const NUMBERS = [NaN, Infinity, -Infinity, -1, 0, 1, 2, -2, 0.5, 3, -0, 2 ** 53, 2 ** 60, -(2 ** 53), 1e300, -2147483649, 255];
  const SHAPES = [
    [], [0], [1], [2, 3], [3, 2], [6], [-1], [2, -1], [-1, 3], [NaN], [Infinity], [2 ** 40], [1e9, 1e9], [2 ** 53], [1.5],
    ['a'], [null], [[1]], new Array(17).fill(1), [0, 2 ** 40], [2 ** 20, 2 ** 20, 2 ** 20],
  ];
  const STRINGS = ['', 'abc', 'float32', 'int32', 'int8', 'uint8', 'float64', 'cpu', 'cuda', 'cuda:0', 'cuda:99', 'tpu', 'add', 'sum', 'relu', 'none', 'eq', 'argmax', '\u0000', 'x'.repeat(5000)];
  const weird = (): unknown[] => [
    undefined, null, {}, [], Symbol('s'), 10n, () => 1, true, false, new Float64Array(4), new Int16Array(2),
    new ArrayBuffer(8), new DataView(new ArrayBuffer(8)), new Array(100_000).fill(0), Object.create(null), new Date(0),
    new Map(), [1, [2]], { length: 3 }, [undefined, undefined],
  ];

  let pool: JL.Tensor[] = [];
  let disposed!: JL.Tensor;
  const refreshPool = () => {
    jl.dispose(pool);
    pool = [
      jl.zeros([2, 3]), jl.arange(6).reshape([2, 3]), jl.ones([4], { dtype: 'int8' }), jl.ones([4], { dtype: 'uint8' }),
      jl.tensor(2.5), jl.zeros([0, 3]), jl.ones([1, 3]).expand([2, 3]), jl.randn([3, 2]).t(), jl.ones([1]),
      jl.tensor(new Int32Array([0, 1])), jl.randn([3, 3]), jl.randn([2, 3], { requiresGrad: true }), jl.randn([2, 2, 3]),
    ].map((t) => t.keep());
    disposed = jl.ones([2, 3]);
    disposed.dispose();
  };
  refreshPool();

  const options = (): unknown => {
    const o: Record<string, unknown> = {};
    for (const k of ['dtype', 'device', 'keepDims', 'correction', 'shape', 'requiresGrad', 'retainGraph', 'junk']) {
      if (rng.bool(0.3)) o[k] = arg(1);
    }
    return o;
  };
  function arg(depth = 0): unknown {
    switch (rng.int(0, depth > 0 ? 5 : 7)) {
      case 0: return rng.pick(pool);
      case 1: return rng.pick(NUMBERS);
      case 2: return rng.pick(SHAPES);
      case 3: return rng.pick(STRINGS);
      case 4: return rng.pick(weird());
      case 5: return options();
      default: return rng.bool(0.3) ? disposed : [rng.pick(pool), rng.bool() ? disposed : rng.pick(pool)];
    }
  }

  const seen = new Set<string>();
  const record = (call: string, e: unknown) => {
    summary.threw++;
    if (e instanceof jl.JouleError) {
      summary.joule++;
      summary.codes[e.code] = (summary.codes[e.code] ?? 0) + 1;
    } else {
      // One example per function and message, so that a flood of one bug does not hide others.
      const error = `${(e as Error)?.constructor?.name}: ${(e as Error)?.message ?? String(e)}`;
      const key = `${call.slice(0, call.indexOf('('))} ${error}`;
      if (!seen.has(key) && summary.offences.length < 40) {
        seen.add(key);
        summary.offences.push({ call, error });
      }
    }
  };
  // The child writes each call before making it, so that a crash names its cause.
  const trace = (s: string) => process.stderr.write(`CALL ${s}\n`);

  // ---- the public API: functions ----
  const skip = new Set(['Tensor', 'JouleError', 'Trainer', 'saveCheckpoint', 'loadCheckpoint']);
  const fns = Object.keys(jl).filter((k) => typeof (jl as Record<string, unknown>)[k] === 'function' && !skip.has(k)).sort();
  for (let i = 0; i < PUBLIC_CALLS; i++) {
    if (i % 100 === 0) refreshPool();
    const name = rng.pick(fns);
    const args = Array.from({ length: rng.int(0, 5) }, () => arg());
    const call = `jl.${name}(${args.map(describeValue).join(', ')})`;
    trace(call);
    summary.calls++;
    try {
      jl.tidy(() => {
        const r = (jl as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
        if (r instanceof Promise) r.catch(() => undefined);
      });
    } catch (e) {
      record(call, e);
    }
  }

  // ---- the public API: Tensor methods on live and disposed tensors ----
  const methods = Object.getOwnPropertyNames(jl.Tensor.prototype).filter((k) => {
    const d = Object.getOwnPropertyDescriptor(jl.Tensor.prototype, k);
    return k !== 'constructor' && d && typeof d.value === 'function';
  }).sort();
  for (let i = 0; i < METHOD_CALLS; i++) {
    if (i % 100 === 0) refreshPool();
    const self = rng.bool(0.1) ? disposed : rng.pick(pool);
    const name = rng.pick(methods);
    if (name === 'dispose' || name === 'keep') continue;
    const args = Array.from({ length: rng.int(0, 4) }, () => arg());
    const call = `Tensor.${name}(${args.map(describeValue).join(', ')})`;
    trace(call);
    summary.calls++;
    try {
      jl.tidy(() => {
        (self as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
      });
    } catch (e) {
      record(call, e);
    }
  }

  // ---- the raw addon ----
  const H = native as unknown as Record<string, (...a: unknown[]) => unknown>;
  const nativeSkip = new Set(['setErrorFactory']);
  const nfns = Object.keys(native).filter((k) => typeof H[k] === 'function' && !nativeSkip.has(k)).sort();
  const isHandle = (v: unknown) => native.isHandle(v);
  let handles: unknown[] = [];
  const refreshHandles = () => {
    for (const h of handles) native.dispose(h as never);
    handles = [
      native.full([2, 3], 1, 'float32', 'cpu'), native.full([3], 2, 'int32', 'cpu'), native.full([4], 1, 'int8', 'cpu'),
      native.full([2, 2], 0, 'uint8', 'cpu'), native.full([], 3, 'float32', 'cpu'), native.full([0, 3], 0, 'float32', 'cpu'),
      native.randn([3, 3], 'cpu'), native.randn([2, 3, 4], 'cpu'), native.arange(0, 3, 1, 'int32', 'cpu'),
      native.full([1], 0, 'float32', 'cpu'), native.full([3], 0, 'float32', 'cpu'),
    ];
    handles.push(native.transpose(handles[0] as never, 0, 1), native.expand(native.full([1, 3], 1, 'float32', 'cpu'), [4, 3]));
    const gone = native.full([2], 1, 'float32', 'cpu');
    native.dispose(gone);
    handles.push(gone);
  };
  refreshHandles();
  const nativeArg = (): unknown => {
    const r = rng.int(0, 9);
    if (r < 3) return rng.pick(handles);
    if (r === 3) return Array.from({ length: rng.int(0, 4) }, () => rng.pick(handles));
    if (r === 4) return rng.pick(STRINGS.slice(0, 19));
    if (r === 5) return rng.pick([[0], [1], [-1], [0, 1], [], [5], [0, 0], [-3]]);
    if (r === 6) return rng.bool();
    return arg(1);
  };
  const disposeResult = (r: unknown) => {
    if (isHandle(r)) native.dispose(r as never);
    else if (Array.isArray(r)) r.forEach(disposeResult);
    else if (r && typeof r === 'object') Object.values(r).forEach(disposeResult);
  };
  for (let i = 0; i < NATIVE_CALLS; i++) {
    if (i % 100 === 0) refreshHandles();
    const name = rng.pick(nfns);
    const args = Array.from({ length: rng.int(0, 7) }, () => nativeArg());
    const call = `native.${name}(${args.map(describeValue).join(', ')})`;
    trace(call);
    summary.calls++;
    try {
      disposeResult(H[name](...args));
    } catch (e) {
      record(call, e);
    }
    if (name === 'setIsa' || name === 'setNumThreads') {
      jl.setNumThreads(threads);
      jl.setIsa(isa);
    }
  }
  refreshHandles();
  for (const h of handles) native.dispose(h as never);
  jl.dispose(pool);
  jl.setNumThreads(threads);
  jl.setIsa(isa);
  return summary;
}

function runChild(seed: number): { summary: Summary | null; status: number | null; signal: string | null; lastCall: string; stderrTail: string } {
  const script = `const s = require(${JSON.stringify(__filename)}).runFuzz(${seed}); process.stdout.write('SUMMARY ' + JSON.stringify(s) + '\\n');`;
  const res = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: 120_000,
  });
  const line = res.stdout.split('\n').find((l) => l.startsWith('SUMMARY '));
  const calls = res.stderr.split('\n').filter((l) => l.startsWith('CALL '));
  const other = res.stderr.split('\n').filter((l) => !l.startsWith('CALL ') && l.trim() !== '');
  return {
    summary: line ? (JSON.parse(line.slice(8)) as Summary) : null,
    status: res.status,
    signal: res.signal,
    lastCall: calls.length ? calls[calls.length - 1].slice(5) : '(none)',
    stderrTail: other.slice(-20).join('\n'),
  };
}

if (typeof describe === 'function') {
  describe('fuzz', function () {
    this.timeout(120_000);

    for (const seed of [1, 2]) {
      it(`random bad calls (seed ${seed}) only ever throw JouleError, and never crash`, () => {
        const r = runChild(seed);
        assert.ok(
          r.status === 0 && r.signal === null && r.summary !== null,
          `the fuzzing process died (status ${r.status}, signal ${r.signal}); last call: ${r.lastCall}\n${r.stderrTail}`,
        );
        const s = r.summary!;
        assert.ok(s.calls >= PUBLIC_CALLS + NATIVE_CALLS, `${s.calls} calls made`);
        // The garbage must actually be rejected most of the time, or the fuzzer tests nothing.
        assert.ok(s.threw > s.calls / 2, `only ${s.threw} of ${s.calls} calls threw`);
        assert.deepEqual(
          s.offences,
          [],
          `${s.offences.length} calls threw something other than a JouleError:\n` +
            s.offences.map((o) => `  ${o.call}\n    -> ${o.error}`).join('\n'),
        );
        for (const code of ['INVALID_ARGUMENT', 'DISPOSED', 'DTYPE', 'SHAPE_MISMATCH', 'DEVICE']) {
          assert.ok((s.codes[code] ?? 0) > 0, `no ${code} error was provoked (${JSON.stringify(s.codes)})`);
        }
      });
    }
  });
}
