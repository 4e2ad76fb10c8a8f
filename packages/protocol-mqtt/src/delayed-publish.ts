import { randomUUID } from 'node:crypto';
import type { Logger, MetaStore } from '@robustmq/core';
import type { Publication } from './publication.js';
import { loadMessage, storeMessage, type StoredMessage } from './stored-message.js';
import { LongTimer } from './timers.js';
import { topicNameProblem } from './topic-names.js';

/** Meta store prefix of delayed messages waiting for their time. */
const DELAYED_PREFIX = '/mqtt/delayed/';
const DELAYED = '$delayed/';

interface StoredDelayed {
  dueAt: number;
  message: StoredMessage;
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
 * publishes it once more after the restart.
 */
export class DelayedPublications {
  private readonly timers = new Map<string, LongTimer>();
  private readonly writes = new Set<Promise<unknown>>();

  constructor(
    private readonly meta: MetaStore,
    private readonly logger: Logger,
    private readonly publish: (publication: Publication) => Promise<void> | null,
  ) {}

  get size(): number {
    return this.timers.size;
  }

  /** Stores `publication` to be published at `dueAt` (ms since the epoch); resolves once durable. */
  async schedule(publication: Publication, dueAt: number): Promise<void> {
    const key = `${DELAYED_PREFIX}${String(dueAt).padStart(15, '0')}-${randomUUID()}`;
    const value: StoredDelayed = { dueAt, message: storeMessage(publication) };
    await this.track(this.meta.put(key, Buffer.from(JSON.stringify(value))));
    this.arm(key, publication, dueAt);
  }

  /** Arms the messages stored by the previous run. */
  async recover(): Promise<void> {
    let startAfter: string | undefined;
    for (;;) {
      const page = await this.meta.list(DELAYED_PREFIX, {
        limit: 1000,
        ...(startAfter ? { startAfter } : {}),
      });
      for (const entry of page) {
        const stored = JSON.parse(Buffer.from(entry.value).toString('utf8')) as StoredDelayed;
        this.arm(entry.key, loadMessage(stored.message), stored.dueAt);
      }
      if (page.length < 1000) return;
      startAfter = page[page.length - 1]!.key;
    }
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
