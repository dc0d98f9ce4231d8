// `joule launch`: starts the ranks of a data-parallel job on this machine, like torchrun.
//
//   joule launch -n N [--nnodes K --node-rank R --master host:port] [--devices 0,1] script.js [args]
//
// The launcher of node 0 hosts the rendezvous store (on --master, else 127.0.0.1 and a free
// port) and every rank gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT, JOULE_SECRET (random per job; with several nodes, export the same JOULE_SECRET
// on each) and JOULE_STORE_HOSTED=1. Unless JOULE_NUM_THREADS is set, each rank gets its share of
// the machine's cores as JOULE_NUM_THREADS (cores / ranks here, at least 1), as torchrun sets
// OMP_NUM_THREADS: N ranks that each start a thread per core oversubscribe the machine (2 ranks x
// 2 threads on 2 cores ran the MLP's forward and backward 1.25x slower than 2 ranks x 1 thread,
// the kernel pool's waiting workers spinning against the other rank). Each output line is
// prefixed with "[rank R] ". SIGINT and SIGTERM are forwarded to the ranks. When a rank exits
// non-zero, the others are stopped and the launcher exits non-zero. A script ending in .ts runs
// through tsx.
import { ChildProcess, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { JouleError } from '../errors';

export const LAUNCH_USAGE = `usage: joule launch -n N [options] script.js|script.ts [script args]

  -n, --nproc-per-node N   ranks on this machine (default 1)
  --nnodes K               machines in the job (default 1)
  --node-rank R            this machine's index, 0..K-1 (default 0; node 0 hosts the store)
  --master host:port       the rendezvous store's address (default 127.0.0.1 and a free port;
                           required with --nnodes > 1)
  --devices 0,1            the GPU of each local rank (default: LOCAL_RANK)
  --grace-ms MS            after a rank fails, how long the others get to exit before SIGKILL (default 5000)
`;

export interface LaunchOptions {
  nproc: number;
  nnodes: number;
  nodeRank: number;
  master: { host: string; port: number } | null;
  devices: number[] | null;
  graceMs: number;
  script: string;
  args: string[];
}

function bad(message: string): never {
  throw new JouleError('INVALID_ARGUMENT', `launch: ${message}\n\n${LAUNCH_USAGE}`);
}

function intArg(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) bad(`${name} expects an integer >= ${min}, got ${v === undefined ? 'nothing' : `'${v}'`}`);
  return n;
}

export function parseLaunchArgs(argv: string[]): LaunchOptions {
  const o: LaunchOptions = { nproc: 1, nnodes: 1, nodeRank: 0, master: null, devices: null, graceMs: 5000, script: '', args: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) break;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case '-n':
      case '--nproc-per-node':
        o.nproc = intArg(flag, value(), 1);
        break;
      case '--nnodes':
        o.nnodes = intArg(flag, value(), 1);
        break;
      case '--node-rank':
        o.nodeRank = intArg(flag, value(), 0);
        break;
      case '--grace-ms':
        o.graceMs = intArg(flag, value(), 0);
        break;
      case '--master': {
        const v = value() ?? '';
        const m = /^(.+):(\d+)$/.exec(v);
        if (!m) bad(`--master expects host:port, got '${v}'`);
        o.master = { host: m[1].replace(/^\[(.*)\]$/, '$1'), port: intArg('--master port', m[2], 1) };
        break;
      }
      case '--devices': {
        const v = value() ?? '';
        o.devices = v.split(',').map((d) => intArg('--devices', d.trim(), 0));
        break;
      }
      case '-h':
      case '--help':
        process.stdout.write(LAUNCH_USAGE);
        process.exit(0);
        break;
      default:
        bad(`unknown option '${a}'`);
    }
  }
  if (i >= argv.length) bad('no script given');
  o.script = argv[i];
  o.args = argv.slice(i + 1);
  if (o.nodeRank >= o.nnodes) bad(`--node-rank (${o.nodeRank}) must be less than --nnodes (${o.nnodes})`);
  if (o.nnodes > 1 && !o.master) bad('--master host:port is required with --nnodes > 1');
  if (o.devices && o.devices.length !== o.nproc) bad(`--devices lists ${o.devices.length} devices for ${o.nproc} ranks`);
  return o;
}

/** Kernel threads per rank when the user has not chosen: this machine's cores shared by its ranks. */
export function threadsPerRank(ranksHere: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / ranksHere));
}

