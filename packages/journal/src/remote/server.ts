import type { TlsOptions } from 'node:tls';
import { createRpcServer, type RpcServer } from '@robustmq/rpc';
import { serveJournal, type JournalService, type JournalServiceOptions } from './service.js';

export interface JournalServerOptions extends JournalServiceOptions {
  /** Address to listen on, e.g. `127.0.0.1` or `0.0.0.0`. */
  host: string;
  /** Port to listen on; 0 for any free port. The internal RPC port of a node is 1228. */
  port: number;
  /** Serve TLS with these options (key and cert; ca plus requestCert for client certificates). */
  tls?: TlsOptions;
  /**
   * Calls served at once per client connection; the server reads no further requests from a
   * connection at this limit. Default 1024, generous because long polls (waitForData) hold a slot.
   */
  maxConcurrentCalls?: number;
}

/** A journal served over the internal RPC layer; see {@link createJournalServer}. */
export interface JournalServer extends JournalService {
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** The bound port, once listening. */
  readonly port: number;
  /** Open client connections. */
  readonly connectionCount: number;
  /** Bytes waiting in each connection's write buffer (a client that reads slowly shows here). */
  bufferedWriteBytes(): number[];
  /** Serves connections accepted from now on with these TLS options (see `RpcServer.setTls`). */
  setTls(tls: TlsOptions): void;
  /**
   * Stops listening and drops every connection: calls in flight fail UNAVAILABLE on the clients'
   * side. The engine stays open; close it afterwards.
   */
  close(): Promise<void>;
}

/**
 * Serves any StorageEngine to {@link connectJournal} clients over `@robustmq/rpc` (TCP or TLS).
 * Every engine call becomes one RPC call; engine errors reach the client with their ErrorCode,
 * except CLOSED, which a remote caller sees as UNAVAILABLE. Call `listen()` to start.
 *
 * ```ts
 * const server = createJournalServer({ engine: journal, host: '0.0.0.0', port: 1228, logger });
 * await server.listen();
 * ```
 */
export function createJournalServer(options: JournalServerOptions): JournalServer {
  const rpc = createRpcServer({
    host: options.host,
    port: options.port,
    logger: options.logger,
    tls: options.tls,
    metrics: options.metrics,
    maxFrameBytes: options.maxFrameBytes,
    maxConcurrentCalls: options.maxConcurrentCalls ?? 1024,
  });
  return new RpcJournalServer(rpc, serveJournal(rpc, options));
}

class RpcJournalServer implements JournalServer {
  constructor(
    private readonly rpc: RpcServer,
    private readonly service: JournalService,
  ) {}

  listen(): Promise<{ host: string; port: number }> {
    return this.rpc.listen();
  }

  get port(): number {
    return this.rpc.port;
  }

  get connectionCount(): number {
    return this.rpc.connectionCount;
  }

  bufferedWriteBytes(): number[] {
    return this.rpc.bufferedWriteBytes();
  }

  setTls(tls: TlsOptions): void {
    this.rpc.setTls(tls);
  }

  fence(shard: string, epoch: number): void {
    this.service.fence(shard, epoch);
  }

  epochOf(shard: string): number | undefined {
    return this.service.epochOf(shard);
  }

  close(): Promise<void> {
    return this.rpc.close();
  }
}
