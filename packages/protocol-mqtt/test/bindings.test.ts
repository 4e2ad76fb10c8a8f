import type { ConfigError } from '@robustmq/core';
import {
  encodeTopic,
  TopicCatalog,
  topicKey,
  type AppendResult,
  type Message,
  type MetaStore,
  type RecordBatch,
  type RecordCodec,
  type RecordCompression,
  type StorageEngine,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseSettings } from '../src/config.js';
import { murmur2, partitionOf } from '../src/partitioner.js';
import { ShardAppender } from '../src/shard-appender.js';
import { jsonRecords, memoryMeta, startInProcess, storedMessages } from './helpers/in-process.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';

const text = (bytes: Uint8Array | null) => (bytes === null ? null : Buffer.from(bytes).toString());
const headerPairs = (message: Message) =>
  message.headers.map((h) => [h.key, Buffer.from(h.value).toString()]);

describe('murmur2, the partitioner Kafka and KafkaJS use', () => {
  it('gives the values of Kafka’s own test vectors', () => {
    const cases: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [input, expected] of cases) expect(murmur2(Buffer.from(input))).toBe(expected);
  });

  it('maps a key to a partition in range, the same every time', () => {
    for (const key of ['sensors/a', 'sensors/b', 'x', '']) {
      const partition = partitionOf(Buffer.from(key), 7);
      expect(partition).toBeGreaterThanOrEqual(0);
      expect(partition).toBeLessThan(7);
      expect(partitionOf(Buffer.from(key), 7)).toBe(partition);
    }
  });
});

describe('[[mqtt.bindings]] settings', () => {
  const problem = (bindings: unknown) => {
    try {
      parseSettings({ bindings });
    } catch (error) {
      return (error as ConfigError).setting;
    }
    throw new Error('accepted');
  };

  it('reads filters and stored topics with their defaults', () => {
    const settings = parseSettings({
      bindings: [
        { filter: 'sensors/#', topic: 'sensors' },
        { filter: '$SYS/#', topic: 'sys', partitions: 3, retained: true },
      ],
    });
    expect(settings.bindings).toEqual([
      { filter: 'sensors/#', topic: 'sensors', partitions: 1, retained: false },
      { filter: '$SYS/#', topic: 'sys', partitions: 3, retained: true },
    ]);
    expect(parseSettings({}).bindings).toEqual([]);
  });

  it('names the binding setting that is wrong', () => {
    expect(problem({ filter: 'a', topic: 'a' })).toBe('bindings');
    expect(problem(['a'])).toBe('bindings[0]');
    expect(problem([{ filter: 'a/#/b', topic: 'a' }])).toBe('bindings[0].filter');
    expect(problem([{ filter: '$share/g/a', topic: 'a' }])).toBe('bindings[0].filter');
    expect(problem([{ topic: 'a' }])).toBe('bindings[0].filter');
    expect(problem([{ filter: 'a', topic: 'a/b' }])).toBe('bindings[0].topic');
    expect(problem([{ filter: 'a', topic: 'a', partitions: 0 }])).toBe('bindings[0].partitions');
    expect(problem([{ filter: 'a', topic: 'a', retained: 'yes' }])).toBe('bindings[0].retained');
    expect(problem([{ filter: 'a', topic: 'a', qos: 1 }])).toBe('bindings[0].qos');
  });
});

