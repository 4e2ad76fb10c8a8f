import type { ConnectionInfo, Logger } from '@robustmq/core';
import type { Duplex } from 'node:stream';
import { decodeRequestHeader, encodeResponse, encodeResponseChunks } from '../codec/frame.js';
import { API_SCHEMAS } from '../codec/messages/index.js';
import type { RequestHeader } from '../codec/messages/request-header.js';
import { decodeMessage, encodeMessage, ProtocolError, Reader } from '../codec/protocol.js';
import { KafkaErrorCode } from '../codec/error-codes.js';
import type { Broker } from './broker.js';
import { coordinatorErrorOf, kafkaErrorOf } from './errors.js';
import { DISPATCH, type ApiEntry } from './dispatch.js';
import { CloseConnection, type ConnectionState, type RequestContext } from './handler.js';
import { apiVersionsBody } from './handlers/api-versions.js';

const PRODUCE = 0;
const FETCH = 1;
const API_VERSIONS = 18;
/** Produce requests of one connection under way at once (Kafka clients send up to 5). */
const MAX_PIPELINED = 32;
/**
 * Stop reading from a client whose unhandled requests hold this many bytes; Produce requests under
 * way at once hold at most this many too.
 */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;
/**
 * Largest frame taken before SASL authentication (Kafka's `sasl.server.max.receive.size`): SASL
 * exchanges are small, and a client nobody knows must not make the broker hold up to
 * `max_frame_size` for it.
 */
const MAX_UNAUTHENTICATED_FRAME = 512 * 1024;

let nextConnectionId = 1;

/**
 * One client connection: splits the byte stream into size-prefixed frames, decodes each request,
 * runs its handler and writes the responses in request order (Kafka clients match responses by
 * order as well as correlation id). Requests are handled one at a time, as Kafka does, except that
 * consecutive Produce requests overlap: the next one starts as soon as the previous one's appends
 * are queued in order, so a pipelining producer's batches share the storage's syncs instead of
 * each waiting for its own.
 */
export class Connection {
  readonly state: ConnectionState;
  private readonly logger: Logger;
  private readonly listener: string;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private processing = false;
  private closed = false;
  /** Requests started and not yet answered, oldest first; each settles once its response is written. */
  private readonly answering: Promise<void>[] = [];
  /** Frame bytes of the requests in {@link answering}. */
  private answeringBytes = 0;
  /** Whether {@link write} corked the socket until the next tick. */
  private corked = false;
  /** Aborted when the connection closes (`RequestContext.closed`). */
  private readonly closing = new AbortController();

  constructor(
    private readonly broker: Broker,
    private readonly socket: Duplex,
    info: ConnectionInfo,
  ) {
    this.listener = info.listener;
    const local = socket as Duplex & {
      localAddress?: string;
      localPort?: number;
      setNoDelay?: (on: boolean) => void;
      setTimeout?: (ms: number) => void;
    };
    this.state = {
      id: nextConnectionId++,
      listener: info.listener,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
      ...(local.localAddress === undefined ? {} : { localAddress: local.localAddress }),
      ...(local.localPort === undefined ? {} : { localPort: local.localPort }),
      clientId: null,
      principal: { username: null, superuser: false },
      authenticated: !broker.settings.saslEnabled,
      sasl: null,
      rawSasl: null,
    };
    this.logger = broker.logger.child({
      connection: this.state.id,
      remote: `${info.remoteAddress}:${info.remotePort}`,
    });
    local.setNoDelay?.(true);
    // As Kafka's connections.max.idle.ms: a connection that stays silent holds a descriptor for nothing.
    local.setTimeout?.(broker.settings.connectionsMaxIdleMs);
    socket.on('timeout', () => this.onIdle());
    broker.metrics.connectionOpened(this.listener);
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', (error) => this.logger.debug({ err: error }, 'socket error'));
    socket.on('close', () => this.onClose());
  }

  /** Closes the connection (plugin stop). */
  close(): void {
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.broker.metrics.connectionClosed(this.listener);
    this.queue.length = 0;
    this.closing.abort();
  }

