import { createServer, type Server } from 'node:net';
import {
  silentLogger,
  topicMatchesFilter,
  type Action,
  type BrokerContext,
  type Counter,
  type Credentials,
  type Gauge,
  type Message,
  type MessageHandler,
  type MessageOrigin,
  type MetaEntry,
  type MetaStore,
  type Metrics,
  type Principal,
  type Router,
  type RouterSubscription,
  type ScramCredential,
  type ScramLogin,
  type ScramMechanism,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { MqttPlugin } from '../../src/plugin.js';
import { parseSettings } from '../../src/config.js';
import { scramCredentialOf } from './scram-client.js';

/** A router with the contract's semantics, as simple as possible. */
export class ListRouter implements Router {
  readonly subscriptions = new Set<{ filter: string; handler: MessageHandler }>();

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
export async function startInProcess(settings: Record<string, unknown> = {}) {
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
    nodeId: 1,
    version: '0.0.0-test',
    router,
    storage: new MemoryStorageEngine(),
    // The MQTT plugin keeps its own session log format and never encodes records.
    records: {
      encode: () => Promise.reject(new Error('the MQTT plugin does not encode records')),
      decode: () => Promise.reject(new Error('the MQTT plugin does not decode records')),
    },
    meta: memoryMeta(),
    auth,
    metrics,
    logger: silentLogger,
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
    async stop() {
      server.close();
      await plugin.stop();
    },
  };
}

/** The part of a MetaStore the MQTT broker uses, in a Map (these tests restart nothing). */
function memoryMeta(): MetaStore {
  const entries = new Map<string, MetaEntry>();
  let revision = 0;
  const store: Partial<MetaStore> = {
    get: (key) => Promise.resolve(entries.get(key) ?? null),
    put(key, value) {
      revision++;
      const old = entries.get(key);
      entries.set(key, {
        key,
        value,
        createRevision: old?.createRevision ?? revision,
        modRevision: revision,
        version: (old?.version ?? 0) + 1,
      });
      return Promise.resolve(revision);
    },
    delete: (key) => Promise.resolve(entries.delete(key)),
    list: (prefix) =>
      Promise.resolve(
        [...entries.values()]
          .filter((e) => e.key.startsWith(prefix))
          .sort((a, b) => (a.key < b.key ? -1 : 1)),
      ),
  };
  return store as MetaStore;
}
