import type { MetaStore, MetaWatch } from './meta.js';
import type { TopicCatalog } from './topic-catalog.js';
import { TOPICS_PREFIX, type Topic } from './topics.js';

/**
 * What a broker derives from each topic's catalog entry (a produce policy, the codec to store
 * with), read once per topic and read again after the topic changes, so a hot path finds it
 * without a meta lookup.
 */
export class TopicViews<T> {
  private readonly known = new Map<string, T>();
  /** Topic changes seen so far: a view read while one came in may be stale, so it is not kept. */
  private changes = 0;
  private readonly watch: MetaWatch;

  /** `view` derives the value from a topic; `missing` is the value for a topic that does not exist. */
  constructor(
    meta: Pick<MetaStore, 'watch'>,
    private readonly catalog: Pick<TopicCatalog, 'get'>,
    private readonly view: (topic: Topic) => T,
    private readonly missing: T,
  ) {
    this.watch = meta.watch(TOPICS_PREFIX, (event) => {
      this.changes++;
      const key = event.type === 'put' ? event.entry.key : event.key;
      this.known.delete(key.slice(TOPICS_PREFIX.length));
    });
  }

  /** The value for the topic named `name`, as its catalog entry now stands. */
  async of(name: string): Promise<T> {
    const known = this.known.get(name);
    if (known !== undefined) return known;
    const changes = this.changes;
    const found = await this.catalog.get(name);
    if (found === null) return this.missing;
    const value = this.view(found);
    if (this.changes === changes) this.known.set(name, value);
    return value;
  }

  stop(): void {
    this.watch.close();
  }
}
