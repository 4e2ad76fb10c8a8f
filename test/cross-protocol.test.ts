/**
 * One message, every protocol (docs/cross-protocol.md): a real robustmq-server with the MQTT, Kafka
 * and AMQP plugins and the binding `sensors/#` → stored topic `sensors`. One message goes in
 * through each entry point (MQTT.js, KafkaJS, rhea) and is read at each exit (3 x 3), checking the
 * payload bytes, the key, the headers / user properties / application properties and the
 * timestamp as the mapping table says.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Socket } from 'node:net';
import {
  Compression,
  decodeRecordBatches,
  decodeResponse,
  encodeRequest,
  type FetchResponse,
} from '@robustmq/protocol-kafka/codec';
import { ConfigResourceTypes, Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt';
import rhea, { type Connection, type Message as AmqpMessage } from 'rhea';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SERVER_BIN = join(ROOT, 'packages/server/dist/bin.js');
const TOPIC = 'sensors';
/** A second bound topic, whose compression.type the last test sets. */
const ZIPPED = 'zipped';

/** Bytes that are not UTF-8, so any re-encoding on the way would show. */
const payloadOf = (entry: string) =>
  Buffer.concat([Buffer.from([0x00, 0xff, 0xfe, 0x80]), Buffer.from(entry)]);

interface Server {
  child: ChildProcess;
  ports: Map<string, number>;
  exited: Promise<number | null>;
}

