import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { startServer, type KafkaServer } from './helpers/server.js';

/**
 * A TCP proxy in front of the broker that can lose responses: it forwards every request, but for
 * the next `dropProduceResponses` Produce responses it cuts the connection instead, so the
 * client retries a batch the broker has already stored. With `holdAfterDrop`, Produce requests
 * after such a cut wait for it before going on: the test acts before the retry arrives.
 */
class LossyProxy {
  dropProduceResponses = 0;
  dropped = 0;
  holdAfterDrop: Promise<void> | null = null;
  private produceHeld: Promise<void> | null = null;
  upstreamPort = 0;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor() {
    this.server = createServer((client) => this.connect(client));
  }

  port = 0;

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this.port;
  }

  private connect(client: Socket): void {
    const upstream = createConnection(this.upstreamPort, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    const apiKeys = new Map<number, number>();
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    // Requests go on in order: one held back holds back those behind it.
    let forwarded = Promise.resolve();
    frames(client, (frame) => {
      const apiKey = frame.readInt16BE(4);
      apiKeys.set(frame.readInt32BE(8), apiKey);
      const held = apiKey === 0 ? this.produceHeld : null;
      forwarded = forwarded.then(() => held).then(() => void upstream.write(frame));
    });
    frames(upstream, (frame) => {
      const apiKey = apiKeys.get(frame.readInt32BE(4));
      if (apiKey === 0 && this.dropProduceResponses > 0) {
        this.dropProduceResponses--;
        this.dropped++;
        this.produceHeld = this.holdAfterDrop;
        close();
        return;
      }
      client.write(frame);
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Calls `onFrame` with each whole size-prefixed frame (prefix included) read from `socket`. */
function frames(socket: Socket, onFrame: (frame: Buffer) => void): void {
  let pending = Buffer.alloc(0);
  socket.on('data', (data: Buffer) => {
    pending = Buffer.concat([pending, data]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const size = 4 + pending.readInt32BE(0);
      onFrame(pending.subarray(0, size));
      pending = pending.subarray(size);
    }
  });
}

let server: KafkaServer;
let proxy: LossyProxy;
let kafka: Kafka;

beforeAll(async () => {
  proxy = new LossyProxy();
  const proxyPort = await proxy.listen();
  // Clients learn the broker's address from Metadata: make it the proxy's.
  server = await startServer({ kafka: ['advertised_host = "127.0.0.1"', `advertised_port = ${proxyPort}`] });
  proxy.upstreamPort = server.port;
  kafka = new Kafka({
    brokers: [`127.0.0.1:${proxyPort}`],
    logLevel: logLevel.NOTHING,
    clientId: 'idempotence-test',
    retry: { retries: 10, initialRetryTime: 50 },
  });
}, 30_000);

afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

async function storedValues(topic: string): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  const high = (await admin.fetchTopicOffsets(topic))[0]!.high;
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values: string[] = [];
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        eachMessage: ({ message }) => {
          values.push(message.value!.toString());
          if (values.length === Number(high)) resolve();
          return Promise.resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  return values;
}

describe('idempotent producers through a connection that loses responses', () => {
  it('stores each KafkaJS batch once although the producer had to retry it', async () => {
    const topic = 'idempotent-kafkajs';
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const expected: string[] = [];
    for (let send = 0; send < 6; send++) {
      // Every other send loses its first response: the retry must not store the batch again.
      if (send % 2 === 1) proxy.dropProduceResponses = 1;
      const messages = Array.from({ length: 10 }, (_, i) => ({ value: `send-${send}-${i}` }));
      const [result] = await producer.send({ topic, acks: -1, messages });
      expect(result!.baseOffset).toBe(String(send * 10));
      expected.push(...messages.map((m) => m.value));
    }
    await producer.disconnect();
    expect(proxy.dropped).toBe(3);
    expect(await storedValues(topic)).toEqual(expected);
  }, 60_000);

  it('answers a retried batch with the append time Kafka gives a retry, under LogAppendTime and CreateTime', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [
        {
          topic: 'retried-append-time',
          configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }],
        },
        { topic: 'retried-create-time' },
      ],
    });
    await admin.disconnect();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const created = 1_700_000_000_000;
    const dropped = proxy.dropped;
    const sendLosingAnswer = async (topic: string) => {
      proxy.dropProduceResponses = 1;
      const [result] = await producer.send({
        topic,
        acks: -1,
        messages: [{ value: topic, timestamp: String(created) }],
      });
      return result!;
    };
    const stamped = await sendLosingAnswer('retried-append-time');
    const kept = await sendLosingAnswer('retried-create-time');
    await producer.disconnect();
    expect(proxy.dropped - dropped).toBe(2);
    // The time the broker stamped on the stored batch, as a consumer reads it.
    const consumer = kafka.consumer({ groupId: 'retried-append-time-reader', maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'retried-append-time', fromBeginning: true });
    const appended = await new Promise<string>((resolve, reject) => {
      consumer
        .run({ eachMessage: ({ message }) => Promise.resolve(resolve(message.timestamp)) })
        .catch(reject);
    });
    await consumer.disconnect();
    expect(Number(appended)).toBeGreaterThan(created);
    expect(stamped).toMatchObject({ baseOffset: '0', logAppendTime: appended });
    // Under CreateTime a retry carries the batch's latest timestamp, where a first answer has -1.
    expect(kept).toMatchObject({ baseOffset: '0', logAppendTime: String(created) });
  }, 60_000);

  it('stores a retried batch again when its topic was deleted and made again meanwhile, as Kafka does', async () => {
    const topic = 'idempotent-recreated';
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [{ value: 'before' }] });
      // The next batch is stored and its answer lost; its retry waits while the topic is made again.
      let release!: () => void;
      proxy.holdAfterDrop = new Promise<void>((resolve) => (release = resolve));
      proxy.dropProduceResponses = 1;
      const dropped = proxy.dropped;
      const sending = producer.send({ topic, acks: -1, messages: [{ value: 'retried' }] });
      while (proxy.dropped === dropped) await new Promise((resolve) => setTimeout(resolve, 20));
      await admin.deleteTopics({ topics: [topic] });
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }] });
      proxy.holdAfterDrop = null;
      release();
      // The new topic is empty: the retry is its first batch, not a duplicate of one it never had.
      const [result] = await sending;
      expect(result!.baseOffset).toBe('0');
      expect((await admin.fetchTopicOffsets(topic))[0]!.high).toBe('1');
      expect(await storedValues(topic)).toEqual(['retried']);
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  }, 60_000);

  it('accepts librdkafka idempotent producers, one producer id per run', async () => {
    // kcat gives up when its only broker connection drops, so this run loses nothing.
    const topic = 'idempotent-kcat';
    const produce = (lines: string[]) =>
      run(
        '/usr/bin/kcat',
        [
          '-b',
          `127.0.0.1:${server.port}`,
          '-t',
          topic,
          '-P',
          '-p',
          '0',
          '-X',
          'enable.idempotence=true',
          '-X',
          'linger.ms=5',
        ],
        { input: lines.join('\n') + '\n' },
      );
    const first = Array.from({ length: 500 }, (_, i) => `first-${i}`);
    const second = Array.from({ length: 500 }, (_, i) => `second-${i}`);
    await produce(first);
    await produce(second);
    expect(await storedValues(topic)).toEqual([...first, ...second]);
  }, 60_000);
});

describe('transactional producers', () => {
  // Transactions are not offered: a transactional id is refused at once, and the client says why.
  it('refuses a KafkaJS transactional producer with TRANSACTIONAL_ID_AUTHORIZATION_FAILED', async () => {
    const producer = kafka.producer({
      transactionalId: 'tx-kafkajs',
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    try {
      await expect(producer.transaction()).rejects.toMatchObject({
        type: 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED',
      });
    } finally {
      await producer.disconnect();
    }
  });

  it('fails librdkafka init_transactions at once instead of leaving its messages unsent', async () => {
    const produced = run(
      '/usr/bin/kcat',
      ['-b', `127.0.0.1:${server.port}`, '-t', 'transactional-kcat', '-P', '-X', 'transactional.id=tx-kcat'],
      { input: 'one\n' },
    );
    await expect(produced).rejects.toThrow(/init_transactions\(\).*Transactional Id authorization failed/);
  }, 60_000);
});
