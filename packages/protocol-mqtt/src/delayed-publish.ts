import { randomUUID } from 'node:crypto';
import type { Logger, MetaStore } from '@robustmq/core';
import type { Publication } from './publication.js';
import { loadMessage, storeMessage, type StoredMessage } from './stored-message.js';
import { listAll } from './meta-listing.js';
import { LongTimer } from './timers.js';
import { topicNameProblem } from './topic-names.js';

/** Meta store prefix of delayed messages waiting for their time. */
const DELAYED_PREFIX = '/mqtt/delayed/';
const DELAYED = '$delayed/';

interface StoredDelayed {
  dueAt: number;
  message: StoredMessage;
  /** The broker holding it, in a cluster of brokers on one storage. */
  node?: number;
}

/**
 * Reads `$delayed/{seconds}/{topic}`: null when `topic` is not a delayed publish, why it is
 * invalid, or the delay and the topic to publish to.
 */
export function parseDelayedTopic(
  topic: string,
  maxSeconds: number,
  maxLevels: number,
): { seconds: number; topic: string } | string | null {
  if (!topic.startsWith(DELAYED)) return null;
  const slash = topic.indexOf('/', DELAYED.length);
  const digits = topic.slice(DELAYED.length, slash < 0 ? topic.length : slash);
  if (slash < 0 || !/^\d{1,10}$/.test(digits)) return 'a delayed publish needs $delayed/{seconds}/{topic}';
  const seconds = Number(digits);
  if (seconds > maxSeconds) return `a delayed publish may wait at most ${maxSeconds} seconds`;
  const target = topic.slice(slash + 1);
  const problem = topicNameProblem(target, maxLevels);
  if (problem) return problem;
  if (target.startsWith(DELAYED)) return 'a delayed publish cannot target $delayed/';
  return { seconds, topic: target };
}

/**
 * Messages published to `$delayed/{seconds}/{topic}`, held until their time. Each is stored in
 * the meta store before it is acknowledged and deleted once published, so it survives a restart
 * (one due while the node was down goes out at start); a crash between publishing and deleting
 * publishes it once more after the restart. In a cluster, each is held by the broker it was
 * published on, and taken over by another when that broker is gone.
 */
export class DelayedPublications {
  private readonly timers = new Map<string, LongTimer>();
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    private readonly meta: MetaStore,
    private readonly logger: Logger,
    private readonly publish: (publication: Publication) => Promise<void> | null,
    /** This broker's id in a cluster of brokers on one storage; null when it serves alone. */
    private readonly nodeId: number | null = null,
  ) {}

  get size(): number {
    return this.timers.size;
  }

  /** Stores `publication` to be published at `dueAt` (ms since the epoch); resolves once durable. */
  async schedule(publication: Publication, dueAt: number): Promise<void> {
    const key = `${DELAYED_PREFIX}${String(dueAt).padStart(15, '0')}-${randomUUID()}`;
    const value: StoredDelayed = {
      dueAt,
      message: storeMessage(publication),
      ...(this.nodeId === null ? {} : { node: this.nodeId }),
    };
    await this.track(this.meta.put(key, Buffer.from(JSON.stringify(value))));
    this.arm(key, publication, dueAt);
  }

  /** Arms the messages stored by the previous run (in a cluster, those this broker held). */
  async recover(): Promise<void> {
    for (const { key, stored } of await this.stored()) {
      if (this.nodeId === null || stored.node === undefined || stored.node === this.nodeId) {
        this.arm(key, loadMessage(stored.message), stored.dueAt);
      }
    }
  }

  /**
   * Takes over the messages held by brokers that are gone, those `wanted` picks (by the broker
   * that held one and its key): each is marked as held here (compare-and-set, so only one broker
   * takes it) and armed.
   */
  async adopt(wanted: (node: number, key: string) => boolean): Promise<void> {
    if (this.nodeId === null) return;
    for (const { key, stored, revision } of await this.stored()) {
      if (stored.node === undefined || stored.node === this.nodeId || !wanted(stored.node, key)) continue;
      const value: StoredDelayed = { ...stored, node: this.nodeId };
      try {
        await this.track(this.meta.put(key, Buffer.from(JSON.stringify(value)), { ifRevision: revision }));
      } catch (error) {
        this.logger.warn({ err: error, key }, 'delayed message of a broker that left not taken over');
        continue;
      }
      this.arm(key, loadMessage(stored.message), stored.dueAt);
    }
  }

  private async stored(): Promise<Array<{ key: string; stored: StoredDelayed; revision: number }>> {
    return (await listAll(this.meta, DELAYED_PREFIX)).map((entry) => ({
      key: entry.key,
      stored: JSON.parse(Buffer.from(entry.value).toString('utf8')) as StoredDelayed,
      revision: entry.modRevision,
    }));
  }

  private arm(key: string, publication: Publication, dueAt: number): void {
    const timer = new LongTimer(Math.max(0, dueAt - Date.now()), () => {
      this.timers.delete(key);
      const published = this.publish(publication) ?? Promise.resolve();
      const removed = published.then(() => this.meta.delete(key));
      void this.track(removed).catch((error: unknown) => {
        this.logger.error({ err: error, topic: publication.topic }, 'delayed publish failed');
      });
    });
    this.timers.set(key, timer);
  }

  private track<T>(write: Promise<T>): Promise<T> {
    this.writes.add(write);
    const forget = () => this.writes.delete(write);
    write.then(forget, forget);
    return write;
  }

  /** Stops the timers; what is stored stays for the next start. */
  stop(): void {
    for (const timer of this.timers.values()) timer.cancel();
    this.timers.clear();
  }

  /** Resolves once the writes under way are done. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.writes]);
  }
}
