import type { Logger, MetaEvent, MetaWatch } from '@robustmq/core';
import { eventKey } from './event-history.js';

type Listener = (event: MetaEvent) => void;

/**
 * The live watches of a store. Each watch has its own queue drained on a microtask, so listeners
 * never run inside the write or `watch()` call, see events in revision order, and a listener that
 * throws is logged and skipped without touching the store or other watches.
 */
export class WatchRegistry {
  private readonly watches = new Set<Watch>();

  constructor(private readonly logger: Logger) {}

  /** Starts a watch that first receives `backlog` (events already committed), then live ones. */
  add(prefix: string, listener: Listener, backlog: readonly MetaEvent[]): MetaWatch {
    const watch = new Watch(prefix, listener, this.logger, (closed) => this.watches.delete(closed));
    this.watches.add(watch);
    for (const event of backlog) watch.push(shareable(event));
    return watch;
  }

  /** Queues the events of committed writes to every watch whose prefix they fall under. */
  publish(events: readonly MetaEvent[]): void {
    if (this.watches.size === 0) return;
    for (const event of events) {
      const key = eventKey(event);
      let copy: MetaEvent | undefined;
      for (const watch of this.watches) {
        if (key.startsWith(watch.prefix)) watch.push((copy ??= shareable(event)));
      }
    }
  }

  closeAll(): void {
    for (const watch of [...this.watches]) watch.close();
  }
}

/** Listeners get a copy of the value, so none of them can change the store's state. */
function shareable(event: MetaEvent): MetaEvent {
  return event.type === 'put'
    ? { ...event, entry: { ...event.entry, value: event.entry.value.slice() } }
    : { ...event };
}

class Watch implements MetaWatch {
  private queue: MetaEvent[] = [];
  private scheduled = false;
  private closed = false;

  constructor(
    readonly prefix: string,
    private readonly listener: Listener,
    private readonly logger: Logger,
    private readonly onClose: (watch: Watch) => void,
  ) {}

  push(event: MetaEvent): void {
    if (this.closed) return;
    this.queue.push(event);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.drain());
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.onClose(this);
  }

  private drain(): void {
    this.scheduled = false;
    const events = this.queue;
    this.queue = [];
    for (const event of events) {
      if (this.closed) return;
      try {
        this.listener(event);
      } catch (error) {
        this.logger.warn(
          { err: error, prefix: this.prefix, revision: event.revision },
          'meta watch listener threw',
        );
      }
    }
  }
}
