import { describe, expect, it } from 'vitest';
import { encodeTopic, topicKey, TopicViews, type MetaEvent, type Topic } from '../src/index.js';
import { topicWith } from './helpers/topic.js';

const topic = (name: string, configs: Record<string, string> = {}): Topic => topicWith(configs, name);

/** A catalog whose reads are counted and can be held, and the topic watch the views listen on. */
function fakeCatalog(topics: Map<string, Topic>) {
  let listener: ((event: MetaEvent) => void) | null = null;
  let held: Promise<void> | null = null;
  const catalog = {
    reads: 0,
    async get(name: string) {
      catalog.reads++;
      const found = topics.get(name) ?? null;
      if (held) await held;
      return found;
    },
  };
  const meta = {
    watch(_prefix: string, onEvent: (event: MetaEvent) => void) {
      listener = onEvent;
      return { close: () => (listener = null) };
    },
  };
  const changed = (t: Topic) => {
    topics.set(t.name, t);
    const entry = {
      key: topicKey(t.name),
      value: encodeTopic(t),
      createRevision: 1,
      modRevision: 1,
      version: 1,
    };
    listener?.({ type: 'put', entry, revision: 1 });
  };
  const hold = () => {
    let release!: () => void;
    held = new Promise((resolve) => (release = resolve));
    return () => {
      held = null;
      release();
    };
  };
  return { catalog, meta, changed, hold, watching: () => listener !== null };
}

const codec = (t: Topic) => t.configs['compression.type'] ?? 'producer';

describe('TopicViews', () => {
  it('reads a topic once, and again after it changes', async () => {
    const { catalog, meta, changed } = fakeCatalog(new Map([['t', topic('t')]]));
    const views = new TopicViews(meta, catalog, codec, 'missing');
    expect(await views.of('t')).toBe('producer');
    expect(await views.of('t')).toBe('producer');
    expect(catalog.reads).toBe(1);
    changed(topic('t', { 'compression.type': 'zstd' }));
    expect(await views.of('t')).toBe('zstd');
    expect(catalog.reads).toBe(2);
  });

  it('gives the missing value for a topic that does not exist, and looks again next time', async () => {
    const { catalog, meta, changed } = fakeCatalog(new Map());
    const views = new TopicViews(meta, catalog, codec, 'missing');
    expect(await views.of('later')).toBe('missing');
    changed(topic('later', { 'compression.type': 'lz4' }));
    expect(await views.of('later')).toBe('lz4');
  });

  it('does not keep a view read while the topic changed', async () => {
    const { catalog, meta, changed, hold } = fakeCatalog(new Map([['t', topic('t')]]));
    const views = new TopicViews(meta, catalog, codec, 'missing');
    const release = hold();
    const stale = views.of('t');
    changed(topic('t', { 'compression.type': 'gzip' }));
    release();
    expect(await stale).toBe('producer');
    expect(await views.of('t')).toBe('gzip');
  });

  it('stops watching when stopped', () => {
    const { catalog, meta, watching } = fakeCatalog(new Map());
    const views = new TopicViews(meta, catalog, codec, 'missing');
    expect(watching()).toBe(true);
    views.stop();
    expect(watching()).toBe(false);
  });
});
