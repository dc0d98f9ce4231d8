// Per-op overhead and elementwise bandwidth, Joule beside numpy in the same run.
//   npm run bench -- ops
import * as jl from '../lib/index';
import { machine, runPython, table, timeit } from './common';

const N = 16 * 1024 * 1024;

const NUMPY = `
import json, time, numpy as np
def t(fn, reps=7, min_time=0.25):
    fn(); t0=time.perf_counter(); fn(); once=max(time.perf_counter()-t0,1e-7); inner=max(1,int(min_time/once)); out=[]
    for _ in range(reps):
        t0=time.perf_counter()
        for _ in range(inner): fn()
        out.append((time.perf_counter()-t0)/inner)
    out.sort(); return out[len(out)//2]
a=np.ones(1,np.float32); b=np.ones(1,np.float32)
small=t(lambda: np.add(a,b))
x=np.random.rand(${N}).astype(np.float32); y=np.random.rand(${N}).astype(np.float32); o=np.empty_like(x)
big_out=t(lambda: np.add(x,y,out=o), reps=5)
big_new=t(lambda: np.add(x,y), reps=5)
print(json.dumps({"numpy": np.__version__, "small_us": small*1e6, "big_out_s": big_out, "big_new_s": big_new}))
`;

export function run(): void {
  console.log(`# bench ops — ${new Date().toISOString()} — ${machine()}`);
  const rows: (string | number)[][] = [];
  for (const threads of [1, 2]) {
    jl.setNumThreads(threads);
    const a = jl.ones([1]);
    const b = jl.ones([1]);
    const small = timeit(() => jl.add(a, b).dispose());
    const x = jl.rand([N]);
    const y = jl.rand([N]);
    const big = timeit(() => jl.add(x, y).dispose(), 5);
    const out = jl.zeros([N]);
    const bigInto = timeit(() => { out.copy_(x); out.add_(y); }, 5);
    const bytes = 3 * 4 * N;
    rows.push([`joule add, ${threads} thread(s)`, small.median * 1e6, bytes / big.median / 1e9, '-']);
    rows.push([`joule copy_+add_ (in place), ${threads}T`, '-', (2 * bytes) / bigInto.median / 1e9 / 2, '-']);
    jl.dispose([a, b, x, y, out]);
  }
  const np = runPython(NUMPY);
  if (np.result) {
    const r = np.result as { numpy: string; small_us: number; big_out_s: number; big_new_s: number };
    const bytes = 3 * 4 * N;
    rows.push([`numpy ${r.numpy} add (new array)`, r.small_us, bytes / r.big_new_s / 1e9, '-']);
    rows.push([`numpy add(out=)`, '-', bytes / r.big_out_s / 1e9, '-']);
    const joule = rows.find((row) => String(row[0]).startsWith('joule add, 2'))!;
    console.log(`Joule / numpy, 2 threads: 1-element add takes ${(Number(joule[1]) / r.small_us).toFixed(1)}x numpy's time; ` +
      `16M-element add moves ${(Number(joule[2]) / (bytes / r.big_new_s / 1e9)).toFixed(2)}x numpy's bytes per second`);
  } else {
    console.log(`numpy unavailable: ${np.error}`);
  }
  console.log(table(['op', '1-element add (µs)', '16M add (GB/s, 3 x 64 MiB)', 'note'], rows));
  console.log('Memory bandwidth anchor (STREAM add, ../shared/anchors/results.md): 23.8 GB/s 1 thread, 26.9 GB/s 2 threads.');
}

if (require.main === module) run();
