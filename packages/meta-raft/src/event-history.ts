import type { MetaEvent } from '@robustmq/core';

/**
 * The most recent events, for watches that resume `afterRevision`. It holds every event with a
 * revision above {@link EventHistory.compactedRevision}; older ones were dropped, whole revisions
 * at a time, once more than `limit` events were held.
 */
export class EventHistory {
  private events: MetaEvent[] = [];
  private head = 0;
  private compacted: number;

  constructor(
    private readonly limit: number,
    compactedRevision = 0,
  ) {
    this.compacted = compactedRevision;
  }

  /** Events above this revision are all held; a watch asking for less has lost history. */
  get compactedRevision(): number {
    return this.compacted;
  }

  get size(): number {
    return this.events.length - this.head;
  }

  /** Appends the events of one revision, then drops the oldest revisions beyond the limit. */
  append(events: readonly MetaEvent[]): void {
    for (const event of events) this.events.push(event);
    while (this.size > this.limit) {
      const oldest = this.events[this.head]!.revision;
      while (this.head < this.events.length && this.events[this.head]!.revision === oldest) this.head++;
      this.compacted = oldest;
    }
    // Reclaim the dropped prefix now and then rather than shifting on every drop.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /** Events with a revision above `revision` whose key starts with `prefix`, or null if compacted. */
  after(revision: number, prefix: string): MetaEvent[] | null {
    if (revision < this.compacted) return null;
    let low = this.head;
    let high = this.events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.events[middle]!.revision <= revision) low = middle + 1;
      else high = middle;
    }
    const found: MetaEvent[] = [];
    for (let i = low; i < this.events.length; i++) {
      const event = this.events[i]!;
      if (eventKey(event).startsWith(prefix)) found.push(event);
    }
    return found;
  }

  /** Forgets everything: history now starts after `revision` (a restored snapshot). */
  reset(revision: number): void {
    this.events = [];
    this.head = 0;
    this.compacted = revision;
  }
}

export function eventKey(event: MetaEvent): string {
  return event.type === 'put' ? event.entry.key : event.key;
}