  /** No bytes either way for the idle time: closed, unless a request is still being answered. */
  private onIdle(): void {
    if (this.closed || this.answering.length > 0 || this.processing) return;
    this.logger.info(
      { clientId: this.state.clientId, idleMs: this.broker.settings.connectionsMaxIdleMs },
      'idle connection closed',
    );
    this.onClose();
    this.socket.destroy();
  }

  private drop(reason: string, message: string, fields: object = {}): void {
    this.broker.metrics.bad(this.listener, reason);
    this.logger.warn({ reason, clientId: this.state.clientId, ...fields }, message);
    this.onClose();
    this.socket.destroy();
  }

  private onData(data: Buffer): void {
    if (this.closed) return;
    this.broker.metrics.received(this.listener, data.length);
    this.chunks.push(data);
    this.buffered += data.length;
    while (this.buffered >= 4) {
      if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
      const size = this.chunks[0]!.readInt32BE(0);
      const max = this.state.authenticated
        ? this.broker.settings.maxFrameSize
        : Math.min(this.broker.settings.maxFrameSize, MAX_UNAUTHENTICATED_FRAME);
      if (size < 0 || size > max) {
        this.drop('frame_size', 'request frame size out of bounds', {
          size,
          max,
          authenticated: this.state.authenticated,
        });
        return;
      }
      if (this.buffered < 4 + size) break;
      const frame = this.take(4 + size).subarray(4);
      this.queue.push(frame);
      this.queuedBytes += frame.length;
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.socket.pause();
    if (!this.processing) void this.processQueue();
  }

  /**
   * Removes the first `bytes` buffered bytes: a view when one chunk holds them, else one copy of
   * just those bytes (what follows stays in its chunks, so no byte is copied twice).
   */
  private take(bytes: number): Buffer {
    this.buffered -= bytes;
    const first = this.chunks[0]!;
    if (first.length >= bytes) {
      if (first.length === bytes) this.chunks.shift();
      else this.chunks[0] = first.subarray(bytes);
      return first.subarray(0, bytes);
    }
    const out = Buffer.allocUnsafe(bytes);
    let filled = 0;
    while (filled < bytes) {
      const chunk = this.chunks[0]!;
      const used = Math.min(chunk.length, bytes - filled);
      chunk.copy(out, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }

  private async processQueue(): Promise<void> {
    this.processing = true;
    try {
      while (!this.closed && this.queue.length > 0) {
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.length;
        if (this.socket.isPaused() && this.queuedBytes <= MAX_QUEUED_BYTES / 2) this.socket.resume();
        const produce = this.state.rawSasl === null && frame.length >= 2 && frame.readInt16BE(0) === PRODUCE;
        // Anything but Produce starts only once every earlier request is answered.
        if (!produce) await Promise.all(this.answering);
        else {
          while (
            this.answering.length >= MAX_PIPELINED ||
            (this.answering.length > 0 && this.answeringBytes + frame.length > MAX_QUEUED_BYTES)
          ) {
            await this.answering[0];
          }
        }
        if (this.closed) break;
        let queued!: () => void;
        const admitted = new Promise<void>((resolve) => (queued = resolve));
        const afterResponse: Array<() => void> = [];
        const handled = this.handleFrame(frame, afterResponse, produce ? queued : undefined);
        const answered = this.answerInOrder(handled, frame.length, afterResponse);
        if (produce) await Promise.race([admitted, handled]);
        else await answered;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.processing = false;
    }
  }

  /**
   * Writes a request's response after every earlier request's response; `afterResponse` runs once
   * the socket has taken it (or it will never be sent).
   */
  private answerInOrder(
    handled: Promise<Buffer | Buffer[] | null>,
    bytes: number,
    afterResponse: ReadonlyArray<() => void>,
  ): Promise<void> {
    const previous = this.answering[this.answering.length - 1];
    let taken = false;
    const done = () => {
      if (taken) return;
      taken = true;
      for (const callback of afterResponse) callback();
    };
    const answered = (async () => {
      try {
        const response = await handled;
        if (previous) await previous;
        if (response && !this.closed) await this.write(response, done);
        else done();
      } catch (error) {
        done();
        throw error;
      }
    })().catch((error: unknown) => this.fail(error));
    this.answering.push(answered);
    this.answeringBytes += bytes;
    // Responses are written in order, so the one settling is always the oldest.
    void answered.then(() => {
      void this.answering.shift();
      this.answeringBytes -= bytes;
    });
    return answered;
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    this.logger.error({ err: error, clientId: this.state.clientId }, 'connection failed');
    this.onClose();
    this.socket.destroy();
  }

  /** Writes a response; `written` runs once the socket is done with its bytes (or failed). */
  private async write(response: Buffer | Buffer[], written: () => void): Promise<void> {
    // Responses that become ready together (the Produce requests one sync made durable) leave in
    // one system call: the socket stays corked until the current burst of callbacks is over.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let flowing: boolean;
    if (Array.isArray(response)) {
      this.broker.metrics.sent(
        this.listener,
        response.reduce((total, chunk) => total + chunk.length, 0),
      );
      flowing = response
        .map((chunk, i) => this.socket.write(chunk, i === response.length - 1 ? written : undefined))
        .every(Boolean);
      if (response.length === 0) written();
    } else {
      this.broker.metrics.sent(this.listener, response.length);
      flowing = this.socket.write(response, written);
    }
    if (flowing) return;
    // A client that does not read slows only itself: its next request waits for the drain.
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Handles one frame; resolves with the bytes to send back, or null for none. */
  private async handleFrame(
    frame: Buffer,
    afterResponse: Array<() => void>,
    queued?: () => void,
  ): Promise<Buffer | Buffer[] | null> {
    if (this.state.rawSasl) return this.handleRawSasl(frame);
    let header: RequestHeader;
    let bodyOffset: number;
    try {
      ({ header, bodyOffset } = decodeRequestHeader(frame));
    } catch (error) {
      this.drop('bad_header', 'malformed request header', { err: error });
      return null;
    }
    const { requestApiKey: apiKey, requestApiVersion: version, correlationId } = header;
    this.state.clientId = header.clientId ?? null;
    const entry = DISPATCH.get(apiKey);
    if (!entry) {
      this.drop('unknown_api', 'request for an API this broker does not support', { apiKey, version });
      return null;
    }
    this.broker.metrics.request(this.listener, entry.name);
    if (!this.state.authenticated && !entry.beforeAuth) {
      this.drop('unauthenticated', 'request before SASL authentication', { api: entry.name });
      return null;
    }
    if (version < entry.minVersion || version > entry.maxVersion) {
      return this.unsupportedVersion(entry, version, correlationId);
    }
    const schema = API_SCHEMAS.get(apiKey)!;
    let request: unknown;
    try {
      const reader = new Reader(frame, bodyOffset);
      request = schema.request.read(reader, version);
    } catch (error) {
      // ApiVersions v3+ carries client software fields; a client that mangles them still gets
      // the version list, as Kafka does.
      if (apiKey === API_VERSIONS) request = schema.request.defaults();
      else {
        this.drop('bad_request', 'malformed request body', { api: entry.name, version, err: error });
        return null;
      }
    }
    const context: RequestContext = {
      apiKey,
      apiVersion: version,
      correlationId,
      clientId: header.clientId ?? null,
      connection: this.state,
      broker: this.broker,
      logger: this.logger,
      queued,
      afterResponse: (done) => afterResponse.push(done),
      closed: this.closing.signal,
    };
    let response: unknown;
    try {
      response = await entry.handler(request, context);
    } catch (error) {
      if (error instanceof CloseConnection) {
        this.drop('closed_by_handler', error.message, { api: entry.name });
      } else {
        this.broker.metrics.bad(this.listener, 'handler_error');
        this.logger.error({ err: error, api: entry.name, version }, 'request handler failed');
        const answer = this.failureResponse(entry, version, correlationId, error);
        if (answer) return answer;
        this.onClose();
        this.socket.destroy();
      }
      return null;
    }
    if (entry.responds && !entry.responds(request)) return null;
    try {
      // Fetch records go out by reference; everything else is one buffer.
      if (apiKey === FETCH) return encodeResponseChunks(apiKey, version, correlationId, response);
      return encodeResponse(apiKey, version, correlationId, response);
    } catch (error) {
      // A handler's response the version cannot carry (a null where none is allowed): never sent
      // as it is, but as the API's error response, or the connection closes.
      this.broker.metrics.bad(this.listener, 'encode_error');
      this.logger.error({ err: error, api: entry.name, version }, 'cannot encode response');
      const answer = this.failureResponse(entry, version, correlationId, error);
      if (answer) return answer;
      this.onClose();
      this.socket.destroy();
      return null;
    }
  }

  /**
   * The response to a request whose handler threw: the API's top-level error code, when it has one
   * at this version, set to what the failure means (COORDINATOR_NOT_AVAILABLE for the coordinator's
   * APIs when storage cannot serve); null when there is none, and the connection closes. A failed
   * SASL step also closes it: the client starts over rather than take a code as a refused login.
   */
  private failureResponse(
    entry: ApiEntry,
    version: number,
    correlationId: number,
    error: unknown,
  ): Buffer | null {
    if (entry.beforeAuth) return null;
    const errorCode = entry.coordinator ? coordinatorErrorOf(error) : kafkaErrorOf(error);
    return this.errorResponse(entry, version, correlationId, errorCode);
  }

  /**
   * The API's response at `version` with only a top-level `errorCode`, or null when that version
   * writes none (the defaults carry the field whether or not a version writes it), so the caller
   * closes instead of answering with what reads as an empty success.
   */
  private errorResponse(
    entry: ApiEntry,
    version: number,
    correlationId: number,
    errorCode: number,
  ): Buffer | null {
    const codec = API_SCHEMAS.get(entry.apiKey)!.response;
    const body = { ...(codec.defaults() as Record<string, unknown>), errorCode };
    if (!('errorCode' in body)) return null;
    try {
      const written = decodeMessage(codec, encodeMessage(codec, body, version), version) as {
        errorCode?: number;
      };
      if (written.errorCode !== errorCode) return null;
      return encodeResponse(entry.apiKey, version, correlationId, body);
    } catch {
      return null;
    }
  }

  /**
   * A version outside the supported range. ApiVersions answers in the v0 body with
   * UNSUPPORTED_VERSION and the version list, so the client can pick one (KIP-511); any other API
   * gets its response with UNSUPPORTED_VERSION when it has a top-level error code, else a close.
   */
  private unsupportedVersion(entry: ApiEntry, version: number, correlationId: number): Buffer | null {
    this.broker.metrics.bad(this.listener, 'unsupported_version');
    if (entry.apiKey === API_VERSIONS) {
      return encodeResponse(API_VERSIONS, 0, correlationId, {
        ...apiVersionsBody(),
        errorCode: KafkaErrorCode.unsupportedVersion,
      });
    }
    const schema = API_SCHEMAS.get(entry.apiKey)!;
    if (version >= schema.minVersion && version <= schema.maxVersion) {
      const answer = this.errorResponse(entry, version, correlationId, KafkaErrorCode.unsupportedVersion);
      if (answer !== null) {
        this.logger.info({ api: entry.name, version }, 'unsupported API version');
        return answer;
      }
    }
    this.drop('unsupported_version', 'unsupported API version', { api: entry.name, version });
    return null;
  }

  private async handleRawSasl(frame: Buffer): Promise<Buffer | null> {
    try {
      const reply = await this.state.rawSasl!(frame);
      if (reply === null) return null;
      const out = Buffer.allocUnsafe(4 + reply.length);
      out.writeInt32BE(reply.length, 0);
      reply.copy(out, 4);
      return out;
    } catch (error) {
      this.drop('sasl', 'SASL exchange failed', {
        err: error instanceof ProtocolError ? error.message : error,
      });
      return null;
    }
  }
}
