import { connect } from 'node:net';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_CONFIG, adminApi } from './helpers/admin-api.js';
import { run } from './helpers/processes.js';
import { startServer, type KafkaServer } from './helpers/server.js';

const KCAT = '/usr/bin/kcat';
const PYTHON = '/usr/bin/python3';
let server: KafkaServer;

beforeAll(async () => {
  server = await startServer({
    kafka: ['sasl_enabled = true', 'group_initial_rebalance_delay_ms = 0'],
    extra: ADMIN_CONFIG,
  });
  // A user made through the admin API, stored by the server's user store.
  const api = await adminApi(server.httpUrl);
  const created = await api.call('POST', '/api/v1/users', { name: 'alice', password: 'alice-secret' });
  expect(created.status).toBe(201);
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

const kafkaAs = (sasl: SASLOptions | undefined) =>
  new Kafka({
    brokers: [`127.0.0.1:${server.port}`],
    logLevel: logLevel.NOTHING,
    clientId: 'sasl-test',
    sasl,
    retry: { retries: 0 },
  });

describe('SASL with KafkaJS', () => {
  for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
    it(`produces and consumes in a group after ${mechanism}`, async () => {
      const kafka = kafkaAs({ mechanism, username: 'alice', password: 'alice-secret' });
      const topic = `sasl-${mechanism}`;
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic, acks: -1, messages: [{ value: `hello over ${mechanism}` }] });
      await producer.disconnect();
      const consumer = kafka.consumer({ groupId: `sasl-group-${mechanism}`, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const value = await new Promise<string>((resolve, reject) => {
        consumer
          .run({ eachMessage: ({ message }) => Promise.resolve(resolve(message.value!.toString())) })
          .catch(reject);
      });
      await consumer.disconnect();
      expect(value).toBe(`hello over ${mechanism}`);
    }, 60_000);

    it(`refuses a wrong password with ${mechanism}`, async () => {
      const admin = kafkaAs({ mechanism, username: 'alice', password: 'guess' }).admin();
      await expect(admin.connect()).rejects.toThrow(/SASL|[Aa]uthentication/);
    });
  }

  it('refuses a client that skips SASL, and logs and counts failed attempts', async () => {
    const admin = kafkaAs(undefined).admin();
    // ApiVersions passes before authentication; Metadata does not.
    await expect(admin.connect().then(() => admin.listTopics())).rejects.toThrow();
    await admin.disconnect();
    await server.waitForLog((line) => line.msg === 'SASL authentication failed' && line.user === 'alice');
    await server.waitForMetric(
      /^robustmq_kafka_sasl_authentications_total\{[^}]*result="failure"[^}]*\} [1-9]/,
    );
    await server.waitForMetric(
      /^robustmq_kafka_sasl_authentications_total\{[^}]*mechanism="SCRAM-SHA-512"[^}]*result="success"[^}]*\} [1-9]/,
    );
  });
});

describe('SASL with kcat (librdkafka)', () => {
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) {
    it(`produces and consumes with ${mechanism}, and fails with a wrong password`, async () => {
      const auth = (password: string) => [
        '-X',
        'security.protocol=SASL_PLAINTEXT',
        '-X',
        `sasl.mechanisms=${mechanism}`,
        '-X',
        'sasl.username=alice',
        '-X',
        `sasl.password=${password}`,
      ];
      const broker = `127.0.0.1:${server.port}`;
      const topic = `kcat-sasl-${mechanism.toLowerCase()}`;
      await run(KCAT, ['-b', broker, ...auth('alice-secret'), '-t', topic, '-P'], { input: 'one\ntwo\n' });
      const { stdout } = await run(KCAT, [
        '-b',
        broker,
        ...auth('alice-secret'),
        '-t',
        topic,
        '-C',
        '-o',
        'beginning',
        '-e',
        '-q',
      ]);
      expect(stdout.trim().split('\n')).toEqual(['one', 'two']);
      await expect(
        run(KCAT, ['-b', broker, ...auth('wrong'), '-L', '-m', '5'], { timeoutMs: 20_000 }),
      ).rejects.toThrow(/[Aa]uthentication/);
    }, 60_000);
  }
});

describe('SASL with kafka-python (SaslHandshake v0 and raw SASL frames)', () => {
  const script = `
import json, sys
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
bootstrap, mechanism, password, topic = sys.argv[1:5]
auth = dict(security_protocol='SASL_PLAINTEXT', sasl_mechanism=mechanism,
            sasl_plain_username='alice', sasl_plain_password=password)
try:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks='all', **auth)
    producer.send(topic, b'python says hi').get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, consumer_timeout_ms=3000, **auth)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    print(json.dumps({'values': [m.value.decode() for m in consumer]}))
    consumer.close()
except KafkaError as error:
    print(json.dumps({'error': type(error).__name__}))
`;
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']) {
    it(`authenticates with ${mechanism} and refuses a wrong password`, async () => {
      const topic = `python-sasl-${mechanism.toLowerCase()}`;
      const broker = `127.0.0.1:${server.port}`;
      const ok = await run(PYTHON, ['-c', script, broker, mechanism, 'alice-secret', topic], {
        timeoutMs: 60_000,
      });
      expect(JSON.parse(ok.stdout)).toEqual({ values: ['python says hi'] });
      const bad = await run(PYTHON, ['-c', script, broker, mechanism, 'wrong', topic], { timeoutMs: 60_000 });
      expect(JSON.parse(bad.stdout)).toHaveProperty('error');
    }, 90_000);
  }
});

describe('frames before authentication', () => {
  it('closes a client that sends a large frame before SASL, and takes large ones after it', async () => {
    const size = 16 * 1024 * 1024;
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    // A Metadata request header announcing 16 MiB, then the bytes, as fast as the broker takes them.
    const header = Buffer.alloc(12);
    header.writeInt32BE(size, 0);
    header.writeInt16BE(3, 4);
    header.writeInt16BE(1, 6);
    socket.write(header);
    const chunk = Buffer.alloc(256 * 1024);
    let sent = 8;
    let open = true;
    void closed.then(() => (open = false));
    while (open && sent < size) {
      if (!socket.write(chunk)) {
        await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
      }
      sent += chunk.length;
    }
    await closed;
    expect(sent).toBeLessThan(size);
    await server.waitForLog((line) => line.reason === 'frame_size' && line.authenticated === false);

    // Authenticated, a client sends what max_frame_size allows.
    const producer = kafkaAs({ mechanism: 'plain', username: 'alice', password: 'alice-secret' }).producer();
    await producer.connect();
    await producer.send({ topic: 'sasl-large', messages: [{ value: Buffer.alloc(2 * 1024 * 1024, 1) }] });
    await producer.disconnect();
  }, 60_000);
});
