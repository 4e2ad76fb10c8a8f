import { createServer, type Server } from 'node:net';
import {
  ErrorCode,
  InProcessBrokers,
  RobustMQError,
  silentLogger,
  topicMatchesFilter,
  type Action,
  type BrokerCluster,
  type BrokerContext,
  type Counter,
  type Credentials,
  type Gauge,
  type Message,
  type MessageHandler,
  type MessageOrigin,
  type MetaEntry,
  type MetaEvent,
  type RecordCodec,
  type StorageEngine,
  type StoredMessage,
  type MetaStore,
  type Metrics,
  type Principal,
  type Router,
  type RouterSubscription,
  type ScramCredential,
  type ScramLogin,
  type ScramMechanism,
  type TopicCatalog,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { MqttPlugin } from '../../src/plugin.js';
import { parseSettings } from '../../src/config.js';
import { scramCredentialOf } from './scram-client.js';

/** A router with the contract's semantics, as simple as possible. */
export class ListRouter implements Router {
  readonly subscriptions = new Set<{ filter: string; handler: MessageHandler }>();

  get size(): number {
    return this.subscriptions.size;
  }

  publish(message: Message, origin: MessageOrigin): number {
    let reached = 0;
    for (const s of [...this.subscriptions]) {
      if (topicMatchesFilter(s.filter, message.topic)) {
        s.handler(message, origin);
        reached++;
      }
    }
    return reached;
  }

  subscribe(filter: string, handler: MessageHandler): RouterSubscription {
    const entry = { filter, handler };
    this.subscriptions.add(entry);
    return { filter, unsubscribe: () => this.subscriptions.delete(entry) };
  }
}

/** Counters and gauges kept as numbers by name and labels. */
export class TestMetrics implements Metrics {
  readonly values = new Map<string, number>();

  counter(options: { name: string }): Counter {
    return { inc: (labels, value = 1) => this.add(options.name, labels, value) };
  }

  gauge(options: { name: string }): Gauge {
    return {
      set: (labels, value) => this.values.set(key(options.name, labels), value),
      inc: (labels, value = 1) => this.add(options.name, labels, value),
      dec: (labels, value = 1) => this.add(options.name, labels, -value),
    };
  }

  histogram(): { observe: () => void } {
    return { observe: () => {} };
  }

  get(name: string, labels?: Record<string, string>): number {
    return this.values.get(key(name, labels)) ?? 0;
  }

  private add(name: string, labels: Readonly<Record<string, string | number>> | undefined, value: number) {
    const k = key(name, labels);
    this.values.set(k, (this.values.get(k) ?? 0) + value);
  }
}

const key = (name: string, labels?: Readonly<Record<string, string | number>>) =>
  labels ? `${name}${JSON.stringify(labels)}` : name;

/**
 * The MQTT plugin in this process, with a context we control: an authorizer that knows
 * alice/secret-pw (also as SCRAM credentials) and refuses topics under `secret/` (answering after a delay, as a remote one
 * would), a simple router, and metrics we can read.
 */
export async function startInProcess(
  settings: Record<string, unknown> = {},
  options: {
    storage?: StorageEngine;
    meta?: MetaStore;
    cluster?: BrokerCluster;
    records?: RecordCodec;
    topics?: TopicCatalog;
  } = {},
) {
  const router = new ListRouter();
  const metrics = new TestMetrics();
  const scram: Partial<Record<'sha256' | 'sha512', ScramCredential>> = {};
  const auth = {
    async authenticate(credentials: Credentials): Promise<Principal | null> {
      await new Promise((r) => setTimeout(r, 5));
      if (credentials.username === null) return { username: null, superuser: false };
      const ok =
        credentials.username === 'alice' &&
        Buffer.from(credentials.password ?? []).toString() === 'secret-pw';
      return ok ? { username: 'alice', superuser: false } : null;
    },
    async authorize(_principal: Principal, _action: Action, topic: string): Promise<boolean> {
      await new Promise((r) => setTimeout(r, 5));
      return !topic.startsWith('secret/');
    },
    async scramCredential(username: string, mechanism: ScramMechanism): Promise<ScramLogin | null> {
      await new Promise((r) => setTimeout(r, 5));
      if (username !== 'alice') return null;
      const digest = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512';
      scram[digest] ??= scramCredentialOf('secret-pw', digest);
      return { credential: scram[digest], principal: { username: 'alice', superuser: false } };
    },
  };
  const context: BrokerContext = {
    nodeId: options.cluster?.nodeId ?? 1,
    version: '0.0.0-test',
    router,
    storage: options.storage ?? new MemoryStorageEngine(),
    // The server's codec is the Kafka record batch (exercised in the root cross-protocol test);
    // here a JSON stand-in shows what the plugin hands it.
    records: options.records ?? jsonRecords,
    meta: options.meta ?? memoryMeta(),
    auth,
    metrics,
    logger: silentLogger,
    ...(options.cluster ? { cluster: options.cluster } : {}),
    ...(options.topics ? { topics: options.topics } : {}),
  };
  const plugin = new MqttPlugin(parseSettings({ port: 0, ...settings }));
  await plugin.start(context);
  const server: Server = createServer((socket) =>
    plugin.accept(socket, {
      listener: 'tcp',
      transport: 'tcp',
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    router,
    metrics,
    plugin,
    context,
    async stop() {
      server.close();
      await plugin.stop();
    },
  };
}

/**
 * A RecordCodec that keeps messages as JSON (a batch per call), so tests can read back exactly
 * what the plugin appended.
 */
export const jsonRecords: RecordCodec = {
  encode(messages) {
    const json = messages.map((m) => ({
      key: m.key === null ? null : Buffer.from(m.key).toString('base64'),
      payload: Buffer.from(m.payload).toString('base64'),
      headers: m.headers.map((h) => [h.key, Buffer.from(h.value).toString('base64')]),
      timestamp: m.timestamp,
    }));
    return Promise.resolve({
      recordCount: messages.length,
      maxTimestamp: Math.max(...messages.map((m) => m.timestamp)),
      data: Buffer.from(JSON.stringify(json)),
    });
  },
  decode(batch, topic) {
    const json = JSON.parse(Buffer.from(batch.data).toString()) as Array<{
      key: string | null;
      payload: string;
      headers: Array<[string, string]>;
      timestamp: number;
    }>;
    return Promise.resolve(
      json.map((r, i) => ({
        topic,
        key: r.key === null ? null : Buffer.from(r.key, 'base64'),
        payload: Buffer.from(r.payload, 'base64'),
        headers: r.headers.map(([key, value]) => ({ key, value: Buffer.from(value, 'base64') })),
        timestamp: r.timestamp,
        offset: batch.baseOffset + i,
      })),
    );
  },
};

/** The messages stored in a shard, decoded with {@link jsonRecords}. */
export async function storedMessages(storage: StorageEngine, shard: string): Promise<StoredMessage[]> {
  const { batches } = await storage.read(shard, 0, { maxBytes: 64 * 1024 * 1024 });
  const messages: StoredMessage[] = [];
  for (const batch of batches) messages.push(...(await jsonRecords.decode(batch, shard)));
  return messages;
}

/**
 * A MetaStore in a Map with compare-and-set and watches: enough for the MQTT broker and the topic
 * catalog (these tests restart nothing).
 */
export function memoryMeta(): MetaStore {
  const entries = new Map<string, MetaEntry>();
  const watchers = new Set<{ prefix: string; listener: (event: MetaEvent) => void }>();
  let revision = 0;
  const conflict = (key: string, ifRevision: number | undefined) =>
    ifRevision !== undefined && (entries.get(key)?.modRevision ?? 0) !== ifRevision
      ? new RobustMQError(ErrorCode.Conflict, `${key} changed`)
      : null;
  const notify = (key: string, event: MetaEvent) => {
    for (const w of watchers) if (key.startsWith(w.prefix)) w.listener(event);
  };
  const store: Partial<MetaStore> = {
    get: (key) => Promise.resolve(entries.get(key) ?? null),
    put(key, value, options) {
      const refused = conflict(key, options?.ifRevision);
      if (refused) return Promise.reject(refused);
      revision++;
      const old = entries.get(key);
      const entry = {
        key,
        value,
        createRevision: old?.createRevision ?? revision,
        modRevision: revision,
        version: (old?.version ?? 0) + 1,
      };
      entries.set(key, entry);
      notify(key, { type: 'put', entry, revision });
      return Promise.resolve(revision);
    },
    delete(key, options) {
      const refused = conflict(key, options?.ifRevision);
      if (refused) return Promise.reject(refused);
      if (!entries.delete(key)) return Promise.resolve(false);
      revision++;
      notify(key, { type: 'delete', key, revision });
      return Promise.resolve(true);
    },
    list: (prefix) =>
      Promise.resolve(
        [...entries.values()]
          .filter((e) => e.key.startsWith(prefix))
          .sort((a, b) => (a.key < b.key ? -1 : 1)),
      ),
    watch(prefix, listener) {
      const watcher = { prefix, listener };
      watchers.add(watcher);
      return { close: () => watchers.delete(watcher) };
    },
    revision: () => Promise.resolve(revision),
  };
  return store as MetaStore;
}

/**
 * Two MQTT brokers in this process (node ids 1 and 2) on one meta store and one storage, linked by
 * an in-process cluster; `wrap` may change a broker's view of it (calls that fail, say).
 */
export async function linkedBrokers(wrap: (member: BrokerCluster) => BrokerCluster = (member) => member) {
  const meta = memoryMeta();
  const storage = new MemoryStorageEngine();
  const links = new InProcessBrokers();
  const a = await startInProcess({}, { meta, storage, cluster: wrap(links.member(1)) });
  const b = await startInProcess({}, { meta, storage, cluster: wrap(links.member(2)) });
  // Each sees the other once the announcements have gone round.
  await new Promise((r) => setTimeout(r, 20));
  return { a, b, links, meta, storage };
}
