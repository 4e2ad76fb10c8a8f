import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { ErrorCode, RobustMQError, silentLogger, type Logger } from '@robustmq/core';
import { ClientStream, type RpcStream, type StreamHost } from './client-stream.js';
import { UnaryRequest, type ClientRequest } from './client-request.js';
import { FramedConnection } from './connection.js';
import {
  encodeFrame,
  FrameFlag,
  FrameKind,
  ProtocolError,
  stampFrame,
  type EncodedFrame,
  type Frame,
} from './frame.js';
import { DEFAULT_MAX_FRAME_BYTES } from './limits.js';

export interface RpcClientOptions {
  host: string;
  port: number;
  /** Connect with TLS: `true` for the system's CAs, or options (ca, cert, key, servername...). */
  tls?: boolean | ConnectionOptions;
  logger?: Logger;
  /** Largest frame accepted or sent, length prefix included; default 64 MiB. */
  maxFrameBytes?: number;
  /** Calls and streams in flight on the connection at once; more wait their turn. Default 1024. */
  maxInFlight?: number;
  /** Deadline of a call that names none; default 30 s. Streams have none unless given one. */
  defaultDeadlineMs?: number;
  /** Give up one connection attempt after this long; default 5 s. */
  connectTimeoutMs?: number;
  /**
   * How long calls and streams wait for a connection while there is none, counted from when it
   * was lost (or from the first attempt). Past it, the ones waiting and any made later fail
   * UNAVAILABLE at once, until a connection is up again. Default `Infinity`: each waits until
   * its own deadline.
   */
  connectWaitMs?: number;
  /** First delay before reconnecting; doubles per failed attempt up to the maximum. Default 50 ms. */
  reconnectDelayMs?: number;
  /** Longest delay between reconnection attempts; default 5 s. */
  maxReconnectDelayMs?: number;
  /** Items a stream's server may send ahead of the consumer; default 64. */
  streamWindow?: number;
}

export interface CallOptions {
  /**
   * How long to wait for the answer, in ms, counted from now; `Infinity` for no limit. Past it the
   * call fails TIMEOUT and the server is told to cancel, or UNAVAILABLE if it never left because
   * there was no connection.
   */
  deadlineMs?: number;
  /** Aborting it fails the call CLOSED and tells the server to cancel. */
  signal?: AbortSignal;
}

export interface StreamOptions extends CallOptions {
  /** Items the server may send ahead of the consumer; default the client's `streamWindow`. */
  window?: number;
}

/** A connection to one RPC server, re-established with backoff whenever it drops. */
export interface RpcClient {
  /**
   * Calls `method` with `body` and resolves with the reply. Calls are pipelined and may complete
   * in any order. A handler's RobustMQError rejects the call with the same code. A call in flight
   * when the connection drops fails UNAVAILABLE and is not retried, since it may have been
   * carried out. Uint8Array values in the body are sent without copying: leave them unchanged
   * until the call settles.
   */
  call<Res = unknown>(method: string, body?: unknown, options?: CallOptions): Promise<Res>;
  /** Opens a server-to-client stream; see {@link RpcStream}. */
  stream<Item = unknown>(method: string, body?: unknown, options?: StreamOptions): RpcStream<Item>;
  /** True while a connection is up. */
  readonly connected: boolean;
  /** Calls and streams sent and not yet answered. */
  readonly inFlight: number;
  /** Calls and streams waiting to be sent. */
  readonly queued: number;
  /** Resolves once connected; rejects UNAVAILABLE after `timeoutMs`, CLOSED if closed first. */
  waitConnected(timeoutMs: number): Promise<void>;
  /** Fails every call CLOSED, closes the connection and stops reconnecting. */
  close(): Promise<void>;
}

/**
 * Creates a client for the server at `host:port` and starts connecting. It returns at once: calls
 * made before the connection is up wait for it, up to their deadline or `connectWaitMs`.
 */
export function connectRpc(options: RpcClientOptions): RpcClient {
  return new RpcClientImpl(options);
}