async function startServer(dir: string): Promise<Server> {
  writeFileSync(
    join(dir, 'robustmq.toml'),
    [
      'bind = "127.0.0.1"',
      `data_dir = "${join(dir, 'data')}"`,
      'protocols = ["@robustmq/protocol-mqtt", "@robustmq/protocol-kafka", "@robustmq/protocol-amqp"]',
      '[http]',
      'port = 0',
      '[log]',
      'format = "json"',
      '[mqtt]',
      'port = 0',
      '[[mqtt.bindings]]',
      'filter = "sensors/#"',
      `topic = "${TOPIC}"`,
      '[[mqtt.bindings]]',
      `filter = "${ZIPPED}/#"`,
      `topic = "${ZIPPED}"`,
      '[kafka]',
      'port = 0',
      'group_initial_rebalance_delay_ms = 0',
      '[amqp]',
      'port = 0',
    ].join('\n') + '\n',
  );
  const child = spawn(process.execPath, [SERVER_BIN, '--config', 'robustmq.toml'], {
    cwd: dir,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let buffered = '';
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry.msg === 'node ready') resolve(entry);
        } catch {
          // not a log line
        }
      }
    });
    void exited.then((code) => reject(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
  const entry = await ready;
  const ports = new Map(
    (entry.listeners as string[]).map((l) => [l.slice(0, l.lastIndexOf(':')), Number(l.split(':').pop())]),
  );
  return { child, ports, exited };
}

/** What one exit saw of one message, in the terms the mapping table uses. */
interface Seen {
  topic: string;
  key: string | null;
  payload: Buffer;
  headers: Record<string, string>;
  /** ms since the epoch, where the exit protocol carries one. */
  timestamp: number | null;
  contentType: string | null;
}

/** Waits until `check` returns a value. */
async function eventually<T>(check: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const entries = ['mqtt', 'kafka', 'amqp'] as const;
type Entry = (typeof entries)[number];
/** The MQTT topic each entry point's message is about (the key for MQTT and Kafka). */
const mqttTopic: Record<Entry, string> = {
  mqtt: 'sensors/room-mqtt',
  kafka: 'sensors/room-kafka',
  amqp: TOPIC,
};
/** The header each entry point's message carries: an MQTT user property, a Kafka header, an AMQP application property. */
const headerOf = (entry: Entry) => ({ origin: `from-${entry}` });

let dir: string;
let server: Server;
let mqttSubscriber: MqttClient;
let mqttPublisher: MqttClient;
let producer: Producer;
let consumer: Consumer;
let amqpConnection: Connection;
const sentAt = new Map<Entry, { before: number; after: number }>();
const kafkaTimestamp = Date.now() - 60_000;
const seen: Record<'mqtt' | 'kafka' | 'amqp', Seen[]> = { mqtt: [], kafka: [], amqp: [] };

/** The message from `entry` as seen at `exit` (found by its payload). */
function received(entry: Entry, exit: Entry): Promise<Seen> {
  const payload = payloadOf(entry);
  return eventually(
    () => seen[exit].find((s) => s.payload.equals(payload)),
    `the ${entry} message at the ${exit} exit`,
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'robustmq-interop-'));
  server = await startServer(dir);
  const mqttUrl = `mqtt://127.0.0.1:${server.ports.get('mqtt/tcp')}`;

  // Exit: an MQTT 5 subscriber of the binding's MQTT topics and of the stored topic's own name.
  mqttSubscriber = await mqtt.connectAsync(mqttUrl, { protocolVersion: 5, reconnectPeriod: 0 });
  mqttSubscriber.on('message', (topic, payload, packet: IPublishPacket) => {
    const user = packet.properties?.userProperties ?? {};
    seen.mqtt.push({
      topic,
      key: null,
      payload: Buffer.from(payload),
      headers: Object.fromEntries(Object.entries(user).map(([k, v]) => [k, String(v)])),
      timestamp: null,
      contentType: packet.properties?.contentType ?? null,
    });
  });
  await mqttSubscriber.subscribeAsync(['sensors/#', TOPIC], { qos: 1 });

  // Exit: a KafkaJS consumer of the stored topic from the beginning.
  const kafka = new Kafka({
    clientId: 'interop',
    brokers: [`127.0.0.1:${server.ports.get('kafka/tcp')}`],
    logLevel: logLevel.NOTHING,
  });
  consumer = kafka.consumer({ groupId: 'interop', sessionTimeout: 10_000, heartbeatInterval: 500 });
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ topic, message }) => {
      seen.kafka.push({
        topic,
        key: message.key === null ? null : message.key.toString('utf8'),
        payload: Buffer.from(message.value ?? []),
        headers: Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, Buffer.from(v as Buffer).toString()]),
        ),
        timestamp: Number(message.timestamp),
        contentType: message.headers?.['content-type']?.toString() ?? null,
      });
      return Promise.resolve();
    },
  });

  // Exit: an AMQP receiver of the queue on the stored topic (from its first message).
  amqpConnection = rhea.create_container({ id: 'interop' }).connect({
    host: '127.0.0.1',
    port: server.ports.get('amqp/tcp')!,
    reconnect: false,
  });
  await new Promise((resolve, reject) => {
    amqpConnection.once('connection_open', resolve);
    amqpConnection.once('connection_error', reject);
  });
  const receiver = amqpConnection.open_receiver({ source: { address: `queue://${TOPIC}` } });
  receiver.on('message', ({ message }: { message: AmqpMessage }) => {
    const body = message.body as { typecode?: number; content?: Buffer } | Buffer | string;
    const payload =
      typeof body === 'string'
        ? Buffer.from(body)
        : Buffer.isBuffer(body)
          ? body
          : Buffer.from(body.content ?? []);
    const annotations = (message.message_annotations ?? {}) as Record<string, unknown>;
    const key = annotations['x-opt-kafka-key'];
    seen.amqp.push({
      topic: TOPIC,
      key: key === undefined ? null : Buffer.from(key as Buffer | string).toString('utf8'),
      payload,
      headers: Object.fromEntries(
        Object.entries((message.application_properties ?? {}) as Record<string, unknown>).map(([k, v]) => [
          k,
          Buffer.isBuffer(v) ? v.toString() : String(v),
        ]),
      ),
      timestamp: message.creation_time instanceof Date ? message.creation_time.getTime() : null,
      contentType: message.content_type ?? null,
    });
  });
  await new Promise((resolve) => receiver.once('receiver_open', resolve));

  // Entry: MQTT 5, QoS 1 (PUBACK once the record is stored), with a user property and a content type.
  mqttPublisher = await mqtt.connectAsync(mqttUrl, { protocolVersion: 5, reconnectPeriod: 0 });
  let before = Date.now();
  await mqttPublisher.publishAsync(mqttTopic.mqtt, payloadOf('mqtt'), {
    qos: 1,
    properties: { userProperties: headerOf('mqtt'), contentType: 'application/x-mqtt' },
  });
  sentAt.set('mqtt', { before, after: Date.now() });

  // Entry: KafkaJS, key = an MQTT topic under the binding, a header, a timestamp of its own.
  producer = kafka.producer();
  await producer.connect();
  before = Date.now();
  await producer.send({
    topic: TOPIC,
    acks: -1,
    messages: [
      {
        key: mqttTopic.kafka,
        value: payloadOf('kafka'),
        headers: { ...headerOf('kafka'), 'content-type': 'application/x-kafka' },
        timestamp: String(kafkaTimestamp),
      },
    ],
  });
  sentAt.set('kafka', { before, after: Date.now() });

  // Entry: rhea, a data section to address `sensors`, an application property, a content type.
  const sender = amqpConnection.open_sender({ target: { address: TOPIC } });
  await new Promise((resolve) => sender.once('sendable', resolve));
  before = Date.now();
  sender.send({
    body: rhea.message.data_section(payloadOf('amqp')),
    application_properties: headerOf('amqp'),
    content_type: 'application/x-amqp',
    durable: true,
  });
  await new Promise((resolve, reject) => {
    sender.once('accepted', resolve);
    sender.once('rejected', reject);
  });
  sentAt.set('amqp', { before, after: Date.now() });
});

