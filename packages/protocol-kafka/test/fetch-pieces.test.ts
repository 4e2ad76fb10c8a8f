import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeRecordBatches,
  decodeResponse,
  encodeRecordBatch,
  type CreateTopicsResponse,
  type FetchResponse,
  type ProduceResponse,
} from '../src/codec/index.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

// A Fetch sends a partition's stored batches as separate pieces of the response (large ones by
// reference): clients must read exactly the bytes that were produced.

const KCAT = '/usr/bin/kcat';
const TOPIC = 'pieces';
let server: KafkaServer;
let client: RawClient;

/** Batches of mixed sizes, large (sent by reference) and small (copied into the frame) in turn. */
const BATCHES = Array.from({ length: 8 }, (_, b) =>
  Array.from({ length: b % 2 === 0 ? 3 : 1 }, (_, r) => ({
    key: `key-${b}-${r}`,
    value: `${b}.${r}:${String.fromCharCode(97 + b).repeat(b % 2 === 0 ? 20_000 + r : 10 + r)}`,
    headers: { batch: String(b) },
  })),
);
const MESSAGES = BATCHES.flat();
const produced: Buffer[] = [];

beforeAll(async () => {
  server = await startServer();
  client = await RawClient.open(server.port);
  const created = await client.request<CreateTopicsResponse>(19, 7, {
    topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 5000,
  });
  expect(created.topics[0]!.errorCode).toBe(0);
  for (const records of BATCHES) {
    const batch = await encodeRecordBatch({
      records: records.map(({ key, value, headers }) => ({
        key,
        value,
        headers: [{ key: 'batch', value: headers.batch }],
      })),
    });
    const response = await client.request<ProduceResponse>(0, 9, {
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: batch }] }],
    });
    expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    produced.push(batch);
  }
}, 30_000);

afterAll(async () => {
  client?.close();
  await server?.stop();
});

describe('a Fetch whose records come in pieces', () => {
  it('carries the produced batches byte for byte, in every Fetch version', async () => {
    for (let version = 4; version <= 12; version++) {
      const fetched = await client.request<FetchResponse>(1, version, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        topics: [
          { topic: TOPIC, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] },
        ],
      });
      const records = fetched.responses[0]!.partitions[0]!.records!;
      expect(records.length, `v${version}`).toBe(produced.reduce((total, batch) => total + batch.length, 0));
      let at = 0;
      let offset = 0;
      for (const batch of produced) {
        const served = records.subarray(at, at + batch.length);
        // The broker sets the base offset and the leader epoch; the length, and from the magic byte
        // on (the CRC and what it covers), the bytes are the producer's.
        expect(served.readBigInt64BE(0)).toBe(BigInt(offset));
        expect(served.subarray(8, 12).equals(batch.subarray(8, 12))).toBe(true);
        expect(served.subarray(16).equals(batch.subarray(16)), `v${version} batch at ${offset}`).toBe(true);
        at += batch.length;
        offset += decodeRecordBatches(batch)[0]!.records.length;
      }
    }
  });

  it('round-trips through KafkaJS', async () => {
    const kafka = new Kafka({
      brokers: [`127.0.0.1:${server.port}`],
      logLevel: logLevel.NOTHING,
      clientId: 'pieces-test',
    });
    const consumer = kafka.consumer({ groupId: 'pieces-group', sessionTimeout: 10_000 });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      const seen: Array<{ key: string; value: string; headers: Record<string, string>; offset: string }> = [];
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: ({ message }) => {
              seen.push({
                key: message.key!.toString(),
                value: message.value!.toString(),
                headers: { batch: String(message.headers!.batch) },
                offset: message.offset,
              });
              if (seen.length === MESSAGES.length) resolve();
              return Promise.resolve();
            },
          })
          .catch(reject);
      });
      expect(seen).toEqual(MESSAGES.map((message, i) => ({ ...message, offset: String(i) })));
    } finally {
      await consumer.disconnect();
    }
  }, 60_000);

  it('round-trips through kcat (librdkafka)', async () => {
    const { stdout } = await run(KCAT, [
      '-b',
      `127.0.0.1:${server.port}`,
      '-t',
      TOPIC,
      '-C',
      '-o',
      'beginning',
      '-e',
      '-f',
      '%o|%k|%h|%s\\n',
    ]);
    expect(stdout.trim().split('\n')).toEqual(
      MESSAGES.map(({ key, value, headers }, i) => `${i}|${key}|batch=${headers.batch}|${value}`),
    );
  }, 60_000);
});

describe('buffers lent to storage for Fetch', () => {
  const MiB = 1024 * 1024;

  async function fill(topic: string, byte: number, batches: number): Promise<void> {
    const created = await client.request<CreateTopicsResponse>(19, 7, {
      topics: [{ name: topic, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 5000,
    });
    expect(created.topics[0]!.errorCode).toBe(0);
    const batch = await encodeRecordBatch({
      records: Array.from({ length: 8 }, () => ({ value: Buffer.alloc(128 * 1024, byte) })),
    });
    for (let i = 0; i < batches; i++) {
      const response = await client.request<ProduceResponse>(0, 9, {
        acks: 1,
        timeoutMs: 5000,
        topicData: [{ name: topic, partitionData: [{ index: 0, records: batch }] }],
      });
      expect(response.responses[0]!.partitionResponses[0]!.errorCode).toBe(0);
    }
  }

  function fetchFrom(topic: string, partitionMaxBytes: number) {
    return {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: partitionMaxBytes,
      isolationLevel: 0,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes }] }],
    };
  }

  /** Every record of every batch (CRC checked) holds only `byte`; returns the bytes seen. */
  function expectOnly(records: Buffer, byte: number): number {
    let seen = 0;
    for (const batch of decodeRecordBatches(records)) {
      for (const record of batch.records) {
        expect(record.value!.every((b) => b === byte)).toBe(true);
        seen += record.value!.length;
      }
    }
    return seen;
  }

  it('keeps a response intact while it waits in the socket, though other fetches read meanwhile', async () => {
    await fill('lent-slow', 0xaa, 16);
    await fill('lent-busy', 0xbb, 15);
    const slow = await RawClient.open(server.port);
    const busy = await RawClient.open(server.port);
    try {
      // The slow client does not read: most of its 16 MiB response waits in the broker.
      slow.socket.pause();
      slow.send(1, 12, fetchFrom('lent-slow', 16 * MiB));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Meanwhile other fetches of as much read into lent buffers: not into the one the waiting
      // response uses, whose end (still unsent) they would overwrite.
      for (let i = 0; i < 3; i++) {
        const fetched = await busy.request<FetchResponse>(1, 12, fetchFrom('lent-busy', 16 * MiB));
        expect(expectOnly(fetched.responses[0]!.partitions[0]!.records!, 0xbb)).toBeGreaterThan(8 * MiB);
      }
      slow.socket.resume();
      const frame = await slow.nextFrame();
      const response = decodeResponse(frame, 1, 12).response as FetchResponse;
      expect(expectOnly(response.responses[0]!.partitions[0]!.records!, 0xaa)).toBeGreaterThan(8 * MiB);
    } finally {
      slow.close();
      busy.close();
    }
  }, 60_000);
});
