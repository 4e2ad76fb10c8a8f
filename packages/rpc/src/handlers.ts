import type { Logger } from '@robustmq/core';

/** What a handler learns about the call it serves. */
export interface CallContext {
  readonly method: string;
  /**
   * Aborted when the client cancels the call, its deadline passes, or the connection or the server
   * closes. The reason is a RobustMQError. Handlers doing long work should watch it.
   */
  readonly signal: AbortSignal;
  /** When the client stops waiting, in `Date.now()` milliseconds; undefined when it set no deadline. */
  readonly deadline: number | undefined;
  /** The client's address, `host:port`. */
  readonly peer: string;
  readonly logger: Logger;
}

/**
 * Serves one request/response method. The body is what the client passed to `call()`, decoded;
 * the returned value is the reply. A thrown RobustMQError reaches the caller with its code; any
 * other error reaches it as INTERNAL.
 */
export type UnaryHandler<Req = unknown, Res = unknown> = (body: Req, ctx: CallContext) => Res | Promise<Res>;

/**
 * Serves one server-to-client stream: each value the iterable yields is one item. The server pulls
 * the next item only when the client has credit for it and the socket can take it, so an async
 * generator runs no further ahead of the consumer than the stream's window.
 */
export type StreamHandler<Req = unknown, Item = unknown> = (
  body: Req,
  ctx: CallContext,
) => AsyncIterable<Item> | Iterable<Item>;

/** The methods a server serves. */
export interface HandlerTable {
  unary: Map<string, UnaryHandler>;
  stream: Map<string, StreamHandler>;
}