afterAll(async () => {
  await consumer?.disconnect();
  await producer?.disconnect();
  await mqttSubscriber?.endAsync();
  await mqttPublisher?.endAsync();
  amqpConnection?.close();
  if (server) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.each(entries)('a message sent over %s', (entry) => {
  it('reaches MQTT subscribers, on the topic its key names (else the stored topic), with its headers as user properties', async () => {
    const message = await received(entry, 'mqtt');
    expect(message.topic).toBe(mqttTopic[entry]);
    expect(message.payload.equals(payloadOf(entry))).toBe(true);
    expect(message.headers).toMatchObject(headerOf(entry));
    expect(Object.keys(message.headers).some((k) => k.startsWith('amqp-'))).toBe(false);
    expect(message.contentType).toBe(`application/x-${entry}`);
  });

  it('reaches Kafka consumers of the stored topic with its key, headers and timestamp', async () => {
    const message = await received(entry, 'kafka');
    expect(message.topic).toBe(TOPIC);
    expect(message.payload.equals(payloadOf(entry))).toBe(true);
    expect(message.key).toBe(entry === 'amqp' ? null : mqttTopic[entry]);
    expect(message.headers).toMatchObject(headerOf(entry));
    expect(message.contentType).toBe(`application/x-${entry}`);
    if (entry === 'kafka') expect(message.timestamp).toBe(kafkaTimestamp);
    else {
      const { before, after } = sentAt.get(entry)!;
      expect(message.timestamp).toBeGreaterThanOrEqual(before);
      expect(message.timestamp).toBeLessThanOrEqual(after);
    }
  });

  it('reaches AMQP receivers of the address with its headers as application properties', async () => {
    const message = await received(entry, 'amqp');
    expect(message.payload.equals(payloadOf(entry))).toBe(true);
    expect(message.headers).toMatchObject(headerOf(entry));
    expect(message.contentType).toBe(`application/x-${entry}`);
    if (entry !== 'amqp') {
      expect(message.key).toBe(mqttTopic[entry]);
      if (entry === 'kafka') expect(message.timestamp).toBe(kafkaTimestamp);
      else {
        const { before, after } = sentAt.get(entry)!;
        expect(message.timestamp).toBeGreaterThanOrEqual(before);
        expect(message.timestamp).toBeLessThanOrEqual(after);
      }
    }
  });
});

/** The batches partition 0 of `topic` holds, as stored, fetched with the Kafka codec (Fetch v12). */
async function storedBatches(topic: string) {
  const socket = new Socket();
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(server.ports.get('kafka/tcp')!, '127.0.0.1', resolve);
  });
  const partitions = [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }];
  const request = {
    replicaId: -1,
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: 1 << 20,
    topics: [{ topic, partitions }],
  };
  socket.write(encodeRequest({ apiKey: 1, apiVersion: 12, correlationId: 1, clientId: 'interop' }, request));
  let buffered = Buffer.alloc(0);
  const frame = await new Promise<Buffer>((resolve, reject) => {
    socket.on('data', (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      if (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        resolve(buffered.subarray(4, 4 + buffered.readInt32BE(0)));
      }
    });
    socket.once('error', reject);
  });
  socket.destroy();
  const { response } = decodeResponse(frame, 1, 12) as { response: FetchResponse };
  return decodeRecordBatches(response.responses[0]!.partitions[0]!.records!);
}

describe('a stored topic whose compression.type is zstd', () => {
  it('holds what MQTT and AMQP write into it as zstd batches, which Kafka consumers read', async () => {
    const kafka = new Kafka({
      clientId: 'interop-zstd',
      brokers: [`127.0.0.1:${server.ports.get('kafka/tcp')}`],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: ZIPPED,
          configEntries: [{ name: 'compression.type', value: 'zstd' }],
        },
      ],
    });
    await admin.disconnect();

    // The binding hears of the change through the meta service: publish until a batch shows it.
    const payloads: string[] = [];
    let lastCodec: number | undefined;
    for (let i = 0; i < 100 && lastCodec !== Compression.zstd; i++) {
      payloads.push(`mqtt reading ${i} ${'x'.repeat(200)}`);
      await mqttPublisher.publishAsync(`${ZIPPED}/room`, payloads.at(-1)!, { qos: 1 });
      lastCodec = (await storedBatches(ZIPPED)).at(-1)?.compression;
    }
    expect(lastCodec).toBe(Compression.zstd);

    const sender = amqpConnection.open_sender({ target: { address: ZIPPED } });
    await new Promise((resolve) => sender.once('sendable', resolve));
    payloads.push(`amqp reading ${'y'.repeat(200)}`);
    sender.send({ body: rhea.message.data_section(Buffer.from(payloads.at(-1)!)), durable: true });
    await new Promise((resolve, reject) => {
      sender.once('accepted', resolve);
      sender.once('rejected', reject);
    });
    const batches = await storedBatches(ZIPPED);
    expect(batches.at(-1)!.compression).toBe(Compression.zstd);
    expect(Buffer.from(batches.at(-1)!.records[0]!.value!).toString()).toBe(payloads.at(-1));

    // librdkafka (kcat) reads every message, compressed or not, in order. (KafkaJS has no zstd.)
    const consumed = execFileSync(
      'kcat',
      [
        '-C',
        '-b',
        `127.0.0.1:${server.ports.get('kafka/tcp')}`,
        '-t',
        ZIPPED,
        '-o',
        'beginning',
        '-e',
        '-q',
        '-f',
        '%s\\n',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )
      .split('\n')
      .slice(0, -1);
    expect(consumed).toEqual(payloads);
  });
});
