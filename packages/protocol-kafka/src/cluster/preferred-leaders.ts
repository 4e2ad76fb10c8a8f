import { setTimeout as delay } from 'node:timers/promises';
import { decodeTopic, TOPICS_PREFIX, type Logger, type MetaStore, type MetaWatch } from '@robustmq/core';

/** How long to wait before reading the catalog again after a failed read. */
const RETRY_MS = 1000;

type BrokerLists = readonly (readonly number[])[];

/**
 * The preferred leaders of every topic's partitions (its manual replica assignment), as the topic
 * catalog holds them: read once, then kept current by a watch, so that every broker answers "who
 * leads this partition" from the same data without a lookup per request. `changed` is called
 * once they have been read, and whenever a topic's preferred leaders come, change or go.
 */
export class PreferredLeaders {
  private readonly byTopic = new Map<string, BrokerLists>();
  /**
   * The catalog revision each topic was last seen at, deletions included, while the first read is
   * under way: the watch may deliver a change before the read that it follows, or after.
   */
  private seen: Map<string, number> | null = new Map();
  private watch: MetaWatch | null = null;
  private readonly abort = new AbortController();

  constructor(
    private readonly meta: MetaStore,
    private readonly changed: () => void,
    private readonly logger: Logger,
  ) {
    this.load().catch((error: unknown) =>
      this.logger.error({ err: error }, 'could not follow the preferred partition leaders'),
    );
  }

  /** True once the catalog has been read. */
  get loaded(): boolean {
    return this.seen === null;
  }

  /** The brokers preferred to lead a partition, most wanted first; none if it has no assignment. */
  of(topic: string, partition: number): readonly number[] {
    return this.byTopic.get(topic)?.[partition] ?? [];
  }

  stop(): void {
    this.abort.abort();
    this.watch?.close();
  }

  private async load(): Promise<void> {
    // Registered before the read, so no change falls between the two.
    this.watch = this.meta.watch(TOPICS_PREFIX, (event) => {
      const topic = (event.type === 'put' ? event.entry.key : event.key).slice(TOPICS_PREFIX.length);
      const value = event.type === 'put' ? event.entry.value : null;
      if (this.set(topic, value, event.revision) && this.loaded) this.changed();
    });
    while (!this.abort.signal.aborted) {
      try {
        for (const entry of await this.meta.list(TOPICS_PREFIX)) {
          this.set(entry.key.slice(TOPICS_PREFIX.length), entry.value, entry.modRevision);
        }
        this.seen = null;
        this.changed();
        return;
      } catch (error) {
        this.logger.warn({ err: error }, 'could not read the preferred partition leaders; retrying');
        await delay(RETRY_MS, undefined, { signal: this.abort.signal }).catch(() => undefined);
      }
    }
  }

  /** Applies a topic's catalog entry (null: deleted) seen at `revision`; true if its leaders changed. */
  private set(topic: string, value: Uint8Array | null, revision: number): boolean {
    if (this.seen) {
      if ((this.seen.get(topic) ?? -1) >= revision) return false;
      this.seen.set(topic, revision);
    }
    let leaders: BrokerLists | undefined;
    if (value !== null) {
      try {
        leaders = decodeTopic(value).preferredLeaders;
      } catch (error) {
        this.logger.warn({ err: error, topic }, 'unreadable topic catalog entry: no preferred leaders');
      }
    }
    const before = this.byTopic.get(topic);
    if (leaders === undefined || leaders.length === 0) {
      this.byTopic.delete(topic);
      return before !== undefined;
    }
    this.byTopic.set(topic, leaders);
    return JSON.stringify(before) !== JSON.stringify(leaders);
  }
}
