import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import mqtt, { type MqttClient } from 'mqtt';
import rhea, { type Connection } from 'rhea';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, startServer, tempDir, type ServerProcess } from './helpers/server-process.js';

/**
 * Three meta nodes (roles meta), a journal node and two brokers on it, with Kafka, MQTT and AMQP
 * clients busy on the brokers, some of them writing to the meta service all along (topics, consumer
 * group offsets, session records). The meta leader is killed with -9 at a random moment and started
 * again. Whatever a client was told was done must still be there, and every client goes on once
 * the two others have elected a leader.
 */

/** The longest a client may wait after the kill for its next acknowledgement: a meta call's timeout. */
const RECOVERY_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface MetaView {
  leader: number;
  role: string;
  appliedIndex: number;
}

/** A meta node's view of its group, or null while it does not answer. */
async function metaView(node: ServerProcess): Promise<MetaView | null> {
  try {
    const response = await fetch(`${node.httpUrl}/health/ready`, { signal: AbortSignal.timeout(1000) });
    return ((await response.json()) as { meta?: MetaView }).meta ?? null;
  } catch {
    return null;
  }
}

describe('kill -9 of the meta leader in the middle of traffic', () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('loses nothing acknowledged, and every client goes on under the new leader', async () => {
    const dir = tempDir('meta-leader-kill');
    cleanups.push(dir.remove);
    const rpcPorts = await freePorts(4);
    const metaNodes = `[${[1, 2, 3].map((id) => `"${id}@127.0.0.1:${rpcPorts[id - 1]}"`).join(', ')}]`;
    const common = ['bind = "127.0.0.1"', '[log]', 'format = "json"', '[http]', 'port = 0'];
    const write = (name: string, lines: string[]) => {
      writeFileSync(join(dir.path, name), lines.join('\n') + '\n');
      return join(dir.path, name);
    };
    const metaConfig = (id: number) =>
      write(`meta-${id}.toml`, [
        `node_id = ${id}`,
        'roles = ["meta"]',
        `data_dir = "meta-${id}"`,
        ...common,
        '[cluster]',
        `meta_nodes = ${metaNodes}`,
        'tick_ms = 50',
        '[rpc]',
        `port = ${rpcPorts[id - 1]}`,
      ]);
    const journalConfig = write('journal.toml', [
      'node_id = 4',
      'roles = ["journal"]',
      'data_dir = "journal"',
      ...common,
      '[rpc]',
      `port = ${rpcPorts[3]}`,
    ]);
    const brokerConfig = (id: number) =>
      write(`broker-${id}.toml`, [
        `node_id = ${id}`,
        'roles = ["broker"]',
        `data_dir = "broker-${id}"`,
        'protocols = ["@robustmq/protocol-mqtt", "@robustmq/protocol-kafka", "@robustmq/protocol-amqp"]',
        ...common,
        '[cluster]',
        `meta_nodes = ${metaNodes}`,
        '[storage]',
        'engine = "@robustmq/journal/remote"',
        `address = "127.0.0.1:${rpcPorts[3]}"`,
        '[rpc]',
        'port = 0',
        '[mqtt]',
        'port = 0',
        '[kafka]',
        'port = 0',
        'group_initial_rebalance_delay_ms = 0',
        '[amqp]',
        'port = 0',
      ]);
    const start = async (config: string) => {
      const server = await startServer({ args: ['--config', config], cwd: dir.path });
      cleanups.push(() => server.stop('SIGKILL'));
      return server;
    };
    // Each meta node waits for a quorum before it is ready, so they start together.
    const [metas] = await Promise.all([
      Promise.all([1, 2, 3].map((id) => start(metaConfig(id)))),
      start(journalConfig),
    ]);
    const brokers = await Promise.all([5, 6].map((id) => start(brokerConfig(id))));

    /** When the leader was killed, and how long after it each kind of client first heard back. */
    let killedAt = Infinity;
    const recovered = new Map<string, number>();
    const acknowledged = (kind: string, begunAt: number) => {
      if (begunAt >= killedAt && !recovered.has(kind)) recovered.set(kind, Date.now() - killedAt);
    };
    let running = true;

    // ---- Kafka: an idempotent producer, topics being created, a group committing offsets.
    const kafka = (clientId: string) =>
      new Kafka({
        clientId,
        brokers: brokers.map((b) => `127.0.0.1:${b.port('kafka/tcp')}`),
        logLevel: logLevel.NOTHING,
        retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
      });
    const admin = kafka('admin').admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    await until(
      'both brokers in the metadata',
      async () => (await admin.describeCluster()).brokers.length === 2,
      20_000,
    );
    await admin.createTopics({ topics: [{ topic: 'orders', numPartitions: 3 }], waitForLeaders: true });

    const produced: string[] = [];
    const producer = kafka('producer').producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const producing = (async () => {
      for (let next = 0; running;) {
        const values = Array.from({ length: 5 }, () => `order-${next++}`);
        const begunAt = Date.now();
        try {
          await producer.send({
            topic: 'orders',
            acks: -1,
            messages: values.map((value) => ({ key: value, value })),
          });
          produced.push(...values);
          acknowledged('produce', begunAt);
        } catch {
          await sleep(100);
        }
      }
    })();

    const createdTopics: string[] = [];
    const creatingTopics = (async () => {
      for (let next = 0; running; next++) {
        const begunAt = Date.now();
        try {
          // Resolves false when an earlier try that failed had made it: it exists either way.
          await admin.createTopics({ topics: [{ topic: `invoices-${next}`, numPartitions: 2 }] });
          createdTopics.push(`invoices-${next}`);
          acknowledged('create topic', begunAt);
        } catch {
          // Not acknowledged: nothing to check.
        }
        await sleep(50);
      }
    })();

    /** The highest offset committed and acknowledged, by partition. */
    const committed = new Map<number, number>();
    const consumer = kafka('consumer').consumer({ groupId: 'billing', heartbeatInterval: 500 });
    await consumer.connect();
    cleanups.push(() => consumer.disconnect());
    await consumer.subscribe({ topic: 'orders', fromBeginning: true });
    let uncommitted = 0;
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (++uncommitted < 5) return;
        uncommitted = 0;
        const offset = Number(message.offset) + 1;
        const begunAt = Date.now();
        try {
          await consumer.commitOffsets([{ topic: 'orders', partition, offset: String(offset) }]);
          committed.set(partition, Math.max(committed.get(partition) ?? 0, offset));
          acknowledged('commit offsets', begunAt);
        } catch {
          // Not acknowledged: the next commit covers it.
        }
      },
    });

    // ---- MQTT: persistent QoS 1 subscribers (one online on broker 5, one away), a QoS 1
    // publisher on broker 6, and new persistent sessions subscribing all along.
    const connectMqtt = (
      clientId: string,
      broker: number,
      options: {
        clean?: boolean;
        reconnect?: boolean;
        onMessage?: (topic: string, payload: string) => void;
      } = {},
    ) =>
      new Promise<{ client: MqttClient; sessionPresent: boolean }>((resolve, reject) => {
        const client = mqtt.connect(`mqtt://127.0.0.1:${brokers[broker]!.port('mqtt/tcp')}`, {
          clientId,
          clean: options.clean ?? false,
          protocolVersion: 4,
          reconnectPeriod: options.reconnect ? 200 : 0,
          connectTimeout: 5000,
          // A lost subscription must show, not be made again by the client.
          resubscribe: false,
        });
        cleanups.push(() => client.end(true));
        // Before CONNACK: a session's queued messages may come in the same read.
        if (options.onMessage)
          client.on('message', (topic, payload) => options.onMessage!(topic, payload.toString()));
        client.once('connect', (connack) => resolve({ client, sessionPresent: connack.sessionPresent }));
        client.once('error', reject);
        client.once('close', () => reject(new Error(`${clientId} closed before CONNACK`)));
      });
    const subscribe = (client: MqttClient, filter: string) =>
      new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), RECOVERY_MS);
        client.subscribe(filter, { qos: 1 }, (error, granted) => {
          clearTimeout(timer);
          resolve(!error && granted?.[0]?.qos === 1);
        });
      });

    const online = new Set<string>();
    const away = new Set<string>();
    const { client: watcher } = await connectMqtt('watcher', 0, {
      reconnect: true,
      onMessage: (_topic, payload) => online.add(payload),
    });
    expect(await subscribe(watcher, 'sensors/#')).toBe(true);
    {
      const { client } = await connectMqtt('away', 1);
      expect(await subscribe(client, 'sensors/#')).toBe(true);
      await client.endAsync();
    }

    const published: string[] = [];
    const { client: publisher } = await connectMqtt('publisher', 1, { clean: true, reconnect: true });
    const publishing = (async () => {
      const inFlight = new Set<Promise<void>>();
      for (let next = 0; running; next++) {
        const payload = `reading-${next}`;
        const begunAt = Date.now();
        const puback = new Promise<void>((resolve) =>
          publisher.publish(`sensors/${next % 4}`, payload, { qos: 1 }, (error) => {
            if (!error) {
              published.push(payload);
              acknowledged('publish', begunAt);
            }
            resolve();
          }),
        );
        inFlight.add(puback);
        void puback.then(() => inFlight.delete(puback));
        while (inFlight.size >= 10) await Promise.race(inFlight);
        await sleep(10);
      }
      await Promise.all(inFlight);
    })();

    const subscriptions: Array<{ clientId: string; broker: number; topic: string }> = [];
    const subscribing = (async () => {
      for (let next = 0; running; next++) {
        const clientId = `room-${next}`;
        const broker = next % 2;
        const begunAt = Date.now();
        try {
          const { client } = await connectMqtt(clientId, broker);
          if (await subscribe(client, `rooms/${next}/#`)) {
            subscriptions.push({ clientId, broker, topic: `rooms/${next}/temperature` });
            acknowledged('subscribe', begunAt);
          }
          client.end(true);
        } catch {
          // Refused while the meta service had no leader: not acknowledged.
        }
        await sleep(50);
      }
    })();

    // ---- AMQP: a sender to a queue, credit permitting.
    const accepted: string[] = [];
    const sender = rhea.create_container({ id: 'sender' }).connect({
      host: '127.0.0.1',
      port: brokers[0]!.port('amqp/tcp'),
      reconnect: true,
      initial_reconnect_delay: 100,
      max_reconnect_delay: 500,
    });
    cleanups.push(() => sender.close());
    const jobs = sender.open_sender('queue://jobs');
    const sent = new Map<unknown, { body: string; begunAt: number }>();
    jobs.on('accepted', (context) => {
      const delivery = sent.get(context.delivery);
      if (delivery === undefined) return;
      accepted.push(delivery.body);
      acknowledged('send to queue', delivery.begunAt);
    });
    let nextJob = 0;
    const sending = setInterval(() => {
      for (let i = 0; i < 3 && running && jobs.sendable(); i++) {
        const body = `job-${nextJob++}`;
        sent.set(jobs.send({ body, durable: true }), { body, begunAt: Date.now() });
      }
    }, 20);
    cleanups.push(() => clearInterval(sending));

    // ---- The kill, at a random moment of the traffic.
    const killAfterMs = Math.round(1000 + Math.random() * 1500);
    await sleep(killAfterMs);
    const views = await Promise.all(metas.map(metaView));
    const killed = views.find((view) => view?.role === 'leader')!.leader;
    const at = `kill ${killAfterMs} ms into the traffic, of node ${killed}`;
    killedAt = Date.now();
    await metas[killed - 1]!.stop('SIGKILL');

    const survivors = metas.filter((_, i) => i + 1 !== killed);
    let electedMs = 0;
    await until(
      'a new leader',
      async () => {
        const leaders = new Set((await Promise.all(survivors.map(metaView))).map((view) => view?.leader));
        const [leader] = leaders;
        electedMs = Date.now() - killedAt;
        return leaders.size === 1 && leader !== undefined && leader !== 0 && leader !== killed;
      },
      RECOVERY_MS,
    );
    metas[killed - 1] = await start(metaConfig(killed));

    // Traffic goes on until every kind of client has been answered for something begun after the kill.
    const kinds = ['produce', 'create topic', 'commit offsets', 'publish', 'subscribe', 'send to queue'];
    await until(
      'every client answered after the kill',
      () => kinds.every((kind) => recovered.has(kind)),
      2 * RECOVERY_MS,
    ).catch(() => {});
    running = false;
    clearInterval(sending);
    await Promise.all([producing, creatingTopics, publishing, subscribing]);
    await consumer.stop();
    for (const kind of kinds) {
      const ms = recovered.get(kind) ?? Infinity;
      expect(ms, `${at}: first ${kind} acknowledged after the kill, in ms`).toBeLessThan(RECOVERY_MS);
    }

    // The node started again follows the new leader and catches up.
    await until(
      'the three meta nodes at one applied index',
      async () => {
        const now = await Promise.all(metas.map(metaView));
        return (
          new Set(now.map((view) => view?.leader)).size === 1 &&
          new Set(now.map((view) => view?.appliedIndex)).size === 1
        );
      },
      RECOVERY_MS,
    );

    // Every acknowledged record is in the topic.
    const stored = new Set<string>();
    const ends = await admin.fetchTopicOffsets('orders');
    const reader = kafka('reader').consumer({ groupId: 'audit' });
    await reader.connect();
    cleanups.push(() => reader.disconnect());
    await reader.subscribe({ topic: 'orders', fromBeginning: true });
    const readTo = new Map<number, number>();
    await reader.run({
      eachMessage: ({ partition, message }) => {
        stored.add(message.value!.toString());
        readTo.set(partition, Number(message.offset) + 1);
        return Promise.resolve();
      },
    });
    await until(
      'the reader at the end of orders',
      () => ends.every((end) => (readTo.get(end.partition) ?? 0) >= Number(end.high)),
      20_000,
    );
    await reader.stop();
    expect(
      produced.filter((value) => !stored.has(value)),
      `${at}: produced, acknowledged and not stored`,
    ).toEqual([]);

    // No committed offset is behind one acknowledged.
    const [offsets] = await admin.fetchOffsets({ groupId: 'billing', topics: ['orders'] });
    for (const { partition, offset } of offsets!.partitions) {
      expect(Number(offset), `${at}: committed offset of orders/${partition}`).toBeGreaterThanOrEqual(
        committed.get(partition) ?? 0,
      );
    }

    // Every acknowledged topic is there, with its partitions.
    const listed = new Set(await admin.listTopics());
    expect(
      createdTopics.filter((name) => !listed.has(name)),
      `${at}: topics created and acknowledged, missing`,
    ).toEqual([]);
    const topics = await admin.fetchTopicMetadata({ topics: createdTopics });
    expect(
      topics.topics.filter((topic) => topic.partitions.length !== 2).map((topic) => topic.name),
      `${at}: topics created and acknowledged, without their 2 partitions`,
    ).toEqual([]);

    // Every acknowledged MQTT message reaches the subscriber that stayed and the one that was away.
    const { sessionPresent: awayPresent } = await connectMqtt('away', 0, {
      onMessage: (_topic, payload) => away.add(payload),
    });
    expect(awayPresent, `${at}: session of the subscriber that was away`).toBe(true);
    await until(
      'every acknowledged message at both subscribers',
      () => published.every((p) => online.has(p) && away.has(p)),
      20_000,
    ).catch(() => {});
    expect(
      published.filter((payload) => !online.has(payload)),
      `${at}: PUBACKed, not delivered to the online subscriber`,
    ).toEqual([]);
    expect(
      published.filter((payload) => !away.has(payload)),
      `${at}: PUBACKed, not delivered to the away subscriber`,
    ).toEqual([]);

    // Every acknowledged subscription is in its session, wherever the client comes back.
    const { client: checker } = await connectMqtt('checker', 0, { clean: true });
    const lost = await Promise.all(
      subscriptions.map(async ({ clientId, broker, topic }) => {
        let delivered = false;
        const { client, sessionPresent } = await connectMqtt(clientId, 1 - broker, {
          onMessage: () => (delivered = true),
        });
        await checker.publishAsync(topic, 'check', { qos: 1 });
        await until(`delivery to ${clientId}`, () => delivered, 5000).catch(() => {});
        await client.endAsync();
        return sessionPresent && delivered ? [] : [`${clientId} (session present: ${sessionPresent})`];
      }),
    );
    expect(lost.flat(), `${at}: SUBACKed subscriptions lost`).toEqual([]);

    // Every accepted AMQP message is in the queue.
    const received = new Set<string>();
    const receiver: Connection = rhea.create_container({ id: 'receiver' }).connect({
      host: '127.0.0.1',
      port: brokers[1]!.port('amqp/tcp'),
    });
    cleanups.push(() => receiver.close());
    receiver.open_receiver({ source: 'queue://jobs', credit_window: 500 }).on('message', (context) => {
      received.add(String(context.message.body));
    });
    await until(
      'every accepted job received',
      () => accepted.every((body) => received.has(body)),
      20_000,
    ).catch(() => {});
    expect(
      accepted.filter((body) => !received.has(body)),
      `${at}: accepted and not in the queue`,
    ).toEqual([]);

    expect(electedMs, `${at}: a new leader, in ms`).toBeLessThan(RECOVERY_MS);
  }, 90_000);
});
