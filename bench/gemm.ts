// fp32 GEMM: Joule beside numpy/OpenBLAS (its default kernel and its AVX2 "Haswell" kernel) and
// onnxruntime-node, all measured in this run, on 1 and 2 threads.
//   npm run bench -- gemm            (NODE_PEERS_DIR: where onnxruntime-node is installed,
//                                     default /tmp/nodepeers, see ../shared/anchors/setup_node_peers.sh)
//   GEMM_MAX=2048: skip larger shapes; GEMM_ROUNDS=3: more interleaved passes (default 2)
import { createRequire } from 'module';
import * as path from 'path';
import * as jl from '../lib/index';
import { native } from '../lib/native';
import { machine, runPython, table, timeit } from './common';

const SHAPES: [number, number, number][] = [
  [256, 256, 256], [512, 512, 512], [1024, 1024, 1024], [2048, 2048, 2048], [4096, 4096, 4096],
  [256, 784, 1024], [256, 1024, 1024], [1, 1024, 1024],
];

const NUMPY = (threads: number, shapes: [number, number, number][]) => `
import json, time, ctypes, numpy as np
def set_threads(n):
    for lib in np.__config__.CONFIG.get('Build Dependencies', {}).get('blas', {}).get('lib directory', '').split(':'):
        pass
    try:
        import numpy.linalg._umath_linalg as m
        so = ctypes.CDLL(m.__file__)
    except Exception:
        so = None
    import glob, os
    for p in glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'scipy_openblas*', 'lib', '*.so*')) + glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs', '*openblas*')):
        try:
            lib = ctypes.CDLL(p)
            for name in ('scipy_openblas_set_num_threads64_', 'openblas_set_num_threads64_', 'openblas_set_num_threads'):
                if hasattr(lib, name):
                    getattr(lib, name)(n); return name
        except OSError:
            pass
    return None
setter = set_threads(${threads})
out = {"numpy": np.__version__, "setter": setter, "results": []}
for (m, k, n) in ${JSON.stringify(shapes)}:
    a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(k, n).astype(np.float32); c = np.empty((m, n), np.float32)
    np.matmul(a, b, out=c)
    t0 = time.perf_counter(); np.matmul(a, b, out=c); once = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(0.25 / once)); samples = []
    for _ in range(5 if m * n * k >= 2048**3 else 7):
        t0 = time.perf_counter()
        for _ in range(inner): np.matmul(a, b, out=c)
        samples.append((time.perf_counter() - t0) / inner)
    samples.sort()
    out["results"].append(2.0 * m * n * k / samples[len(samples) // 2] / 1e9)
print(json.dumps(out))
`;

