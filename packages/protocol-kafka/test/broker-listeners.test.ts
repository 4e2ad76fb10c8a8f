import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
let dir: string;
let cert: string;
let tlsPort: number;

beforeAll(async () => {
  const generated = await generate([{ name: 'commonName', value: 'robustmq-test' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  cert = generated.cert;
  dir = mkdtempSync(join(tmpdir(), 'robustmq-kafka-tls-'));
  writeFileSync(join(dir, 'cert.pem'), cert);
  writeFileSync(join(dir, 'key.pem'), generated.private);
  server = await startServer({
    kafka: [
      'listeners = ["tcp", "tls"]',
      'tls_port = 0',
      `tls_cert = ${JSON.stringify(join(dir, 'cert.pem'))}`,
      `tls_key = ${JSON.stringify(join(dir, 'key.pem'))}`,
    ],
  });
  const ready = server.logs.find((l) => l.msg === 'node ready')!;
  const tls = (ready.listeners as string[]).find((l) => l.startsWith('kafka/tls:'))!;
  tlsPort = Number(tls.split(':').pop());
}, 30_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('listeners', () => {
  it('serves Kafka over TLS, advertising the TLS port to TLS clients', async () => {
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${tlsPort}`],
      ssl: { ca: [cert] },
      logLevel: logLevel.NOTHING,
      clientId: 'tls-client',
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic: 'over-tls' }] });
      const cluster = await admin.describeCluster();
      expect(cluster.brokers).toEqual([expect.objectContaining({ host: '127.0.0.1', port: tlsPort })]);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: 'over-tls', messages: [{ value: 'secret' }] });
      await producer.disconnect();
      expect(await admin.fetchTopicOffsets('over-tls')).toEqual([expect.objectContaining({ high: '1' })]);
    } finally {
      await admin.disconnect();
    }
  }, 30_000);

  it('gives advertised_port to clients of the tcp listener only, as it announces to the cluster', async () => {
    // The port a NAT in front of the tcp listener forwards; nothing listens on it here.
    const natPort = 1;
    const natted = await startServer({
      kafka: [
        'listeners = ["tcp", "tls"]',
        'tls_port = 0',
        `tls_cert = ${JSON.stringify(join(dir, 'cert.pem'))}`,
        `tls_key = ${JSON.stringify(join(dir, 'key.pem'))}`,
        `advertised_port = ${natPort}`,
      ],
    });
    const ready = natted.logs.find((l) => l.msg === 'node ready')!;
    const port = Number(
      (ready.listeners as string[])
        .find((l) => l.startsWith('kafka/tls:'))!
        .split(':')
        .pop(),
    );
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${port}`],
      ssl: { ca: [cert] },
      logLevel: logLevel.NOTHING,
      clientId: 'natted-tls-client',
      retry: { retries: 2 },
    });
    const admin = kafka.admin();
    try {
      await admin.connect();
      expect((await admin.describeCluster()).brokers).toEqual([
        expect.objectContaining({ host: '127.0.0.1', port }),
      ]);
      // Creating a topic goes to the controller at the address Metadata gave.
      await admin.createTopics({ topics: [{ topic: 'natted-tls' }] });
      expect(await admin.listTopics()).toContain('natted-tls');
    } finally {
      await admin.disconnect();
      await natted.stop();
    }
  }, 60_000);

  it('counts connections, requests by API, records and bytes per listener', async () => {
    await server.waitForMetric(
      /^robustmq_kafka_requests_total\{.*listener="tls".*api="Produce".*\} 1$/,
      5000,
    );
    await server.waitForMetric(
      /^robustmq_kafka_requests_total\{.*listener="tls".*api="ApiVersions".*\} \d+$/,
    );
    const received = await server.waitForMetric(
      /^robustmq_kafka_bytes_received_total\{.*listener="tls".*\} \d+$/,
    );
    expect(Number(received.split(' ').pop())).toBeGreaterThan(100);
    const sent = await server.waitForMetric(/^robustmq_kafka_bytes_sent_total\{.*listener="tls".*\} \d+$/);
    expect(Number(sent.split(' ').pop())).toBeGreaterThan(100);
    await server.waitForMetric(/^robustmq_kafka_records_received_total\{.*listener="tls".*\} 1$/);
    await server.waitForMetric(/^robustmq_kafka_connections\{.*listener="tls".*\} 0$/);
  });
});
