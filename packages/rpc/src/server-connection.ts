import type { Socket } from 'node:net';
import { ErrorCode, RobustMQError, type Logger } from '@robustmq/core';
import { decodeBody } from './body.js';
import { FramedConnection } from './connection.js';
import { toErrorBody } from './errors.js';
import { encodeFrame, FrameFlag, FrameKind, ProtocolError, type Frame, type FrameFields } from './frame.js';
import type { CallContext, HandlerTable, StreamHandler, UnaryHandler } from './handlers.js';
import type { ServerMetrics } from './server-metrics.js';

export interface ServerConnectionOptions {
  handlers: HandlerTable;
  logger: Logger;
  metrics: ServerMetrics;
  maxFrameBytes: number;
  maxConcurrentCalls: number;
  maxStreams: number;
  onClose: (connection: ServerConnection) => void;
}

/** A call being served. */
interface ActiveCall {
  readonly id: number;
  readonly method: string;
  readonly controller: AbortController;
  /** A stream, counted against maxStreams while it is open on the wire. */
  readonly isStream: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Stream items the client has room for. */
  credit: number;
  /** Wakes a stream waiting for credit or for the socket. */
  wake: (() => void) | undefined;
}

/**
 * The server's side of one client connection. It bounds what the client can make it hold: at most
 * `maxConcurrentCalls` unary handlers run at once, and while that many run, or while the socket's
 * write buffer is full because the client is not reading, it reads no further frames, so the
 * client's own writes back up instead of our memory.
 */
export class ServerConnection {
  private readonly conn: FramedConnection;
  private readonly calls = new Map<number, ActiveCall>();
  private readonly logger: Logger;
  private runningUnary = 0;
  private openStreams = 0;
  private waitingForDrain = false;

  constructor(
    socket: Socket,
    private readonly options: ServerConnectionOptions,
  ) {
    socket.setKeepAlive(true, 30_000);
    this.logger = options.logger.child({
      peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
    });
    this.conn = new FramedConnection(socket, {
      maxFrameBytes: options.maxFrameBytes,
      logger: this.logger,
      onFrame: (frame) => this.onFrame(frame),
      onClose: (reason) => this.onClose(reason),
    });
  }

  get peer(): string {
    return this.conn.peer;
  }

  /** Bytes waiting in the socket's write buffer; bounded by the backpressure described above. */
  get bufferedWriteBytes(): number {
    return this.conn.bufferedWriteBytes;
  }

  close(): void {
    this.conn.close();
  }

  private onFrame(frame: Frame): void {
    switch (frame.kind) {
      case FrameKind.Request:
        this.startCall(frame);
        this.updateReading();
        return;
      case FrameKind.Cancel:
        this.cancel(frame.callId, new RobustMQError(ErrorCode.Closed, 'cancelled by the client'));
        return;
      case FrameKind.Credit: {
        const call = this.calls.get(frame.callId);
        if (call) {
          call.credit += frame.aux;
          call.wake?.();
        }
        return;
      }
      default:
        throw new ProtocolError(`a client may not send frames of kind ${frame.kind}`);
    }
  }

  private startCall(frame: Frame): void {
    const { callId: id, method } = frame;
    if (this.calls.has(id)) {
      throw new ProtocolError(`call id ${id} is already in use`);
    }
    const isStream = (frame.flags & FrameFlag.Stream) !== 0;
    const unary = isStream ? undefined : this.options.handlers.unary.get(method);
    const stream = isStream ? this.options.handlers.stream.get(method) : undefined;
    if (!unary && !stream) {
      const what = isStream ? 'stream' : 'method';
      this.refuse(id, '(unknown)', new RobustMQError(ErrorCode.NotFound, `unknown RPC ${what} "${method}"`));
      return;
    }
    if (stream && this.openStreams >= this.options.maxStreams) {
      const error = new RobustMQError(ErrorCode.Unavailable, `too many open streams on this connection`);
      this.refuse(id, method, error);
      return;
    }
    let body: unknown;
    try {
      body = frame.head === undefined ? undefined : decodeBody(frame.head, frame.attachments);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.refuse(
        id,
        method,
        new RobustMQError(ErrorCode.InvalidArgument, `unreadable request body: ${reason}`),
      );
      return;
    }
    const call: ActiveCall = {
      id,
      method,
      controller: new AbortController(),
      isStream: stream !== undefined,
      timer: undefined,
      credit: 0,
      wake: undefined,
    };
    if (frame.aux > 0) {
      call.timer = setTimeout(
        () => this.cancel(id, new RobustMQError(ErrorCode.Timeout, 'the call passed its deadline')),
        frame.aux,
      );
    }
    this.calls.set(id, call);
    const ctx: CallContext = {
      method,
      signal: call.controller.signal,
      deadline: frame.aux > 0 ? Date.now() + frame.aux : undefined,
      peer: this.conn.peer,
      logger: this.logger,
    };
    if (unary) {
      this.runningUnary++;
      void this.runUnary(call, unary, body, ctx);
    } else if (stream) {
      this.openStreams++;
      void this.runStream(call, stream, body, ctx);
    }
  }