// A one-node ONNX MatMul model, protobuf written by hand (as ../shared/anchors/node_bench.js does).
function varint(n: number): number[] {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const fVarint = (no: number, v: number) => [...varint((no << 3) | 0), ...varint(v)];
const fBytes = (no: number, bytes: number[]) => [...varint((no << 3) | 2), ...varint(bytes.length), ...bytes];
const fStr = (no: number, s: string) => fBytes(no, [...Buffer.from(s, 'utf8')]);
function valueInfo(name: string, dims: number[]): number[] {
  const shape = dims.flatMap((d) => fBytes(1, fVarint(1, d)));
  return [...fStr(1, name), ...fBytes(2, fBytes(1, [...fVarint(1, 1), ...fBytes(2, shape)]))];
}
function matmulModel(m: number, k: number, n: number): Uint8Array {
  const node = [...fStr(1, 'A'), ...fStr(1, 'B'), ...fStr(2, 'C'), ...fStr(3, 'mm'), ...fStr(4, 'MatMul')];
  const graph = [...fBytes(1, node), ...fStr(2, 'g'), ...fBytes(11, valueInfo('A', [m, k])), ...fBytes(11, valueInfo('B', [k, n])), ...fBytes(12, valueInfo('C', [m, n]))];
  return Uint8Array.from([...fVarint(1, 8), ...fStr(2, 'joule-bench'), ...fBytes(7, graph), ...fBytes(8, [...fStr(1, ''), ...fVarint(2, 13)])]);
}

interface Ort {
  InferenceSession: { create(model: Uint8Array, opts: object): Promise<{ run(feeds: object): Promise<unknown>; release(): Promise<void> }> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
}

function loadOrt(): Ort | null {
  try {
    const req = createRequire(path.join(process.env.NODE_PEERS_DIR || '/tmp/nodepeers', 'package.json'));
    return req('onnxruntime-node') as Ort;
  } catch {
    return null;
  }
}

async function ortRate(ort: Ort, threads: number, m: number, k: number, n: number): Promise<number> {
  const sess = await ort.InferenceSession.create(matmulModel(m, k, n), { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', executionProviders: ['cpu'] });
  const A = new ort.Tensor('float32', Float32Array.from({ length: m * k }, () => Math.random() - 0.5), [m, k]);
  const B = new ort.Tensor('float32', Float32Array.from({ length: k * n }, () => Math.random() - 0.5), [k, n]);
  await sess.run({ A, B });
  let t0 = performance.now();
  await sess.run({ A, B });
  const inner = Math.max(1, Math.floor(250 / Math.max(performance.now() - t0, 1e-3)));
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    for (let i = 0; i < inner; i++) await sess.run({ A, B });
    samples.push((performance.now() - t0) / 1000 / inner);
  }
  await sess.release();
  samples.sort((a, b) => a - b);
  return (2 * m * n * k) / samples[2] / 1e9;
}

export async function run(): Promise<void> {
  const shapes = process.env.GEMM_MAX ? SHAPES.filter(([m, k, n]) => Math.max(m, k, n) <= Number(process.env.GEMM_MAX)) : SHAPES;
  // GEMM_ROUNDS passes (default 2) over the shapes; within a pass each shape runs on every side
  // back to back (Joule, numpy default, numpy Haswell, onnxruntime), so that the host's drifts
  // (10-30 % within minutes here) hit the sides of one row alike; each cell is the median of the
  // passes and the ratios are medians of the per-pass ratios.
  const rounds = Number(process.env.GEMM_ROUNDS ?? 2);
  console.log(`# bench gemm — ${new Date().toISOString()} — ${machine()} — ISA ${jl.getIsa()} — ${rounds} interleaved passes`);
  const ort = loadOrt();
  const env = { ...process.env } as Record<string, string>;
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const median = (xs: number[]) => {
    const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
    if (v.length === 0) return NaN;
    const h = Math.floor(v.length / 2);
    return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
  };
  const numpyRate = (threads: number, shape: [number, number, number], coretype?: string) => {
    const r = runPython(NUMPY(threads, [shape]), { ...env, OPENBLAS_NUM_THREADS: String(threads), ...(coretype ? { OPENBLAS_CORETYPE: coretype } : {}) });
    return { rate: (r.result as { results: number[] } | null)?.results[0] ?? NaN, error: r.error };
  };
  for (const threads of [1, 2]) {
    jl.setNumThreads(threads);
    const peak = jl.energy.cpuPeak(threads) / 1e9;
    // The FMA probe again right before each of Joule's measurements: the host's speed drifts, so
    // Joule's share of the peak is also given against the probe of its own minute (median of the
    // passes' ratios) beside the share of the best probe this machine has shown (the peak above).
    // The probe is the best of 7 short runs, so the share is given twice: Joule's median sample
    // against it, and, like for like, Joule's best sample (of 5-7) against it — on this shared host
    // a neighbour can take the core in either, and a best sample says what the code does when not.
    const cells = shapes.map(() => ({ joule: [] as number[], jouleBest: [] as number[], probe: [] as number[], nd: [] as number[], nh: [] as number[], ort: [] as number[] }));
    let npError = '';
    for (let r = 0; r < rounds; r++) {
      for (const [i, [m, k, n]] of shapes.entries()) {
        cells[i].probe.push(native.cpuPeak(threads, 0.3) / 1e9);
        const s = jl.tidy(() => {
          const a = jl.randn([m, k]);
          const b = jl.randn([k, n]);
          const c = jl.zeros([m, n]);
          return timeit(() => jl.addmm_(c, a, b), m * n * k >= 2048 ** 3 ? 5 : 7);
        });
        cells[i].joule.push((2 * m * n * k) / s.median / 1e9);
        cells[i].jouleBest.push((2 * m * n * k) / s.min / 1e9);
        const nd = numpyRate(threads, [m, k, n]);
        const nh = numpyRate(threads, [m, k, n], 'Haswell');
        if (nd.error) npError = nd.error;
        cells[i].nd.push(nd.rate);
        cells[i].nh.push(nh.rate);
        cells[i].ort.push(ort ? await ortRate(ort, threads, m, k, n) : NaN);
      }
    }
    const rows = shapes.map(([m, k, n], i) => {
      const c = cells[i];
      const joule = median(c.joule);
      const nd = median(c.nd), nh = median(c.nh), or = median(c.ort);
      const vsNumpy = median(c.joule.map((j, r) => j / Math.max(c.nd[r] || 0, c.nh[r] || 0)));
      const vsOrt = median(c.joule.map((j, r) => j / c.ort[r]));
      return [
        `${m}x${k}x${n}`, joule, `${((100 * joule) / peak).toFixed(0)}%`, `${(100 * median(c.joule.map((j, r) => j / c.probe[r]))).toFixed(0)}%`,
        `${(100 * median(c.jouleBest.map((j, r) => j / c.probe[r]))).toFixed(0)}%`,
        Number.isFinite(nd) ? nd : '-', Number.isFinite(nh) ? nh : '-', Number.isFinite(or) ? or : '-',
        Number.isFinite(vsNumpy) ? vsNumpy.toFixed(2) + 'x' : '-', Number.isFinite(vsOrt) ? vsOrt.toFixed(2) + 'x' : '-',
      ];
    });
    console.log(`\n## ${threads} thread(s) — measured FMA peak ${peak.toFixed(0)} GFLOP/s` +
      (npError ? ` — numpy: ${npError}` : '') + (ort ? '' : ' — onnxruntime-node not installed (NODE_PEERS_DIR)'));
    const probes = cells.flatMap((c) => c.probe);
    console.log(`probe in the passes: ${Math.min(...probes).toFixed(0)}-${Math.max(...probes).toFixed(0)} GFLOP/s`);
    console.log(table(['M x K x N', 'Joule GFLOP/s', '% peak', '% of its pass\'s probe', 'best sample, % of probe', 'numpy (default)', 'numpy (Haswell)', 'onnxruntime', 'Joule / best numpy', 'Joule / ort'], rows));
  }
}

if (require.main === module) void run();