// How to run the script: node for .js, tsx for .ts.
function command(script: string): string[] {
  if (!/\.(ts|mts|cts)$/.test(script)) return [process.execPath, script];
  let cli: string;
  try {
    cli = require.resolve('tsx/cli', { paths: [process.cwd(), __dirname] });
  } catch {
    throw new JouleError('INVALID_ARGUMENT', `launch: '${script}' is TypeScript, but tsx is not installed (npm install tsx), or compile it to .js first`);
  }
  return [process.execPath, cli, script];
}

function pipeLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', (line) => out.write(prefix + line + '\n'));
    rl.on('close', () => resolve());
  });
}

/** Runs the job; resolves to the launcher's exit code. */
export async function launch(o: LaunchOptions): Promise<number> {
  const script = path.resolve(o.script);
  if (!fs.existsSync(script)) bad(`script '${o.script}' not found`);
  const cmd = command(script);
  const worldSize = o.nproc * o.nnodes;
  let secret = process.env.JOULE_SECRET;
  if (!secret) {
    if (o.nnodes > 1) bad('with --nnodes > 1, export the same JOULE_SECRET (e.g. `openssl rand -hex 32`) on every node');
    secret = crypto.randomBytes(32).toString('hex');
  }
  let host = o.master?.host ?? '127.0.0.1';
  let port = o.master?.port ?? 0;
  let server: { close(): void } | null = null;
  if (o.nodeRank === 0) {
    // Loaded only here: the addon hosts the store.
    const { StoreServer } = await import('../dist/store');
    const s = new StoreServer({ host, port, secret });
    port = s.port;
    server = s;
  }
  if (host === '0.0.0.0') host = '127.0.0.1';

  const children: (ChildProcess | null)[] = [];
  const pipes: Promise<void>[] = [];
  let failure: number | null = null;
  let stopping = false;
  let killTimer: NodeJS.Timeout | null = null;

  const stopAll = (signal: NodeJS.Signals) => {
    for (const c of children) if (c && c.exitCode === null && c.signalCode === null) c.kill(signal);
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const c of children) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, o.graceMs);
      killTimer.unref();
    }
  };

  const exits: Promise<void>[] = [];
  for (let local = 0; local < o.nproc; local++) {
    const rank = o.nodeRank * o.nproc + local;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      RANK: String(rank),
      LOCAL_RANK: String(local),
      WORLD_SIZE: String(worldSize),
      LOCAL_WORLD_SIZE: String(o.nproc),
      GROUP_RANK: String(o.nodeRank),
      MASTER_ADDR: host,
      MASTER_PORT: String(port),
      JOULE_SECRET: secret,
      JOULE_STORE_HOSTED: '1',
      JOULE_NUM_THREADS: process.env.JOULE_NUM_THREADS || String(threadsPerRank(o.nproc)),
    };
    if (o.devices) env.JOULE_LOCAL_DEVICE = String(o.devices[local]);
    const child = spawn(cmd[0], [...cmd.slice(1), ...o.args], { env, stdio: ['inherit', 'pipe', 'pipe'] });
    children.push(child);
    const prefix = `[rank ${rank}] `;
    pipes.push(pipeLines(child.stdout!, prefix, process.stdout), pipeLines(child.stderr!, prefix, process.stderr));
    exits.push(new Promise((resolve) => {
      child.on('error', (e) => {
        process.stderr.write(`joule launch: rank ${rank} could not start: ${e.message}\n`);
        if (failure === null) failure = 1;
        stopAll('SIGTERM');
        resolve();
      });
      child.on('exit', (code, signal) => {
        if (code !== 0 && !stopping) {
          const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
          if (failure === null) {
            failure = code && code > 0 ? code : 1;
            process.stderr.write(`joule launch: rank ${rank} ${why}; stopping the other ranks\n`);
            stopAll('SIGTERM');
          }
        }
        resolve();
      });
    }));
  }

  const forward = (signal: NodeJS.Signals) => {
    if (failure === null) failure = signal === 'SIGINT' ? 130 : 143;
    stopping = true;
    stopAll(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    await Promise.all(exits);
    await Promise.all(pipes);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    if (killTimer) clearTimeout(killTimer);
    server?.close();
  }
  if (failure !== null) {
    children.forEach((c, local) => {
      if (!c) return;
      const why = c.signalCode ? `killed by ${c.signalCode}` : `exit code ${c.exitCode}`;
      process.stderr.write(`joule launch: rank ${o.nodeRank * o.nproc + local}: ${why}\n`);
    });
  }
  return failure ?? 0;
}
