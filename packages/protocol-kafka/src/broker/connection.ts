import type { ConnectionInfo, Logger } from '@robustmq/core';
import type { Duplex } from 'node:stream';
import { decodeRequestHeader, encodeResponse, encodeResponseChunks } from '../codec/frame.js';
import { API_SCHEMAS } from '../codec/messages/index.js';
import type { RequestHeader } from '../codec/messages/request-header.js';
import { ProtocolError, Reader } from '../codec/protocol.js';
import { KafkaErrorCode } from '../codec/error-codes.js';
import type { Broker } from './broker.js';
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

  constructor(
    private readonly broker: Broker,
    private readonly socket: Duplex,
    info: ConnectionInfo,
  ) {
    this.listener = info.listener;
    this.state = {
      id: nextConnectionId++,
      listener: info.listener,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
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
    const local = socket as Duplex & {
      localAddress?: string;
      localPort?: number;
      setNoDelay?: (on: boolean) => void;
    };
    broker.noteListener(info.listener, local.localAddress, local.localPort);
    local.setNoDelay?.(true);
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
      const first = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const size = first.readInt32BE(0);
      if (size < 0 || size > this.broker.settings.maxFrameSize) {
        this.drop('frame_size', 'request frame size out of bounds', {
          size,
          max: this.broker.settings.maxFrameSize,
        });
        return;
      }
      if (this.buffered < 4 + size) break;
      const all = this.chunks.length === 1 ? this.chunks[0]! : this.flatten();
      const frame = all.subarray(4, 4 + size);
      const rest = all.subarray(4 + size);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.buffered = rest.length;
      this.queue.push(frame);
      this.queuedBytes += frame.length;
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) this.socket.pause();
    if (!this.processing) void this.processQueue();
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
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
        const handled = this.handleFrame(frame, produce ? queued : undefined);
        const answered = this.answerInOrder(handled, frame.length);
        if (produce) await Promise.race([admitted, handled]);
        else await answered;
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.processing = false;
    }
  }

  /** Writes a request's response after every earlier request's response. */
  private answerInOrder(handled: Promise<Buffer | Buffer[] | null>, bytes: number): Promise<void> {
    const previous = this.answering[this.answering.length - 1];
    const answered = (async () => {
      const response = await handled;
      if (previous) await previous;
      if (response && !this.closed) await this.write(response);
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

  private async write(response: Buffer | Buffer[]): Promise<void> {
    let flowing: boolean;
    if (Array.isArray(response)) {
      this.broker.metrics.sent(
        this.listener,
        response.reduce((total, chunk) => total + chunk.length, 0),
      );
      this.socket.cork();
      flowing = response.map((chunk) => this.socket.write(chunk)).every(Boolean);
      this.socket.uncork();
    } else {
      this.broker.metrics.sent(this.listener, response.length);
      flowing = this.socket.write(response);
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
  private async handleFrame(frame: Buffer, queued?: () => void): Promise<Buffer | Buffer[] | null> {
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
      this.broker.metrics.bad(this.listener, 'encode_error');
      this.logger.error({ err: error, api: entry.name, version }, 'cannot encode response');
      this.onClose();
      this.socket.destroy();
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
    const body = schema.response.defaults() as Record<string, unknown>;
    if (version >= schema.minVersion && version <= schema.maxVersion && 'errorCode' in body) {
      this.logger.info({ api: entry.name, version }, 'unsupported API version');
      return encodeResponse(entry.apiKey, version, correlationId, {
        ...body,
        errorCode: KafkaErrorCode.unsupportedVersion,
      });
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
