import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, Server as TlsServer, type TlsOptions } from 'node:tls';
import { ErrorCode, RobustMQError, silentLogger, type Logger, type Metrics } from '@robustmq/core';
import type { HandlerTable, StreamHandler, UnaryHandler } from './handlers.js';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_PORT } from './limits.js';
import { ServerConnection } from './server-connection.js';
import { serverMetrics, type ServerMetrics } from './server-metrics.js';

export interface RpcServerOptions {
  /** Address to listen on; default `127.0.0.1`. */
  host?: string;
  /** Port to listen on; default 1228, 0 for any free port. */
  port?: number;
  /** Serve TLS with these options (key, cert, and ca plus requestCert for client certificates). */
  tls?: TlsOptions;
  logger?: Logger;
  metrics?: Metrics;
  /** Largest frame accepted or sent, length prefix included; default 64 MiB. */
  maxFrameBytes?: number;
  /** Request/response handlers running at once per connection; default 256. */
  maxConcurrentCalls?: number;
  /** Streams open at once per connection; default 1024. */
  maxStreams?: number;
}

/** A listening RPC endpoint. */
export interface RpcServer {
  /** Serves `method` as request/response. Throws ALREADY_EXISTS if the method is taken. */
  handle<Req = unknown, Res = unknown>(method: string, handler: UnaryHandler<Req, Res>): void;
  /** Serves `method` as a server-to-client stream. Throws ALREADY_EXISTS if the method is taken. */
  handleStream<Req = unknown, Item = unknown>(method: string, handler: StreamHandler<Req, Item>): void;
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number }>;
  /** The bound port, once listening. */
  readonly port: number;
  /** Open client connections. */
  readonly connectionCount: number;
  /** Bytes waiting in each connection's write buffer, for watching backpressure. */
  bufferedWriteBytes(): number[];
  /**
   * Serves connections accepted from now on with these TLS options (a renewed certificate);
   * connections already open keep theirs. Only for a server created with `tls`.
   */
  setTls(tls: TlsOptions): void;
  /** Stops listening and closes every connection; calls in progress are aborted. */
  close(): Promise<void>;
}

/** Creates an RPC server. Register handlers, then `await server.listen()`. */
export function createRpcServer(options: RpcServerOptions = {}): RpcServer {
  return new RpcServerImpl(options);
}

class RpcServerImpl implements RpcServer {
  private readonly handlers: HandlerTable = { unary: new Map(), stream: new Map() };
  private readonly connections = new Set<ServerConnection>();
  /** Every accepted socket, TLS ones still in their handshake included, so close() ends them all. */
  private readonly sockets = new Set<Socket>();
  private readonly logger: Logger;
  private readonly metrics: ServerMetrics;
  private server: Server | undefined;
  private boundPort = 0;

  constructor(private options: RpcServerOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'rpc-server' });
    this.metrics = serverMetrics(options.metrics);
  }

  handle<Req, Res>(method: string, handler: UnaryHandler<Req, Res>): void {
    this.claim(method);
    this.handlers.unary.set(method, handler as UnaryHandler);
  }

  handleStream<Req, Item>(method: string, handler: StreamHandler<Req, Item>): void {
    this.claim(method);
    this.handlers.stream.set(method, handler as StreamHandler);
  }

  get port(): number {
    return this.boundPort;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  bufferedWriteBytes(): number[] {
    return [...this.connections].map((connection) => connection.bufferedWriteBytes);
  }

  setTls(tls: TlsOptions): void {
    if (!this.options.tls) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'the RPC server was not created with TLS');
    }
    this.options = { ...this.options, tls };
    if (this.server instanceof TlsServer) this.server.setSecureContext(tls);
  }

  async listen(): Promise<{ host: string; port: number }> {
    if (this.server)
      throw new RobustMQError(ErrorCode.InvalidArgument, 'the RPC server is already listening');
    const host = this.options.host ?? '127.0.0.1';
    const server = this.options.tls
      ? createTlsServer(this.options.tls).on('secureConnection', (socket) => this.accept(socket))
      : createTcpServer((socket) => this.accept(socket));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('tlsClientError', (error: Error, socket: Socket) => {
      this.logger.warn({ peer: `${socket.remoteAddress ?? '?'}`, err: error }, 'rpc TLS handshake failed');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? DEFAULT_PORT, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: unknown) => {
      this.server = undefined;
      throw new RobustMQError(ErrorCode.Unavailable, `cannot listen for RPC on ${host}`, { cause: error });
    });
    server.on('error', (error: Error) => this.logger.error({ err: error }, 'rpc listener failed'));
    const address = server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : 0;
    this.logger.info({ host, port: this.boundPort, tls: Boolean(this.options.tls) }, 'rpc server listening');
    return { host, port: this.boundPort };
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const connection of this.connections) connection.close();
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.logger.info({ port: this.boundPort }, 'rpc server closed');
  }

  private claim(method: string): void {
    if (this.handlers.unary.has(method) || this.handlers.stream.has(method)) {
      throw new RobustMQError(ErrorCode.AlreadyExists, `RPC method "${method}" already has a handler`);
    }
  }

  private accept(socket: Socket): void {
    const connection = new ServerConnection(socket, {
      handlers: this.handlers,
      logger: this.logger,
      metrics: this.metrics,
      maxFrameBytes: this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      maxConcurrentCalls: this.options.maxConcurrentCalls ?? 256,
      maxStreams: this.options.maxStreams ?? 1024,
      onClose: (closed) => {
        this.connections.delete(closed);
        this.metrics.connections.dec();
      },
    });
    this.connections.add(connection);
    this.metrics.connections.inc();
  }
}