class RpcClientImpl implements RpcClient, StreamHost {
  private readonly logger: Logger;
  private readonly maxFrameBytes: number;
  private readonly maxInFlight: number;
  private readonly connectWaitMs: number;
  private readonly queue = new Set<ClientRequest>();
  private readonly requests = new Map<number, ClientRequest>();
  private conn: FramedConnection | undefined;
  /** A connection made but not yet answered by the server's preamble. */
  private opening: FramedConnection | undefined;
  private closed = false;
  private nextId = 0;
  private attempt = 0;
  /** When the last connection was lost (or the first attempt began), while there is none. */
  private downSince: number | undefined = Date.now();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private connectWaiters = new Set<() => void>();
  /** Fires `connectWaitMs` into an outage. */
  private outageTimer: NodeJS.Timeout | undefined;
  /** Set once an outage has lasted `connectWaitMs`: requests then fail instead of queueing. */
  private failFast = false;
  /** Why the last connection attempt failed, for the errors of requests that gave up waiting. */
  private lastConnectError: string | undefined;

  constructor(private readonly options: RpcClientOptions) {
    this.logger = (options.logger ?? silentLogger).child({
      component: 'rpc-client',
      server: `${options.host}:${options.port}`,
    });
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxInFlight = options.maxInFlight ?? 1024;
    this.connectWaitMs = options.connectWaitMs ?? Infinity;
    this.startOutage();
    this.connect();
  }

  get connected(): boolean {
    return this.conn !== undefined;
  }

  get inFlight(): number {
    return this.requests.size;
  }

  get queued(): number {
    return this.queue.size;
  }

