// ReadIndex requests a leader holds until a majority confirms it still leads.
import type { NodeId } from './types.js';

export interface PendingRead {
  /** The commit index when the request arrived: the read point once confirmed. */
  readonly index: number;
  /** Who asked: the leader itself or a follower. */
  readonly from: NodeId;
  readonly context: string;
  readonly acks: Set<NodeId>;
}

/**
 * Requests in arrival order. A heartbeat round carries the newest request's context; when a
 * majority answers it, that request and every older one are confirmed (the leader still led when
 * each of them arrived).
 */
export class ReadIndexQueue {
  private readonly pending = new Map<string, PendingRead>();
  private queue: string[] = [];

  /** Adds a request; false if one with the same context is already waiting. */
  add(index: number, from: NodeId, context: string, self: NodeId): boolean {
    if (this.pending.has(context)) return false;
    this.pending.set(context, { index, from, context, acks: new Set([self]) });
    this.queue.push(context);
    return true;
  }

  /** Records that `from` answered the round for `context`; the acks so far, or undefined if unknown. */
  ack(context: string, from: NodeId): ReadonlySet<NodeId> | undefined {
    const read = this.pending.get(context);
    if (read === undefined) return undefined;
    read.acks.add(from);
    return read.acks;
  }

  /** Removes and returns the request for `context` and all older ones, oldest first. */
  release(context: string): PendingRead[] {
    const at = this.queue.indexOf(context);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1).map((ctx) => this.pending.get(ctx)!);
    this.queue = this.queue.slice(at + 1);
    for (const read of released) this.pending.delete(read.context);
    return released;
  }

  /** The newest request's context, for the next heartbeat round. */
  lastContext(): string | undefined {
    return this.queue[this.queue.length - 1];
  }

  get size(): number {
    return this.queue.length;
  }

  reset(): void {
    this.pending.clear();
    this.queue = [];
  }
}
