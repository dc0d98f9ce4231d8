// Distributed training on CPUs with Gloo: the rendezvous store, every collective on 2 and 3
// ranks (started by `joule launch`), DDP against single-process training, the sampler, and
// failures (a killed or stalled rank, a wrong secret, a port in use, calls that differ between
// the ranks). NCCL: reported unavailable here; the GPU test runs only where CUDA and NCCL are
// usable.
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

import * as jl from '../lib/index';
import { parseLaunchArgs, threadsPerRank } from '../lib/cli/launch';
import { expectJouleError } from './helpers';

const ROOT = path.join(__dirname, '..');
const WMEM_MAX = '/proc/sys/net/core/wmem_max';
const TSX = require.resolve('tsx/cli');
const CLI = path.join(ROOT, 'lib/cli/main.ts');
const FIX = path.join(ROOT, 'test/fixtures/dist');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  ms: number;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, onLine?: (line: string, child: ChildProcess) => void, limitMs = 120000): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TSX, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      pending += d;
      let k;
      while ((k = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, k);
        pending = pending.slice(k + 1);
        onLine?.(line, child);
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timed out after ${limitMs} ms\n${out}\n${err}`));
    }, limitMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, ms: Date.now() - t0 });
    });
  });
}

function launch(n: number, script: string, env: NodeJS.ProcessEnv = {}, onLine?: (line: string, child: ChildProcess) => void) {
  return run([CLI, 'launch', '-n', String(n), path.join(FIX, script)], env, onLine);
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const glooHere = jl.dist.glooAvailable();

describe('dist', function () {
  this.timeout(180000);

  describe('store', () => {
    let server: jl.dist.StoreServer;
    before(() => {
      server = new jl.dist.StoreServer({ port: 0, secret: 's3cret' });
    });
    after(() => server.close());

    it('sets, gets, adds, compare-sets, waits and checks', () => {
      const a = new jl.dist.Store({ port: server.port, secret: 's3cret', timeoutMs: 5000 });
      const b = new jl.dist.Store({ port: server.port, secret: 's3cret', timeoutMs: 5000 });
      a.set('k', 'v1');
      assert.equal(b.get('k').toString(), 'v1');
      a.set('bin', new Uint8Array([0, 1, 255]));
      assert.deepEqual([...b.get('bin')], [0, 1, 255]);
      assert.equal(a.add('n', 2), 2);
      assert.equal(b.add('n', 5), 7);
      assert.equal(a.get('n').toString(), '7');
      assert.equal(a.compareSet('c', '', 'first').toString(), 'first');
      assert.equal(b.compareSet('c', 'nope', 'second').toString(), 'first');
      assert.equal(b.compareSet('c', 'first', 'second').toString(), 'second');
      assert.equal(a.check(['k', 'n']), true);
      assert.equal(a.check(['k', 'missing']), false);
      a.wait(['k', 'c']);
      assert.equal(a.delete('k'), true);
      assert.equal(a.check(['k']), false);
      a.set('big', new Uint8Array(3 << 20).fill(7));
      assert.equal(b.get('big').length, 3 << 20);
      a.close();
      b.close();
    });

    it('times out with DIST_TIMEOUT', () => {
      const a = new jl.dist.Store({ port: server.port, secret: 's3cret', timeoutMs: 5000 });
      const t0 = Date.now();
      expectJouleError(() => a.get('never', 200), 'DIST_TIMEOUT', /timed out after 200 ms/);
      expectJouleError(() => a.wait(['never'], 150), 'DIST_TIMEOUT', /timed out/);
      assert.ok(Date.now() - t0 < 3000);
      a.close();
    });

    it('cannot reach a store that is not there within the timeout', async () => {
      const port = await freePort();
      const t0 = Date.now();
      expectJouleError(() => new jl.dist.Store({ port, secret: 'x', timeoutMs: 300 }), 'DIST_TIMEOUT', /could not reach the rendezvous store/);
      assert.ok(Date.now() - t0 < 3000);
    });

    it('refuses a client with the wrong secret or no handshake, and logs it', async () => {
      const child = spawn(process.execPath, [TSX, path.join(FIX, 'store_server.ts')], { cwd: ROOT, env: { ...process.env, JOULE_SECRET: 'right' } });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d));
      const port = await new Promise<number>((resolve) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /PORT (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
      });
      expectJouleError(() => new jl.dist.Store({ port, secret: 'wrong', timeoutMs: 3000 }), 'INVALID_ARGUMENT', /refused this client: wrong job secret/);
      expectJouleError(() => new jl.dist.Store({ port, secret: '', timeoutMs: 3000 }), 'INVALID_ARGUMENT', /refused/);
      // A client that announces a 1 GiB first message is dropped before the store allocates it.
      const raw = net.connect(port, '127.0.0.1');
      raw.on('error', () => {}); // the store resets the connection: the rest was never read
      await new Promise((r) => raw.on('connect', r));
      raw.write(Buffer.from([0, 0, 0, 0x40, 1, 2, 3]));
      let timer: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        new Promise<boolean>((r) => raw.on('close', () => r(true))),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10000))),
      ]);
      clearTimeout(timer);
      raw.destroy();
      assert.ok(closed, 'the store kept waiting for the 1 GiB message');
      const ok = new jl.dist.Store({ port, secret: 'right', timeoutMs: 3000 });
      ok.set('a', 'b');
      ok.close();
      child.stdin!.end();
      await new Promise((r) => child.on('exit', r));
      assert.match(err, /refused a client from 127\.0\.0\.1:\d+: it did not present this job's secret/);
      assert.match(err, /refused a client from 127\.0\.0\.1:\d+: its first message is not a handshake/);
    });

    it('reports a port in use clearly', async () => {
      const blocker = net.createServer();
      await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
      const port = (blocker.address() as net.AddressInfo).port;
      try {
        expectJouleError(() => new jl.dist.StoreServer({ port, secret: 'x' }), 'INVALID_ARGUMENT', new RegExp(`port ${port} on 127.0.0.1 is already in use \\(MASTER_PORT\\)`));
        // dist.init as rank 0 hosting the store says the same.
        expectJouleError(() => jl.dist.init({ rank: 0, worldSize: 2, masterPort: port, secret: 'x', backend: 'gloo', timeoutMs: 1000 }),
          'INVALID_ARGUMENT', /already in use/);
        assert.equal(jl.dist.isInitialized(), false);
      } finally {
        blocker.close();
      }
    });
  });

  describe('one process (world size 1)', function () {
    before(function () {
      if (!glooHere) this.skip();
    });
    it('the group belongs to the thread that made it: other threads get an error, and a terminated worker takes it along', async () => {
      // In a child process: before, the main thread's use of a terminated worker's group aborted it.
      // (`node -r tsx/cjs`, not the tsx launcher: worker threads inherit the require hook, not its loader.)
      const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', path.join(FIX, 'worker_owner.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 60000 });
      assert.equal(r.status, 0, `status ${r.status}, signal ${r.signal}\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^OK$/m);
    });
    it('inits without a launcher, runs every collective as the identity, destroys, and inits again', async () => {
      for (let round = 0; round < 2; round++) {
        assert.equal(jl.dist.init({ backend: 'gloo', rank: 0, worldSize: 1, masterPort: 0, timeoutMs: 5000 }), 'gloo');
        assert.equal(jl.dist.rank(), 0);
        assert.equal(jl.dist.worldSize(), 1);
        assert.equal(jl.dist.backend(), 'gloo');
        expectJouleError(() => jl.dist.init(), 'INVALID_ARGUMENT', /already initialised/);
        const t = jl.tensor([1, 2, 3]);
        jl.dist.allReduce(t, 'avg');
        await jl.dist.allReduceAsync(t, 'max');
        jl.dist.broadcast(t, 0);
        assert.deepEqual([...t.data()], [1, 2, 3]);
        assert.deepEqual(jl.dist.allGather(t).shape, [1, 3]);
        assert.deepEqual([...jl.dist.reduceScatter(t).data()], [1, 2, 3]);
        expectJouleError(() => jl.dist.broadcast(t, 1), 'INVALID_ARGUMENT', /root must be in 0\.\.0/);
        expectJouleError(() => jl.dist.allReduce(jl.tensor([1, 2], { dtype: 'uint8' })), 'DTYPE', /float32 or int32/);
        expectJouleError(() => jl.dist.allReduce(jl.tensor([[1, 2], [3, 4]]).transpose(0, 1)), 'INVALID_ARGUMENT', /contiguous/);
        expectJouleError(() => jl.dist.allReduce(t, 'prod' as never), 'INVALID_ARGUMENT', /'sum', 'avg', 'max' or 'min'/);
        jl.dist.barrier();
        await jl.dist.barrierAsync();
        jl.dist.destroy();
        assert.equal(jl.dist.isInitialized(), false);
      }
      expectJouleError(() => jl.dist.allReduce(jl.tensor([1])), 'INVALID_ARGUMENT', /not initialised/);
    });
  });

  describe('launcher arguments', () => {
    it('parses the torchrun-like options', () => {
      const o = parseLaunchArgs(['-n', '4', '--nnodes', '2', '--node-rank=1', '--master', '10.0.0.1:29500', '--devices', '0,1,2,3', 'train.js', '--lr', '3']);
      assert.deepEqual(o, { nproc: 4, nnodes: 2, nodeRank: 1, master: { host: '10.0.0.1', port: 29500 }, devices: [0, 1, 2, 3], graceMs: 5000, script: 'train.js', args: ['--lr', '3'] });
      assert.equal(parseLaunchArgs(['x.ts']).nproc, 1);
      expectJouleError(() => parseLaunchArgs(['-n', '0', 'x.js']), 'INVALID_ARGUMENT', /-n expects an integer >= 1/);
      expectJouleError(() => parseLaunchArgs(['-n', '2']), 'INVALID_ARGUMENT', /no script given/);
      expectJouleError(() => parseLaunchArgs(['--nnodes', '2', 'x.js']), 'INVALID_ARGUMENT', /--master host:port is required/);
      expectJouleError(() => parseLaunchArgs(['--nnodes', '2', '--node-rank', '2', '--master', 'h:1', 'x.js']), 'INVALID_ARGUMENT', /must be less than --nnodes/);
      expectJouleError(() => parseLaunchArgs(['-n', '2', '--devices', '0', 'x.js']), 'INVALID_ARGUMENT', /lists 1 devices for 2 ranks/);
      expectJouleError(() => parseLaunchArgs(['--bogus', 'x.js']), 'INVALID_ARGUMENT', /unknown option '--bogus'/);
    });
    it('shares the cores between the ranks on a machine, at least one thread each', () => {
      assert.equal(threadsPerRank(2, 2), 1);
      assert.equal(threadsPerRank(3, 2), 1);
      assert.equal(threadsPerRank(1, 2), 2);
      assert.equal(threadsPerRank(2, 16), 8);
      assert.equal(threadsPerRank(3, 16), 5);
    });

    it('fails clearly on a missing script', async () => {
      const r = await run([CLI, 'launch', '-n', '2', 'no/such/script.js']);
      assert.equal(r.code, 1);
      assert.match(r.err, /INVALID_ARGUMENT: launch: script 'no\/such\/script.js' not found/);
    });
  });

  describe('sampler', () => {
    for (const [size, replicas, dropLast] of [[100, 3, false], [100, 3, true], [96, 4, false], [7, 2, false]] as const) {
      it(`shards ${size} examples over ${replicas} ranks${dropLast ? ' (dropLast)' : ''}: disjoint, complete, reshuffled per epoch`, () => {
        const shards = (epoch: number) => Array.from({ length: replicas }, (_, rank) => {
          const s = new jl.dist.DistributedSampler(size, { numReplicas: replicas, rank, seed: 5, dropLast });
          s.setEpoch(epoch);
          assert.equal(s.indices().length, s.length);
          return [...s.indices()];
        });
        const e0 = shards(0);
        const all = e0.flat();
        const lengths = new Set(e0.map((s) => s.length));
        assert.equal(lengths.size, 1, 'every rank gets the same count');
        const distinct = new Set(all);
        if (dropLast) {
          assert.equal(all.length, Math.floor(size / replicas) * replicas);
          assert.equal(distinct.size, all.length, 'disjoint');
        } else {
          assert.equal(distinct.size, size, 'complete');
          assert.equal(all.length, Math.ceil(size / replicas) * replicas);
          if (size % replicas === 0) assert.equal(distinct.size, all.length, 'disjoint');
        }
        const e1 = shards(1);
        assert.notDeepEqual(e1, e0, 'a new order each epoch');
        assert.deepEqual(shards(0), e0, 'the same order for the same epoch');
        if (!dropLast) assert.equal(new Set(e1.flat()).size, size);
      });
    }
    it('keeps the order without shuffle', () => {
      const s = new jl.dist.DistributedSampler(10, { numReplicas: 2, rank: 1, shuffle: false });
      assert.deepEqual([...s], [1, 3, 5, 7, 9]);
      const ds = new jl.data.TensorDataset(jl.arange(0, 10));
      assert.equal(s.shard(ds).length, 5);
    });
  });

  describe('nccl', () => {
    it('is compiled in, and reported unavailable here with a clear message', function () {
      const why = jl.dist.ncclUnavailableReason();
      if (why === '') this.skip();
      assert.match(why, /nccl backend needs CUDA|libnccl\.so\.2|NCCL is not usable/);
      expectJouleError(() => jl.dist.init({ backend: 'nccl', rank: 0, worldSize: 1, timeoutMs: 1000 }), 'BACKEND_UNAVAILABLE', /nccl backend is unavailable/);
      assert.equal(jl.dist.isInitialized(), false);
    });
    const ncclWhy = jl.dist.ncclUnavailableReason();
    it(`@gpu runs collectives on one GPU with one rank${ncclWhy ? ` (skipped here: ${ncclWhy})` : ''}`, function () {
      const why = ncclWhy;
      if (why !== '') {
        if (process.env.JOULE_REQUIRE_GPU) assert.fail(`NCCL unavailable: ${why}`);
        this.skip(); // no GPU here: `why` says what is missing
      }
      jl.dist.init({ backend: 'nccl', rank: 0, worldSize: 1, timeoutMs: 20000 });
      try {
        const t = jl.arange(0, 1000).to('cuda');
        jl.dist.allReduce(t, 'sum');
        jl.dist.broadcast(t, 0);
        const g = jl.dist.allGather(t);
        assert.deepEqual(g.shape, [1, 1000]);
        assert.deepEqual([...t.to('cpu').data()].slice(0, 3), [0, 1, 2]);
        jl.dist.barrier();
      } finally {
        jl.dist.destroy();
      }
    });
  });

  describe('gloo, launched', function () {
    before(function () {
      if (!glooHere) this.skip();
    });

    it('every collective and op, float32 and int32, 1 element to 16 MB, 2 ranks; each rank gets its share of the cores', async () => {
      const r = await launch(2, 'collectives.ts', { JOULE_NUM_THREADS: undefined });
      assert.equal(r.code, 0, r.out + r.err);
      const share = threadsPerRank(2);
      // Two ranks all-reduce on blocking sockets, each send at most net.core.wmem_max bytes.
      const blocking = fs.existsSync(WMEM_MAX) ? Math.min(Number(fs.readFileSync(WMEM_MAX, 'utf8')), 2 ** 31 - 1) : 0;
      for (const k of [0, 1]) assert.match(r.out, new RegExp(`\\[rank ${k}\\] OK \\d+ checks, \\d+ ticks, ${share} kernel threads, blocking sends ${blocking >= 4096 ? blocking : 0} bytes`));
    });

    it('the same, 2 ranks, with each of Gloo\'s all-reduce algorithms forced, and with small or no blocking sends', async () => {
      // By default two ranks all-reduce on blocking sockets in pieces of at most 1 MiB; 4096 bytes
      // a send makes pieces of 2016 elements, so that the sizes below cross piece boundaries.
      const settings: [Record<string, string>, number][] = [
        [{ JOULE_GLOO_ALGORITHM: 'ring' }, 0],
        [{ JOULE_GLOO_ALGORITHM: 'bcube' }, 0],
        [{ JOULE_GLOO_BLOCKING_BYTES: '4096' }, fs.existsSync(WMEM_MAX) ? 4096 : 0],
        [{ JOULE_GLOO_BLOCKING_BYTES: '0' }, 0],
      ];
      for (const [setting, blocking] of settings) {
        const r = await launch(2, 'collectives.ts', { SIZES: '1,3,1000,2017,262144', ...setting });
        assert.equal(r.code, 0, `${JSON.stringify(setting)}: ${r.out}${r.err}`);
        for (const k of [0, 1]) assert.match(r.out, new RegExp(`\\[rank ${k}\\] OK \\d+ checks, .*, blocking sends ${blocking} bytes`));
      }
    });

    it('every collective and op, float32 and int32, 3 ranks', async () => {
      // A JOULE_NUM_THREADS of the user's own stands (the launcher's share here would be 1).
      const r = await launch(3, 'collectives.ts', { SIZES: '1,2,1000,65537', JOULE_NUM_THREADS: '2' });
      assert.equal(r.code, 0, r.out + r.err);
      for (const k of [0, 1, 2]) assert.match(r.out, new RegExp(`\\[rank ${k}\\] OK \\d+ checks, \\d+ ticks, 2 kernel threads, blocking sends 0 bytes`));
    });

    it('calls that differ between the ranks (size, dtype, op, root, collective, a DDP rank out of step): DIST_MISMATCH on every rank, no abort, the group usable after, 2 and 3 ranks', async () => {
      for (const n of [2, 3]) {
        const r = await launch(n, 'mismatch.ts');
        assert.equal(r.code, 0, `${n} ranks: ${r.out}${r.err}`);
        for (let k = 0; k < n; k++) assert.match(r.out, new RegExp(`\\[rank ${k}\\] OK 15 checks`));
      }
    });

    for (const [n, mode] of [[2, 'async'], [2, 'sync'], [2, 'accum'], [2, 'inplace'], [3, 'async']] as const) {
      it(`DDP (${n} ranks, ${mode}) equals single-process training on the whole batch after 20 steps`, async () => {
        const r = await launch(n, 'ddp_train.ts', { MODE: mode, STEPS: '20' });
        assert.equal(r.code, 0, r.out + r.err);
        assert.match(r.out, /\[rank 0\] OK maxRel/);
      });
    }

    it('the Trainer through dist.prepareTrainer: shards, identical replicas, only rank 0 prints', async () => {
      const r = await launch(2, 'trainer.ts');
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /\[rank 0\] TRAINER OK/);
      assert.match(r.out, /\[rank 0\] epoch 4\/4/);
      assert.doesNotMatch(r.out, /\[rank 1\] epoch/);
    });

    it('the Trainer with distributed: true: job-wide losses, identical replicas, only rank 0 prints and checkpoints', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'joule-ddp-ckpt-'));
      try {
        const r = await launch(2, 'trainer.ts', { MODE: 'option', CKPT_DIR: dir });
        assert.equal(r.code, 0, r.out + r.err);
        assert.match(r.out, /\[rank 0\] TRAINER OPTION OK/);
        assert.match(r.out, /\[rank 0\] epoch 4\/4/);
        assert.doesNotMatch(r.out, /\[rank 1\] epoch/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it('forwards SIGTERM to the ranks and exits non-zero', async () => {
      let sent = false;
      const r = await launch(2, 'failure.ts', { TIMEOUT_MS: '4000' }, (line, child) => {
        if (!sent && /^\[rank 0\] step 10 /.test(line)) {
          sent = true;
          child.kill('SIGTERM');
        }
      });
      assert.ok(sent, r.out + r.err);
      assert.equal(r.code, 143, r.out + r.err);
      assert.match(r.err, /rank 0: (killed by SIGTERM|exit code)/);
      assert.match(r.err, /rank 1: (killed by SIGTERM|exit code)/);
    });

    it('kill -9 of one rank mid-training: the launcher and every other rank exit non-zero in time', async () => {
      let killed = false;
      const r = await launch(3, 'failure.ts', { TIMEOUT_MS: '4000' }, (line) => {
        const m = /^\[rank 1\] step (\d+) pid (\d+)/.exec(line);
        if (m && Number(m[1]) >= 10 && !killed) {
          killed = true;
          process.kill(Number(m[2]), 'SIGKILL');
        }
      });
      assert.ok(killed, r.out + r.err);
      assert.notEqual(r.code, 0);
      // Whichever the launcher notices first — the killed rank, or a survivor failing on the lost
      // connection — it stops the rest; the summary shows how each rank ended.
      assert.match(r.err, /rank \d (was killed by SIGKILL|exited with code \d+); stopping the other ranks/);
      assert.match(r.err, /rank 1: (exit code 137|killed by SIGKILL)/);
      assert.match(r.err, /rank 0: (exit code [1-9]|killed by SIGTERM)/);
      assert.match(r.err, /rank 2: (exit code [1-9]|killed by SIGTERM)/);
      assert.ok(r.ms < 30000, `took ${r.ms} ms`);
    });
  });

  describe('gloo, ranks started without the launcher (rank 0 hosts the store)', function () {
    before(function () {
      if (!glooHere) this.skip();
    });

    async function pair(action: 'SIGKILL' | 'SIGSTOP', extra: NodeJS.ProcessEnv = {}): Promise<Run> {
      const port = await freePort();
      const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), JOULE_SECRET: 'abc', TIMEOUT_MS: '3000', JOULE_STORE_HOSTED: '', ...extra });
      let victim = 0;
      const r1 = run([path.join(FIX, 'failure.ts')], env(1), (line) => {
        const m = /^step (\d+) pid (\d+)/.exec(line);
        if (m) victim = Number(m[2]);
      });
      let acted = 0;
      const r0 = await run([path.join(FIX, 'failure.ts')], env(0), (line) => {
        const m = /^step (\d+)/.exec(line);
        if (m && Number(m[1]) >= 10 && victim && !acted) {
          acted = Date.now();
          process.kill(victim, action);
        }
      });
      if (action === 'SIGSTOP') process.kill(victim, 'SIGKILL');
      await r1;
      assert.ok(acted, r0.out + r0.err);
      return { ...r0, ms: Date.now() - acted };
    }

    {
      it('a dead peer: the survivor fails with DIST_TIMEOUT at once', async () => {
        const r = await pair('SIGKILL', {});
        assert.equal(r.code, 3, r.out + r.err);
        assert.match(r.out, /FAILED DIST_TIMEOUT .*peer rank died/);
        assert.ok(r.ms < 8000, `took ${r.ms} ms`);
      });
      it('a stalled peer (SIGSTOP): the other fails with DIST_TIMEOUT after the timeout, never hangs', async () => {
        const r = await pair('SIGSTOP', {});
        assert.equal(r.code, 3, r.out + r.err);
        assert.match(r.out, /FAILED DIST_TIMEOUT/);
        assert.ok(r.ms >= 2500 && r.ms < 15000, `took ${r.ms} ms`);
      });
    }
  });
});