  private async runUnary(
    call: ActiveCall,
    handler: UnaryHandler,
    body: unknown,
    ctx: CallContext,
  ): Promise<void> {
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, result: await handler(body, ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }
    this.runningUnary--;
    // A call cancelled meanwhile gets no answer: the client has stopped waiting for it.
    if (this.finish(call)) {
      const reply: FrameFields = outcome.ok
        ? {
            kind: FrameKind.Response,
            callId: call.id,
            body: outcome.result,
            hasBody: outcome.result !== undefined,
          }
        : this.errorReply(call, outcome.error);
      this.reply(call, reply);
    }
    this.updateReading();
  }

  private async runStream(
    call: ActiveCall,
    handler: StreamHandler,
    body: unknown,
    ctx: CallContext,
  ): Promise<void> {
    let iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined;
    try {
      const iterable = handler(body, ctx);
      iterator =
        Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
      for (;;) {
        await this.readyForItem(call);
        if (call.controller.signal.aborted || this.conn.isClosed) break;
        const next = await iterator.next();
        if (call.controller.signal.aborted) break;
        if (next.done) {
          iterator = undefined;
          if (this.finish(call)) {
            this.reply(call, { kind: FrameKind.StreamEnd, callId: call.id });
            this.options.metrics.calls.inc({ method: call.method, outcome: 'OK' });
          }
          break;
        }
        call.credit--;
        const frame = encodeFrame(
          {
            kind: FrameKind.StreamItem,
            callId: call.id,
            body: next.value,
            hasBody: next.value !== undefined,
          },
          this.options.maxFrameBytes,
        );
        this.conn.send(frame);
        this.updateReading();
      }
    } catch (error) {
      if (this.finish(call)) this.reply(call, this.errorReply(call, error));
    } finally {
      this.finish(call);
      // Let a generator run its finally blocks when the client went away mid-stream.
      if (iterator?.return) {
        try {
          await iterator.return();
        } catch (error) {
          this.logger.debug({ method: call.method, err: error }, 'rpc stream cleanup failed');
        }
      }
    }
  }

  /** Waits until the client has credit for one more item and the socket can take it. */
  private async readyForItem(call: ActiveCall): Promise<void> {
    while (
      !call.controller.signal.aborted &&
      !this.conn.isClosed &&
      (call.credit <= 0 || !this.conn.writable)
    ) {
      await new Promise<void>((resolve) => {
        call.wake = resolve;
        if (!this.conn.writable) void this.conn.whenWritable().then(resolve);
      });
      call.wake = undefined;
    }
  }

  private errorReply(call: ActiveCall, error: unknown): FrameFields {
    if (!(error instanceof RobustMQError)) {
      this.logger.error({ method: call.method, err: error }, 'rpc handler failed');
    }
    const body = toErrorBody(error);
    this.options.metrics.calls.inc({ method: call.method, outcome: body.code });
    return { kind: FrameKind.Error, callId: call.id, body };
  }

  /** Sends a reply; one too large to send becomes a TOO_LARGE error. */
  private reply(call: ActiveCall, fields: FrameFields): void {
    let frame;
    try {
      frame = encodeFrame(fields, this.options.maxFrameBytes);
    } catch (error) {
      frame = encodeFrame(this.errorReply(call, error), this.options.maxFrameBytes);
    }
    if (fields.kind === FrameKind.Response)
      this.options.metrics.calls.inc({ method: call.method, outcome: 'OK' });
    this.conn.send(frame);
  }

  /** Answers a request with an error without running anything. */
  private refuse(id: number, method: string, error: RobustMQError): void {
    this.options.metrics.calls.inc({ method, outcome: error.code });
    this.conn.send(
      encodeFrame(
        { kind: FrameKind.Error, callId: id, body: toErrorBody(error) },
        this.options.maxFrameBytes,
      ),
    );
  }

  /** Forgets a call; true if it was still active (neither cancelled nor finished before). */
  private finish(call: ActiveCall): boolean {
    if (this.calls.get(call.id) !== call) return false;
    this.calls.delete(call.id);
    clearTimeout(call.timer);
    // A cancelled stream frees its slot at once, as the client sees it, even if its generator is
    // still winding down.
    if (call.isStream) this.openStreams--;
    return true;
  }

  private cancel(id: number, reason: RobustMQError): void {
    const call = this.calls.get(id);
    if (!call) return;
    this.finish(call);
    call.controller.abort(reason);
    call.wake?.();
  }

  /** Stops reading while the connection is at its limits, resumes once it is not. */
  private updateReading(): void {
    if (this.conn.isClosed) return;
    const writable = this.conn.writable;
    if (writable && this.runningUnary < this.options.maxConcurrentCalls) {
      this.conn.resumeReading();
      return;
    }
    this.conn.pauseReading();
    if (!writable && !this.waitingForDrain) {
      this.waitingForDrain = true;
      void this.conn.whenWritable().then(() => {
        this.waitingForDrain = false;
        this.updateReading();
      });
    }
  }

  private onClose(reason: Error | undefined): void {
    if (reason instanceof ProtocolError) this.options.metrics.protocolErrors.inc();
    else if (reason) this.logger.debug({ err: reason }, 'rpc connection closed by an error');
    const gone = new RobustMQError(ErrorCode.Unavailable, 'the client connection closed');
    for (const id of [...this.calls.keys()]) this.cancel(id, gone);
    this.options.onClose(this);
  }
}
