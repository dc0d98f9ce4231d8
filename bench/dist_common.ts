// Shared by bench/allreduce.ts and bench/ddp.ts: run a bench file as a 2-rank job through
// `joule launch` (each rank 1 thread), and PyTorch's counterpart (bench/torch_dist.py, Debian's
// /usr/bin/python3 with python3-torch), each returning its JSON result.
import { spawnSync } from 'child_process';
import * as net from 'net';
import * as path from 'path';

const ROOT = path.join(__dirname, '..');

export function launchWorker(file: string, env: Record<string, string> = {}): unknown {
  const r = spawnSync(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'lib/cli/main.ts'), 'launch', '-n', '2', file], {
    cwd: ROOT, encoding: 'utf8', timeout: 900_000,
    env: { ...process.env, JOULE_NUM_THREADS: '1', JOULE_BENCH_WORKER: '1', ...env },
  });
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('[rank 0] RESULT '));
  if (r.status !== 0 || !line) throw new Error(`joule launch failed (${r.status}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice('[rank 0] RESULT '.length));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function torchDist(args: string[]): Promise<{ torch: string; result: Record<string, number> } | { error: string }> {
  const port = await freePort();
  const r = spawnSync('/usr/bin/python3', [path.join(__dirname, 'torch_dist.py'), '--port', String(port), ...args], {
    encoding: 'utf8', timeout: 900_000,
    env: { ...process.env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', LD_LIBRARY_PATH: '/usr/lib/x86_64-linux-gnu/openblas-openmp' },
  });
  if (r.status !== 0) {
    const why = (r.stderr || r.error?.message || 'failed').trim().split('\n').pop();
    return { error: `PyTorch unavailable (${why}); install: apt-get install -y python3-torch libopenblas0-openmp` };
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}