describe('ShardAppender', () => {
  it('writes the messages given in one turn as one record batch, in order', async () => {
    const storage = new MemoryStorageEngine();
    await storage.createShard('t/0');
    const appender = new ShardAppender(storage, jsonRecords, 't/0');
    const message = (n: number): Message => ({
      topic: 't',
      key: null,
      payload: Buffer.from(String(n)),
      headers: [],
      timestamp: n,
    });
    const acks = [1, 2, 3].map((n) => appender.append(message(n)));
    appender.appendLater(message(4));
    await Promise.all(acks);
    await appender.settled();
    const { batches } = await storage.read('t/0', 0, { maxBytes: 1 << 20 });
    expect(batches).toHaveLength(1);
    expect((await storedMessages(storage, 't/0')).map((m) => text(m.payload))).toEqual(['1', '2', '3', '4']);
  });

  it('rejects the waiting appends of a failed batch and reports the others', async () => {
    const storage = new MemoryStorageEngine();
    const appender = new ShardAppender(storage, jsonRecords, 'missing/0');
    const reported: string[] = [];
    appender.onError = (_error, shard) => reported.push(shard);
    const message: Message = {
      topic: 'missing',
      key: null,
      payload: Buffer.from('x'),
      headers: [],
      timestamp: 1,
    };
    appender.appendLater(message);
    await expect(appender.append(message)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await appender.settled();
    expect(reported).toEqual(['missing/0']);
  });
});

/** A storage engine whose appends wait until `release` is called. */
class GatedStorage extends MemoryStorageEngine {
  private gate: Promise<void> | null = null;
  release: () => void = () => {};

  hold(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  override async append(shard: string, batches: readonly RecordBatch[]): Promise<AppendResult> {
    if (this.gate) await this.gate;
    return super.append(shard, batches);
  }
}

/** Storage and meta holding the stored topic `sensors` (one partition, `configs`) before a broker starts. */
async function existingSensorsTopic(configs: Record<string, string> = {}) {
  const storage = new MemoryStorageEngine();
  const meta = memoryMeta();
  const catalog = new TopicCatalog(meta, storage);
  await catalog.create({
    name: 'sensors',
    partitions: 1,
    storageClass: 'memory',
    retentionMs: null,
    retentionBytes: null,
    configs,
  });
  return { storage, meta, catalog };
}

describe('MQTT messages stored through a binding', () => {
  let broker: Awaited<ReturnType<typeof startInProcess>>;
  let clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients);
    clients = [];
    await broker.stop();
  });

  async function client(protocolVersion: 4 | 5 = 5): Promise<MqttClient> {
    const c = await connectClient(broker.port, { protocolVersion });
    clients.push(c);
    return c;
  }

  async function waitForStored(storage: StorageEngine, shard: string, count: number) {
    for (let i = 0; i < 500; i++) {
      const messages = await storedMessages(storage, shard);
      if (messages.length >= count) return messages;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`${shard} never held ${count} messages`);
  }

  it('creates the stored topic and appends a QoS 1 message with its key, headers and time before PUBACK', async () => {
    const storage = new GatedStorage();
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors', partitions: 4 }] },
      { storage },
    );
    const topic = await new TopicCatalog(broker.context.meta, storage).get('sensors');
    expect(topic?.partitions).toBe(4);
    const publisher = await client(5);
    const payload = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    storage.hold();
    let acknowledged = false;
    const before = Date.now();
    const published = publisher
      .publishAsync('sensors/room1/temp', payload, {
        qos: 1,
        properties: {
          userProperties: { unit: 'C', site: ['a', 'b'] },
          contentType: 'application/octet-stream',
          responseTopic: 'replies/room1',
          correlationData: Buffer.from([9, 8, 7]),
        },
      })
      .then(() => (acknowledged = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(acknowledged).toBe(false);
    storage.release();
    await published;
    const shard = `sensors/${partitionOf(Buffer.from('sensors/room1/temp'), 4)}`;
    const [stored] = await storedMessages(storage, shard);
    expect(stored).toBeDefined();
    expect(text(stored!.key)).toBe('sensors/room1/temp');
    expect(Buffer.from(stored!.payload).equals(payload)).toBe(true);
    expect(headerPairs(stored!)).toEqual([
      ['unit', 'C'],
      ['site', 'a'],
      ['site', 'b'],
      ['content-type', 'application/octet-stream'],
      ['mqtt-response-topic', 'replies/room1'],
      ['mqtt-correlation-data', '\u0009\u0008\u0007'],
    ]);
    expect(stored!.timestamp).toBeGreaterThanOrEqual(before);
    expect(stored!.timestamp).toBeLessThanOrEqual(Date.now());
  });

  it("creates its stored topics through the node's topic catalog when the node shares one", async () => {
    const storage = new MemoryStorageEngine();
    const meta = memoryMeta();
    const topics = new TopicCatalog(meta, storage);
    const create = vi.spyOn(topics, 'create');
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors' }] },
      { storage, meta, topics },
    );
    expect(create.mock.calls.map(([topic]) => topic.name)).toEqual(['sensors']);
  });

  it('sends PUBREC for a QoS 2 message only once it is stored', async () => {
    const storage = new GatedStorage();
    broker = await startInProcess({ bindings: [{ filter: 'sensors/#', topic: 'sensors' }] }, { storage });
    const publisher = await client(4);
    const received: string[] = [];
    publisher.on('packetreceive', (packet) => received.push(packet.cmd));
    storage.hold();
    const published = publisher.publishAsync('sensors/q2', 'exactly once', { qos: 2 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).not.toContain('pubrec');
    storage.release();
    await published;
    expect(received).toContain('pubrec');
    expect((await storedMessages(storage, 'sensors/0')).map((m) => text(m.payload))).toEqual([
      'exactly once',
    ]);
  });

  it('appends QoS 0 messages of one MQTT topic in order to one partition, and nothing unbound', async () => {
    const storage = new MemoryStorageEngine();
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/+/temp', topic: 'sensors', partitions: 3 }] },
      { storage },
    );
    const publisher = await client(4);
    for (let i = 0; i < 50; i++) publisher.publish('sensors/a/temp', String(i), { qos: 0 });
    publisher.publish('sensors/a/humidity', 'not bound', { qos: 0 });
    await publisher.publishAsync('sensors/b/temp', 'last', { qos: 1 });
    const partition = partitionOf(Buffer.from('sensors/a/temp'), 3);
    const stored = await waitForStored(storage, `sensors/${partition}`, 50);
    expect(stored.filter((m) => text(m.key) === 'sensors/a/temp').map((m) => text(m.payload))).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    const all = [];
    for (let p = 0; p < 3; p++) all.push(...(await storedMessages(storage, `sensors/${p}`)));
    expect(all.map((m) => text(m.key)).filter((k) => k !== 'sensors/a/temp')).toEqual(['sensors/b/temp']);
  });

  it('leaves retained messages and $-topics out unless a binding names them', async () => {
    const storage = new MemoryStorageEngine();
    broker = await startInProcess(
      {
        bindings: [
          { filter: '#', topic: 'everything' },
          { filter: 'state/#', topic: 'state', retained: true },
          { filter: '$events/#', topic: 'events' },
        ],
      },
      { storage },
    );
    const publisher = await client(5);
    await publisher.publishAsync('live/a', 'live', { qos: 1 });
    await publisher.publishAsync('state/a', 'kept', { qos: 1, retain: true });
    await publisher.publishAsync('$events/a', 'dollar', { qos: 1 });
    const keys = async (topic: string) =>
      (await storedMessages(storage, `${topic}/0`)).map((m) => text(m.key));
    expect(await keys('everything')).toEqual(['live/a']);
    expect(await keys('state')).toEqual(['state/a']);
    expect(await keys('events')).toEqual(['$events/a']);
  });

  it('keeps an existing topic’s partitions and follows them as they grow', async () => {
    const { storage, meta, catalog } = await existingSensorsTopic();
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors', partitions: 8 }] },
      { storage, meta },
    );
    expect((await catalog.get('sensors'))?.partitions).toBe(1);
    const publisher = await client(5);
    await publisher.publishAsync('sensors/x', 'one', { qos: 1 });
    expect((await storedMessages(storage, 'sensors/0')).map((m) => text(m.payload))).toEqual(['one']);
    await catalog.alter('sensors', { partitions: 4 });
    const key = ['sensors/a', 'sensors/b', 'sensors/c', 'sensors/d', 'sensors/e'].find(
      (k) => partitionOf(Buffer.from(k), 4) !== 0,
    )!;
    await publisher.publishAsync(key, 'two', { qos: 1 });
    const shard = `sensors/${partitionOf(Buffer.from(key), 4)}`;
    expect((await storedMessages(storage, shard)).map((m) => text(m.payload))).toEqual(['two']);
  });

  it('stores nothing more in a bound topic once a deletion has marked it, before its shards go', async () => {
    const { storage, meta, catalog } = await existingSensorsTopic();
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors' }] },
      { storage, meta },
    );
    const publisher = await client(5);
    await publisher.publishAsync('sensors/x', 'before', { qos: 1 });
    // What a broker deleting the topic writes first; it then removes the shards, then the entry.
    const topic = (await catalog.get('sensors'))!;
    await meta.put(topicKey('sensors'), encodeTopic({ ...topic, deletingSince: Date.now() }));
    await publisher.publishAsync('sensors/x', 'during', { qos: 1 });
    expect((await storedMessages(storage, 'sensors/0')).map((m) => text(m.payload))).toEqual(['before']);
  });

  it('acknowledges a QoS 1 message to a bound topic deleted before the binding heard of it, and keeps the connection', async () => {
    const { storage, meta, catalog } = await existingSensorsTopic();
    // The broker hears of catalog changes only later, as a broker of a cluster may.
    const lateWatch: MetaStore = Object.create(meta) as MetaStore;
    lateWatch.watch = () => ({ close: () => {} });
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors' }] },
      { storage, meta: lateWatch },
    );
    const publisher = await client(5);
    let closes = 0;
    publisher.on('close', () => closes++);
    await publisher.publishAsync('sensors/x', 'before', { qos: 1 });
    expect(await catalog.delete('sensors')).toBe(true);
    await publisher.publishAsync('sensors/x', 'during', { qos: 1 });
    await publisher.publishAsync('sensors/x', 'after', { qos: 1 });
    expect(closes).toBe(0);
    await expect(storage.shardInfo('sensors/0')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('stores a QoS 1 message in a bound topic another broker is creating, whose shards are not there yet', async () => {
    const storage = new MemoryStorageEngine();
    const meta = memoryMeta();
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors' }] },
      { storage, meta },
    );
    const catalog = new TopicCatalog(meta, storage);
    expect(await catalog.delete('sensors')).toBe(true);
    // Another broker's creation, half way: its entry is written, its shards not yet.
    const topic = {
      name: 'sensors',
      partitions: 1,
      storageClass: 'memory' as const,
      retentionMs: null,
      retentionBytes: null,
      configs: {},
      createdAt: Date.now(),
    };
    await meta.put(topicKey('sensors'), encodeTopic(topic));
    const publisher = await client(5);
    let closes = 0;
    publisher.on('close', () => closes++);
    await publisher.publishAsync('sensors/x', 'early', { qos: 1 });
    expect(closes).toBe(0);
    expect((await storedMessages(storage, 'sensors/0')).map((m) => text(m.payload))).toEqual(['early']);
  });

  it('stores batches with the codec the topic’s compression.type names, and follows changes to it', async () => {
    const { storage, meta, catalog } = await existingSensorsTopic({ 'compression.type': 'zstd' });
    const asked: Array<RecordCompression | undefined> = [];
    const records: RecordCodec = {
      encode: (messages, compression) => {
        asked.push(compression);
        return jsonRecords.encode(messages);
      },
      decode: (batch, topic) => jsonRecords.decode(batch, topic),
    };
    broker = await startInProcess(
      { bindings: [{ filter: 'sensors/#', topic: 'sensors' }] },
      { storage, meta, records },
    );
    const publisher = await client(5);
    // The binding learns of a change through a meta watch: publish until a batch shows it.
    const publishUntilAsked = async (codec: RecordCompression) => {
      for (let i = 0; i < 100 && asked.at(-1) !== codec; i++) {
        await publisher.publishAsync('sensors/a', `message ${i}`, { qos: 1 });
        if (asked.at(-1) !== codec) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return asked.at(-1);
    };
    await publisher.publishAsync('sensors/a', 'first', { qos: 1 });
    expect(asked).toEqual(['zstd']);
    await catalog.alter('sensors', { configs: { 'compression.type': 'gzip' } });
    expect(await publishUntilAsked('gzip')).toBe('gzip');
    await catalog.alter('sensors', { configs: { 'compression.type': null } });
    expect(await publishUntilAsked('none')).toBe('none');
    expect(new Set(asked)).toEqual(new Set(['zstd', 'gzip', 'none']));
  });
});

