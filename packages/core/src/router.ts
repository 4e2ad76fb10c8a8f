import type { Message } from './records.js';

/** Where a message entered the node, so a protocol can skip its own (MQTT no-local) or map back. */
export interface MessageOrigin {
  protocol: string;
  clientId?: string;
}

export type MessageHandler = (message: Message, origin: MessageOrigin) => void;

export interface RouterSubscription {
  readonly filter: string;
  unsubscribe(): void;
}

/**
 * Live routing in the unified namespace. Filters use MQTT syntax over `/`-separated levels: `+`
 * matches one level, a final `#` any number (including none), and a topic whose first level
 * starts with `$` is not matched by a wildcard in that position.
 *
 * Delivery is synchronous and in publish order per topic; a handler must not block. A handler that
 * throws is logged and does not affect other subscribers.
 */
export interface Router {
  /** Delivers `message` to every matching subscription; returns how many received it. */
  publish(message: Message, origin: MessageOrigin): number;
  subscribe(filter: string, handler: MessageHandler): RouterSubscription;
  /**
   * How many subscriptions the router holds, where it can tell: a protocol that knows how many are
   * its own may then skip publishing what nobody else would receive.
   */
  readonly size?: number;
}
