import type { RobustMQError } from '@robustmq/core';
import { frameBody, type ClientRequest } from './client-request.js';
import { fromErrorBody } from './errors.js';
import { FrameKind, ProtocolError, type EncodedFrame, type Frame } from './frame.js';

/**
 * The items of a server-to-client stream, in order. Iterate it once with `for await`; leaving the
 * loop early (break, throw) cancels the stream on the server. The server sends at most the
 * stream's window of items ahead of what the loop has taken, so a slow loop slows the server.
 */
export interface RpcStream<Item = unknown> extends AsyncIterable<Item> {
  /** Stops the stream: the server is told to cancel and the iteration ends. */
  cancel(): void;
}

/** What a stream needs from its client. */
export interface StreamHost {
  /** Grants the server `count` more items, if the stream is still open on the wire. */
  grant(stream: ClientStream, count: number): void;
  /** Drops the stream from the client and tells the server to cancel it if it was sent. */
  abandon(stream: ClientStream): void;
}

export class ClientStream<Item = unknown> implements ClientRequest, RpcStream<Item>, AsyncIterator<Item> {
  id = 0;
  private readonly items: Item[] = [];
  private done = false;
  private error: RobustMQError | undefined;
  private waiter: (() => void) | undefined;
  private takenSinceGrant = 0;

  constructor(
    readonly method: string,
    readonly frame: EncodedFrame,
    readonly deadlineAt: number | undefined,
    /** Items the server may send ahead of the consumer. */
    readonly window: number,
    private readonly host: StreamHost,
    private readonly onSettled: () => void,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<Item> {
    return this;
  }

  onFrame(frame: Frame): boolean {
    switch (frame.kind) {
      case FrameKind.StreamItem: {
        if (this.items.length >= this.window) {
          throw new ProtocolError(`stream ${frame.callId} sent more items than it had credit for`);
        }
        let item: Item;
        try {
          item = frameBody(frame) as Item;
        } catch (error) {
          this.fail(error as RobustMQError);
          this.host.abandon(this);
          return false;
        }
        this.items.push(item);
        this.wake();
        return false;
      }
      case FrameKind.StreamEnd:
        this.finish(undefined);
        return true;
      case FrameKind.Error: {
        let error: RobustMQError;
        try {
          error = fromErrorBody(frameBody(frame));
        } catch (unreadable) {
          error = unreadable as RobustMQError;
        }
        this.finish(error);
        return true;
      }
      default:
        throw new ProtocolError(`frame of kind ${frame.kind} for stream ${frame.callId}`);
    }
  }

  fail(error: RobustMQError): void {
    this.finish(error);
  }

  async next(): Promise<IteratorResult<Item>> {
    for (;;) {
      if (this.items.length > 0) {
        const value = this.items.shift() as Item;
        this.takenSinceGrant++;
        // Grant in batches of half a window: fewer frames, and the server never starves.
        if (!this.done && this.takenSinceGrant >= Math.max(1, Math.floor(this.window / 2))) {
          this.host.grant(this, this.takenSinceGrant);
          this.takenSinceGrant = 0;
        }
        return { value, done: false };
      }
      if (this.error) {
        const error = this.error;
        this.error = undefined;
        throw error;
      }
      if (this.done) return { value: undefined, done: true };
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  return(): Promise<IteratorResult<Item>> {
    this.cancel();
    return Promise.resolve({ value: undefined, done: true });
  }

  cancel(): void {
    if (!this.done) this.host.abandon(this);
    this.items.length = 0;
    this.error = undefined;
    this.finish(undefined);
  }

  private finish(error: RobustMQError | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.onSettled();
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
