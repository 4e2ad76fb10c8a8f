import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach } from 'vitest';
import { silentLogger, type StorageEngine } from '@robustmq/core';
import {
  connectJournal,
  createJournalServer,
  openJournal,
  type JournalClient,
  type JournalClientOptions,
  type JournalServer,
  type JournalServerOptions,
} from '../../src/index.js';

const clients: JournalClient[] = [];
const servers: JournalServer[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(proxies.splice(0).map((p) => p.close()));
  await Promise.allSettled(servers.splice(0).map((s) => s.close()));
});

/** A journal server on 127.0.0.1 (any free port unless given), closed after the test. */
export async function startServer(
  engine: StorageEngine,
  options: Partial<JournalServerOptions> = {},
): Promise<JournalServer> {
  const server = createJournalServer({
    engine,
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    ...options,
  });
  await server.listen();
  servers.push(server);
  return server;
}

/** A client of the server on 127.0.0.1:`port` that reconnects quickly, closed after the test. */
export function client(port: number, options: Partial<JournalClientOptions> = {}): JournalClient {
  const journal = connectJournal({
    host: '127.0.0.1',
    port,
    reconnectDelayMs: 10,
    maxReconnectDelayMs: 100,
    requestTimeoutMs: 20_000,
    ...options,
  });
  clients.push(journal);
  return journal;
}

/**
 * A journal engine on `dir`, a server for it and a client of that server, as one StorageEngine
 * whose `close()` closes all three: what the conformance suite opens and reopens.
 */
export async function openOverRpc(dir: string): Promise<StorageEngine> {
  const engine = await openJournal({ dir });
  const server = createJournalServer({ engine, host: '127.0.0.1', port: 0, logger: silentLogger });
  await server.listen();
  const remote = connectJournal({ host: '127.0.0.1', port: server.port });
  const close = async (): Promise<void> => {
    try {
      await remote.close();
    } finally {
      await server.close();
      await engine.close();
    }
  };
  return new Proxy(remote, {
    get(target, property) {
      if (property === 'close') return close;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * Holds calls of one engine method on their way into the engine, so a test can act while they
 * are on the server: sent and not yet answered.
 */
export class CallGate {
  /** Calls that reached the gate. */
  arrived = 0;
  /** Calls that went through the gate and settled in the engine. */
  settled = 0;
  #held: Promise<void> | undefined;
  #release: (() => void) | undefined;

  constructor(readonly method: keyof StorageEngine) {}

  hold(): void {
    this.#held ??= new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.#release?.();
    this.#held = undefined;
    this.#release = undefined;
  }

  /** `engine` with calls of the gate's method passing through the gate. */
  wrap(engine: StorageEngine): StorageEngine {
    return new Proxy(engine, {
      get: (target, property) => {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => Promise<unknown>).bind(target);
        if (property !== this.method) return method;
        return async (...args: unknown[]) => {
          this.arrived++;
          await this.#held;
          try {
            return await method(...args);
          } finally {
            this.settled++;
          }
        };
      },
    });
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of a server, to cut a client's connection while the server
 * stays up, or to stop reading the server's replies as a slow client does.
 */
export class TcpProxy {
  readonly #pairs = new Set<[Socket, Socket]>();
  readonly #server: Server;
  #stalled = false;

  private constructor(target: number) {
    this.#server = createServer((downstream) => {
      const upstream = connect({ host: '127.0.0.1', port: target });
      const pair: [Socket, Socket] = [downstream, upstream];
      this.#pairs.add(pair);
      const end = (): void => {
        this.#pairs.delete(pair);
        downstream.destroy();
        upstream.destroy();
      };
      downstream.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
      downstream.pipe(upstream);
      if (this.#stalled) upstream.pause();
      else upstream.pipe(downstream);
    });
  }

  static async start(target: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxies.push(proxy);
    return proxy;
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** Drops every connection through the proxy, as a network failure would. */
  cut(): void {
    for (const [downstream, upstream] of this.#pairs) {
      downstream.destroy();
      upstream.destroy();
    }
  }

  /** Stops reading from the server on every connection, so the server's replies back up. */
  stall(): void {
    this.#stalled = true;
    for (const [downstream, upstream] of this.#pairs) {
      upstream.unpipe(downstream);
      upstream.pause();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Resolves once `condition` holds, polling; rejects after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The error `promise` rejects with; throws if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
