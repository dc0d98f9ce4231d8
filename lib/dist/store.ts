// The rendezvous store as seen from TypeScript: a client of the TCP key-value store that the
// launcher (or rank 0) hosts, and the server itself. Every call has a timeout (DIST_TIMEOUT on
// expiry); every client presents the job secret, and a client with the wrong one is refused.
import { checkInt, describe, fail } from '../errors';
import { native } from '../native';

export interface StoreOptions {
  host?: string;
  port: number;
  /** The job secret (JOULE_SECRET); default: the environment's. */
  secret?: string;
  /** Default timeout of every call, in milliseconds (default 60000). */
  timeoutMs?: number;
}

/** A client of the rendezvous store. */
export class Store {
  private id: number | null;
  readonly host: string;
  readonly port: number;

  constructor(options: StoreOptions) {
    if (typeof options !== 'object' || options === null) fail('INVALID_ARGUMENT', `Store: expected an options object, got ${describe(options)}`);
    this.host = options.host ?? '127.0.0.1';
    this.port = checkInt(options.port, 'port', 1);
    const secret = options.secret ?? process.env.JOULE_SECRET ?? '';
    const timeoutMs = checkInt(options.timeoutMs ?? 60000, 'timeoutMs', 1);
    this.id = native.distStoreConnect(this.host, this.port, secret, timeoutMs);
  }

  private get handle(): number {
    if (this.id === null) fail('INVALID_ARGUMENT', 'store: this client was closed');
    return this.id;
  }

  set(key: string, value: string | Uint8Array): void {
    native.distStoreSet(this.handle, key, value);
  }
  /** Waits (up to the timeout) for the key to exist and returns its value. */
  get(key: string, timeoutMs?: number): Buffer {
    return native.distStoreGet(this.handle, key, timeoutMs);
  }
  /** Adds delta to the integer at key (missing: 0) and returns the result. */
  add(key: string, delta: number): number {
    return native.distStoreAdd(this.handle, key, checkInt(delta, 'delta'));
  }
  /** Sets key to desired when it holds expected (a missing key matches ''); returns the value after. */
  compareSet(key: string, expected: string | Uint8Array, desired: string | Uint8Array): Buffer {
    return native.distStoreCompareSet(this.handle, key, expected, desired);
  }
  /** Waits (up to the timeout) until every key exists. */
  wait(keys: string[], timeoutMs?: number): void {
    native.distStoreWait(this.handle, keys, timeoutMs);
  }
  check(keys: string[]): boolean {
    return native.distStoreCheck(this.handle, keys);
  }
  delete(key: string): boolean {
    return native.distStoreDelete(this.handle, key);
  }
  close(): void {
    if (this.id !== null) native.distStoreClose(this.id);
    this.id = null;
  }
}

/** The store's server, on its own threads in this process. Port 0 picks a free port. */
export class StoreServer {
  private id: number | null;
  readonly host: string;
  readonly port: number;

  constructor(options: { host?: string; port?: number; secret: string }) {
    this.host = options.host ?? '127.0.0.1';
    const [id, port] = native.distStoreServe(this.host, checkInt(options.port ?? 0, 'port', 0), options.secret);
    this.id = id;
    this.port = port;
  }

  close(): void {
    if (this.id !== null) native.distStoreServerStop(this.id);
    this.id = null;
  }
}
