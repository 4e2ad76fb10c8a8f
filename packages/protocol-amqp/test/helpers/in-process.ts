import { createServer, type Server } from 'node:net';
import {
  ErrorCode,
  RobustMQError,
  silentLogger,
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
  type MetaStore,
  type Metrics,
  type Principal,
  type RecordBatch,
  type RecordCodec,
  type RecordCompression,
  type Router,
  type RouterSubscription,
  type StorageEngine,
  type StoredBatch,
  type StoredMessage,
  type TopicCatalog,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { parseSettings } from '../../src/config.js';
import { AmqpPlugin } from '../../src/plugin.js';

/** A record codec for tests: JSON, one batch per encode. The node's real one writes Kafka batches. */
export const jsonCodec: RecordCodec = {
  encode(messages: readonly Message[]): Promise<RecordBatch> {
    const rows = messages.map((m) => ({
      key: m.key ? Buffer.from(m.key).toString('base64') : null,
      payload: Buffer.from(m.payload).toString('base64'),
      headers: m.headers.map((h) => [h.key, Buffer.from(h.value).toString('base64')]),
      timestamp: m.timestamp,
    }));
    return Promise.resolve({
      recordCount: messages.length,
      maxTimestamp: Math.max(...messages.map((m) => m.timestamp)),
      data: Buffer.from(JSON.stringify(rows)),
    });
  },
  decode(batch: StoredBatch, topic: string): Promise<StoredMessage[]> {
    let rows: Array<{ key: string | null; payload: string; headers: [string, string][]; timestamp: number }>;
    try {
      rows = JSON.parse(Buffer.from(batch.data).toString()) as typeof rows;
    } catch (error) {
      // As the contract asks of every codec: bytes that do not decode are CORRUPT.
      return Promise.reject(
        new RobustMQError(ErrorCode.Corrupt, `batch at ${batch.baseOffset}`, { cause: error }),
      );
    }
    return Promise.resolve(
      rows.map((row, i) => ({
        topic,
        offset: batch.baseOffset + i,
        key: row.key === null ? null : Buffer.from(row.key, 'base64'),
        payload: Buffer.from(row.payload, 'base64'),
        headers: row.headers.map(([key, value]) => ({ key, value: Buffer.from(value, 'base64') })),
        timestamp: row.timestamp,
      })),
    );
  },
};

/** Records what reaches the router. */
export class RecordingRouter implements Router {
  readonly published: Array<{ message: Message; origin: MessageOrigin }> = [];

  publish(message: Message, origin: MessageOrigin): number {
    this.published.push({ message, origin });
    return 0;
  }

  subscribe(filter: string, _handler: MessageHandler): RouterSubscription {
    return { filter, unsubscribe: () => {} };
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

/** The JSON codec, noting the compression each batch is asked to be written with. */
export function compressionNoting(): { records: RecordCodec; asked: Array<RecordCompression | undefined> } {
  const asked: Array<RecordCompression | undefined> = [];
  const records: RecordCodec = {
    encode: (messages, compression) => {
      asked.push(compression);
      return jsonCodec.encode(messages);
    },
    decode: (batch, topic) => jsonCodec.decode(batch, topic),
  };
  return { records, asked };
}

/** A MetaStore in a Map, kept across plugin restarts in one test; watches see puts and deletes. */
export function memoryMeta(): MetaStore {
  const entries = new Map<string, MetaEntry>();
  const watchers = new Set<{ prefix: string; listener: (event: MetaEvent) => void }>();
  const notify = (key: string, event: MetaEvent) => {
    for (const w of watchers) if (key.startsWith(w.prefix)) w.listener(event);
  };
  let revision = 0;
  const store: Partial<MetaStore> = {
    get: (k) => Promise.resolve(entries.get(k) ?? null),
    put(k, value, options) {
      const old = entries.get(k);
      if (options?.ifRevision !== undefined && (old?.modRevision ?? 0) !== options.ifRevision) {
        return Promise.reject(new RobustMQError(ErrorCode.Conflict, 'revision mismatch'));
      }
      revision++;
      const entry = {
        key: k,
        value,
        createRevision: old?.createRevision ?? revision,
        modRevision: revision,
        version: (old?.version ?? 0) + 1,
      };
      entries.set(k, entry);
      notify(k, { type: 'put', entry, revision });
      return Promise.resolve(revision);
    },
    delete(k) {
      const existed = entries.delete(k);
      if (existed) notify(k, { type: 'delete', key: k, revision: ++revision });
      return Promise.resolve(existed);
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
  };
  return store as MetaStore;
}

/**
 * The AMQP plugin in this process, with a context we control: users alice/secret-pw, addresses
 * starting with `secret` refused, memory storage and meta that outlive a plugin restart.
 */
export async function startInProcess(
  settings: Record<string, unknown> = {},
  shared: {
    storage?: StorageEngine;
    meta?: MetaStore;
    records?: RecordCodec;
    cluster?: BrokerCluster;
    topics?: TopicCatalog;
  } = {},
) {
  const router = new RecordingRouter();
  const metrics = new TestMetrics();
  const storage = shared.storage ?? new MemoryStorageEngine();
  const meta = shared.meta ?? memoryMeta();
  const auth = {
    async authenticate(credentials: Credentials): Promise<Principal | null> {
      await new Promise((r) => setTimeout(r, 2));
      if (credentials.username === null) return { username: null, superuser: false };
      const ok =
        credentials.username === 'alice' &&
        Buffer.from(credentials.password ?? []).toString() === 'secret-pw';
      return ok ? { username: 'alice', superuser: false } : null;
    },
    async authorize(_principal: Principal, _action: Action, topic: string): Promise<boolean> {
      await new Promise((r) => setTimeout(r, 2));
      return !topic.startsWith('secret');
    },
    scramCredential: () => Promise.resolve(null),
  };
  const context: BrokerContext = {
    nodeId: shared.cluster?.nodeId ?? 1,
    version: '0.0.0-test',
    router,
    storage,
    meta,
    auth,
    metrics,
    logger: silentLogger,
    records: shared.records ?? jsonCodec,
    ...(shared.cluster ? { cluster: shared.cluster } : {}),
    ...(shared.topics ? { topics: shared.topics } : {}),
  };
  const plugin = new AmqpPlugin(parseSettings({ port: 0, ...settings }));
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
    storage,
    meta,
    async stop() {
      server.close();
      await plugin.stop();
    },
  };
}