  call<Res>(method: string, body?: unknown, options: CallOptions = {}): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (this.closed) {
        reject(new RobustMQError(ErrorCode.Closed, 'the RPC client is closed'));
        return;
      }
      const frame = encodeFrame({ kind: FrameKind.Request, callId: 0, method, body }, this.maxFrameBytes);
      const deadlineMs = options.deadlineMs ?? this.options.defaultDeadlineMs ?? 30_000;
      const cleanup = this.watchRequest(() => request, deadlineMs, options.signal);
      const request: UnaryRequest = new UnaryRequest(
        method,
        frame,
        Number.isFinite(deadlineMs) ? Date.now() + deadlineMs : undefined,
        resolve as (value: unknown) => void,
        reject,
        cleanup,
      );
      this.enqueue(request);
    });
  }

  stream<Item>(method: string, body?: unknown, options: StreamOptions = {}): RpcStream<Item> {
    let frame: EncodedFrame = { parts: [], byteLength: 0 };
    let refused: RobustMQError | undefined;
    if (this.closed) refused = new RobustMQError(ErrorCode.Closed, 'the RPC client is closed');
    try {
      frame = encodeFrame(
        { kind: FrameKind.Request, flags: FrameFlag.Stream, callId: 0, method, body },
        this.maxFrameBytes,
      );
    } catch (error) {
      refused ??= error as RobustMQError;
    }
    const window = Math.max(1, options.window ?? this.options.streamWindow ?? 64);
    const deadlineMs = options.deadlineMs ?? Infinity;
    const cleanup = this.watchRequest(() => stream, deadlineMs, options.signal);
    const stream: ClientStream<Item> = new ClientStream<Item>(
      method,
      frame,
      Number.isFinite(deadlineMs) ? Date.now() + deadlineMs : undefined,
      window,
      this,
      cleanup,
    );
    if (refused) stream.fail(refused);
    else this.enqueue(stream);
    return stream;
  }

  waitConnected(timeoutMs: number): Promise<void> {
    if (this.conn) return Promise.resolve();
    if (this.closed) return Promise.reject(new RobustMQError(ErrorCode.Closed, 'the RPC client is closed'));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.connectWaiters.delete(done);
        if (this.conn) resolve();
        else reject(new RobustMQError(ErrorCode.Closed, 'the RPC client is closed'));
      };
      const timer = setTimeout(() => {
        this.connectWaiters.delete(done);
        reject(this.unavailable(`not connected within ${timeoutMs} ms`));
      }, timeoutMs);
      this.connectWaiters.add(done);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.outageTimer);
    const error = new RobustMQError(ErrorCode.Closed, 'the RPC client is closed');
    for (const request of [...this.queue]) request.fail(error);
    this.queue.clear();
    for (const request of [...this.requests.values()]) request.fail(error);
    this.requests.clear();
    for (const wake of [...this.connectWaiters]) wake();
    this.opening?.close();
    this.opening = undefined;
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      const socketClosed = conn.socket.closed
        ? Promise.resolve()
        : new Promise<void>((resolve) => conn.socket.once('close', () => resolve()));
      conn.close();
      await socketClosed;
    }
  }

  grant(stream: ClientStream, count: number): void {
    const conn = this.conn;
    if (!conn || this.requests.get(stream.id) !== stream) return;
    conn.send(encodeFrame({ kind: FrameKind.Credit, callId: stream.id, aux: count }, this.maxFrameBytes));
  }

  abandon(request: ClientRequest): void {
    if (this.queue.delete(request)) return;
    if (this.requests.get(request.id) !== request) return;
    this.requests.delete(request.id);
    this.conn?.send(encodeFrame({ kind: FrameKind.Cancel, callId: request.id }, this.maxFrameBytes));
    this.pump();
  }

  /** Arms a request's deadline and abort signal; returns what undoes both once it settles. */
  private watchRequest(request: () => ClientRequest, deadlineMs: number, signal?: AbortSignal): () => void {
    const timer = Number.isFinite(deadlineMs)
      ? setTimeout(() => this.expire(request()), Math.max(0, deadlineMs))
      : undefined;
    const onAbort = (): void => {
      const target = request();
      this.abandon(target);
      target.fail(
        new RobustMQError(ErrorCode.Closed, 'the call was cancelled by its caller', {
          cause: signal?.reason,
        }),
      );
    };
    if (signal?.aborted) queueMicrotask(onAbort);
    else signal?.addEventListener('abort', onAbort, { once: true });
    return () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
  }

  private expire(request: ClientRequest): void {
    const neverSent = this.queue.has(request);
    const connected = this.conn !== undefined;
    this.abandon(request);
    if (neverSent && !connected) {
      request.fail(this.unavailable(`no connection within the deadline; "${request.method}" was not sent`));
    } else {
      request.fail(new RobustMQError(ErrorCode.Timeout, `"${request.method}" passed its deadline`));
    }
  }

  private enqueue(request: ClientRequest): void {
    if (this.failFast && !this.conn) {
      request.fail(this.notConnected(request));
      return;
    }
    this.queue.add(request);
    this.pump();
  }

  /** Arms the connect wait at the start of an outage. */
  private startOutage(): void {
    this.failFast = false;
    clearTimeout(this.outageTimer);
    // Past 2^31 - 1 ms Node would fire the timer at once: treat such a wait as no limit.
    if (!(this.connectWaitMs <= 0x7fffffff)) return;
    this.outageTimer = setTimeout(() => this.giveUpWaiting(), Math.max(0, this.connectWaitMs));
  }

  /** The outage has lasted `connectWaitMs`: fail what waits for a connection, and what comes later. */
  private giveUpWaiting(): void {
    this.outageTimer = undefined;
    if (this.conn || this.closed) return;
    this.failFast = true;
    const waiting = [...this.queue];
    this.queue.clear();
    for (const request of waiting) request.fail(this.notConnected(request));
  }

  private notConnected(request: ClientRequest): RobustMQError {
    const reason = this.lastConnectError === undefined ? '' : ` (${this.lastConnectError})`;
    return this.unavailable(
      `no connection for ${this.downForMs() ?? 0} ms${reason}; "${request.method}" was not sent`,
    );
  }

  /** Sends queued requests while the in-flight limit and the socket allow. */
  private pump(): void {
    const conn = this.conn;
    if (!conn) return;
    for (const request of this.queue) {
      if (this.requests.size >= this.maxInFlight) return;
      if (!conn.writable) {
        this.waitForDrain(conn);
        return;
      }
      this.queue.delete(request);
      const id = this.allocateId();
      request.id = id;
      const remaining =
        request.deadlineAt === undefined ? 0 : Math.max(1, Math.ceil(request.deadlineAt - Date.now()));
      stampFrame(request.frame, id, Math.min(remaining, 0xffffffff));
      this.requests.set(id, request);
      conn.send(request.frame);
      if (request instanceof ClientStream) {
        conn.send(
          encodeFrame({ kind: FrameKind.Credit, callId: id, aux: request.window }, this.maxFrameBytes),
        );
      }
    }
  }

  private waitForDrain(conn: FramedConnection): void {
    if (this.waitingForDrain) return;
    this.waitingForDrain = true;
    void conn.whenWritable().then(() => {
      this.waitingForDrain = false;
      this.pump();
    });
  }

  private allocateId(): number {
    do {
      this.nextId = (this.nextId + 1) >>> 0;
    } while (this.nextId === 0 || this.requests.has(this.nextId));
    return this.nextId;
  }

  private onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Response:
      case FrameKind.Error:
      case FrameKind.StreamItem:
      case FrameKind.StreamEnd: {
        // No request: it timed out or was cancelled, and this answer came too late.
        const request = this.requests.get(frame.callId);
        if (!request) return;
        if (request.onFrame(frame)) {
          this.requests.delete(frame.callId);
          this.pump();
        }
        return;
      }
      default:
        throw new ProtocolError(`a server may not send frames of kind ${frame.kind}`);
    }
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.closed) return;
    const { host, port, tls } = this.options;
    const tlsOptions = typeof tls === 'object' ? tls : {};
    const socket: Socket = tls
      ? connectTls({ ...(isIP(host) === 0 ? { servername: host } : {}), ...tlsOptions, host, port })
      : connectTcp({ host, port });
    const connectEvent = tls ? 'secureConnect' : 'connect';
    const timer = setTimeout(
      () => socket.destroy(new Error(`connect timed out after ${this.options.connectTimeoutMs ?? 5000} ms`)),
      this.options.connectTimeoutMs ?? 5000,
    );
    let failed = false;
    const onError = (error: Error): void => {
      if (failed) return;
      failed = true;
      clearTimeout(timer);
      socket.off(connectEvent, onConnect);
      socket.destroy();
      this.lastConnectError = error.message;
      const fields = { err: error.message, attempt: this.attempt, downForMs: this.downForMs() };
      if (this.attempt === 0) this.logger.warn(fields, 'rpc connect failed, retrying');
      else if (this.attempt >= 8 && (this.attempt & (this.attempt - 1)) === 0) {
        // Attempts 8, 16, 32...: a long outage stays visible in the log without flooding it.
        this.logger.warn(fields, 'rpc server still unreachable, retrying');
      } else this.logger.debug(fields, 'rpc connect failed, retrying');
      this.scheduleReconnect();
    };
    // Connected means the server has answered with its preamble: a socket that opens but is then
    // closed (a TLS server refusing our certificate, or one met with plain TCP) is a failed
    // attempt, with its reason, rather than a connection that keeps being lost.
    const onConnect = (): void => {
      socket.off('error', onError);
      if (this.closed) {
        clearTimeout(timer);
        socket.destroy();
        return;
      }
      let answered = false;
      const conn: FramedConnection = new FramedConnection(socket, {
        maxFrameBytes: this.maxFrameBytes,
        logger: this.logger,
        onPreamble: () => {
          answered = true;
          clearTimeout(timer);
          this.opening = undefined;
          this.onConnected(conn);
        },
        onFrame: (frame) => this.onFrame(frame),
        onClose: (reason) => {
          if (answered) {
            this.onConnectionClosed(conn, reason);
            return;
          }
          this.opening = undefined;
          onError(reason ?? new Error('the server closed the connection before answering'));
        },
      });
      this.opening = conn;
    };
    socket.on('error', onError);
    socket.once(connectEvent, onConnect);
  }

  private onConnected(conn: FramedConnection): void {
    conn.socket.setKeepAlive(true, 10_000);
    this.conn = conn;
    this.logger.info({ attempt: this.attempt, downForMs: this.downForMs() }, 'rpc connected');
    this.attempt = 0;
    this.downSince = undefined;
    this.lastConnectError = undefined;
    this.failFast = false;
    clearTimeout(this.outageTimer);
    this.waitingForDrain = false;
    for (const wake of [...this.connectWaiters]) wake();
    this.pump();
  }

  private onConnectionClosed(conn: FramedConnection, reason: Error | undefined): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    if (this.closed) return;
    this.downSince = Date.now();
    this.startOutage();
    this.logger.warn({ err: reason?.message }, 'rpc connection lost, reconnecting');
    const requests = [...this.requests.values()];
    this.requests.clear();
    for (const request of requests) {
      request.fail(
        this.unavailable(
          `connection lost while "${request.method}" was in flight; it may or may not have run`,
        ),
      );
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    const base = this.options.reconnectDelayMs ?? 50;
    const max = this.options.maxReconnectDelayMs ?? 5000;
    const delay = Math.min(max, base * 2 ** Math.min(this.attempt, 20)) * (0.8 + Math.random() * 0.4);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private downForMs(): number | undefined {
    return this.downSince === undefined ? undefined : Date.now() - this.downSince;
  }

  private unavailable(message: string): RobustMQError {
    return new RobustMQError(ErrorCode.Unavailable, `${this.options.host}:${this.options.port}: ${message}`);
  }
}