describe('records of a bound topic from other protocols', () => {
  let broker: Awaited<ReturnType<typeof startInProcess>>;
  let clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients);
    clients = [];
    await broker.stop();
  });

  it('reach subscribers of the MQTT topic the key names, else of the stored topic', async () => {
    broker = await startInProcess({ bindings: [{ filter: 'sensors/#', topic: 'sensors' }] });
    const subscriber = await connectClient(broker.port, { protocolVersion: 5 });
    clients.push(subscriber);
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync(['sensors/#', 'sensors', 'other/#'], { qos: 1 });
    const record = (key: string | null, payload: string): Message => ({
      topic: 'sensors',
      key: key === null ? null : Buffer.from(key),
      payload: Buffer.from(payload),
      headers: [
        { key: 'unit', value: Buffer.from('C') },
        { key: 'content-type', value: Buffer.from('text/plain') },
        { key: 'mqtt-correlation-data', value: Buffer.from([1, 2]) },
        { key: 'amqp-properties', value: Buffer.from([0x00, 0x53, 0x73, 0x45]) },
      ],
      timestamp: 1_700_000_000_000,
    });
    broker.router.publish(record('sensors/room1', 'keyed'), { protocol: 'kafka' });
    broker.router.publish(record('other/room1', 'other filter'), { protocol: 'kafka' });
    broker.router.publish(record(null, 'no key'), { protocol: 'amqp' });
    broker.router.publish(record('sensors/+', 'wildcard key'), { protocol: 'kafka' });
    const received = await inbox.waitFor(4);
    expect(received.map((r) => [r.topic, r.payload])).toEqual([
      ['sensors/room1', 'keyed'],
      ['sensors', 'other filter'],
      ['sensors', 'no key'],
      ['sensors', 'wildcard key'],
    ]);
    expect(received[0]!.packet.properties).toMatchObject({
      userProperties: { unit: 'C' },
      contentType: 'text/plain',
      correlationData: Buffer.from([1, 2]),
    });
    expect(received[0]!.packet.properties?.userProperties).not.toHaveProperty('amqp-properties');
  });

  it('reads only the topic of a message no MQTT subscription wants', async () => {
    broker = await startInProcess({ bindings: [{ filter: 'sensors/#', topic: 'sensors' }] });
    const subscriber = await connectClient(broker.port, { protocolVersion: 5 });
    clients.push(subscriber);
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('wanted', { qos: 1 });
    const reads: string[] = [];
    const lazy = (topic: string): Message => ({
      topic,
      get key() {
        reads.push(`${topic} key`);
        return null;
      },
      get payload() {
        reads.push(`${topic} payload`);
        return Buffer.from('p');
      },
      get headers() {
        reads.push(`${topic} headers`);
        return [];
      },
      get timestamp() {
        reads.push(`${topic} timestamp`);
        return 1;
      },
    });
    broker.router.publish(lazy('unwanted'), { protocol: 'kafka' });
    broker.router.publish(lazy('wanted'), { protocol: 'kafka' });
    await inbox.waitFor(1);
    expect(reads.filter((r) => r.startsWith('unwanted'))).toEqual([]);
    expect(reads).toContain('wanted payload');
  });

  it('publishes MQTT messages to the router with their properties as headers', async () => {
    broker = await startInProcess();
    const seen: Message[] = [];
    broker.router.subscribe('#', (message, origin) => {
      if (origin.protocol === 'mqtt') seen.push(message);
    });
    const publisher = await connectClient(broker.port, { protocolVersion: 5 });
    clients.push(publisher);
    await publisher.publishAsync('a/b', 'x', {
      qos: 1,
      properties: { userProperties: { k: 'v' }, contentType: 'text/plain' },
    });
    expect(seen).toHaveLength(1);
    expect(headerPairs(seen[0]!)).toEqual([
      ['k', 'v'],
      ['content-type', 'text/plain'],
    ]);
  });
});
