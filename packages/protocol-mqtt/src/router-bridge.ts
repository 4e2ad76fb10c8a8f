import type { Logger, Message, MessageOrigin, Router, RouterSubscription } from '@robustmq/core';
import type { Publication } from './publication.js';

/**
 * The MQTT plugin's link to the node's router: every MQTT message is published there so other
 * protocols see it, and messages other protocols publish come back to MQTT subscribers.
 *
 * One router subscription to `#` brings in everything except topics starting with `$`, which a
 * wildcard does not match; for those, one `<$level>/#` subscription per first level that MQTT
 * clients subscribe to. No topic can match two of these, so nothing arrives twice.
 */
export class RouterBridge {
  private readonly dollarLevels = new Map<string, { count: number; subscription: RouterSubscription }>();
  private all: RouterSubscription | null = null;

  constructor(
    private readonly router: Router,
    private readonly onForeign: (message: Message) => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.all = this.router.subscribe('#', this.receive);
  }

  stop(): void {
    this.all?.unsubscribe();
    this.all = null;
    for (const { subscription } of this.dollarLevels.values()) subscription.unsubscribe();
    this.dollarLevels.clear();
  }

  /**
   * Hands an MQTT message to the router; returns how many router subscribers got it. Skipped when
   * the router holds only this bridge's own subscriptions, as with MQTT alone on a node: they
   * would only hand it back to MQTT, which ignores its own.
   */
  publish(publication: Publication, origin: MessageOrigin): number {
    const size = this.router.size;
    if (size !== undefined && size <= this.dollarLevels.size + (this.all === null ? 0 : 1)) return 0;
    try {
      return this.router.publish(publication.toMessage(), origin);
    } catch (error) {
      this.logger.error({ err: error, topic: publication.topic }, 'router refused an MQTT message');
      return 0;
    }
  }

  /** An MQTT client subscribed to `filter` (first time for this client). */
  filterAdded(filter: string): void {
    const level = dollarLevel(filter);
    if (level === null) return;
    const entry = this.dollarLevels.get(level);
    if (entry) entry.count++;
    else
      this.dollarLevels.set(level, {
        count: 1,
        subscription: this.router.subscribe(`${level}/#`, this.receive),
      });
  }

  filterRemoved(filter: string): void {
    const level = dollarLevel(filter);
    if (level === null) return;
    const entry = this.dollarLevels.get(level);
    if (!entry) return;
    if (--entry.count === 0) {
      entry.subscription.unsubscribe();
      this.dollarLevels.delete(level);
    }
  }

  private readonly receive = (message: Message, origin: MessageOrigin): void => {
    if (origin.protocol !== 'mqtt') this.onForeign(message);
  };
}

function dollarLevel(filter: string): string | null {
  if (filter.charCodeAt(0) !== 0x24) return null;
  const cut = filter.indexOf('/');
  return cut < 0 ? filter : filter.slice(0, cut);
}
