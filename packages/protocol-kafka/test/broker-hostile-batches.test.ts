import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Compression,
  computeBatchCrc,
  encodeRecordBatch,
  KafkaErrorCode,
  type CreatePartitionsResponse,
  type DeleteRecordsResponse,
  type ListOffsetsResponse,
  type ProduceResponse,
} from '../src/codec/index.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;
let client: RawClient;
let producer: Producer;
let admin: Admin;

// The MQTT plugin is loaded: it takes every record the Kafka plugin stores, as in a default node.
beforeAll(async () => {
  server = await startServer({ mqtt: true });
  client = await RawClient.open(server.port);
  const kafka = new Kafka({ brokers: [`127.0.0.1:${server.port}`], logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  const topics = ['hostile-counts', 'hostile-compressed', 'stored-garbage', 'stored-bomb'];
  await admin.createTopics({ topics: topics.map((topic) => ({ topic })) });
  producer = kafka.producer();
  await producer.connect();
}, 30_000);

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  client?.close();
  await server?.stop();
});

/** A one-record batch with header fields overwritten and the CRC made valid again. */
async function batch(
  fields: { recordCount?: number; lastOffsetDelta?: number; attributes?: number },
  compression: Compression = Compression.none,
  timestamp?: number,
): Promise<Buffer> {
  const bytes = await encodeRecordBatch({
    records: [{ key: 'k', value: 'hostile', timestamp }],
    compression,
  });
  if (fields.lastOffsetDelta !== undefined) bytes.writeInt32BE(fields.lastOffsetDelta, 23);
  if (fields.recordCount !== undefined) bytes.writeInt32BE(fields.recordCount, 57);
  if (fields.attributes !== undefined) bytes.writeInt16BE(fields.attributes, 21);
  bytes.writeUInt32BE(computeBatchCrc(bytes), 17);
  return bytes;
}

async function produce(topic: string, records: Buffer, partition = 0) {
  const response = await client.request<ProduceResponse>(0, 9, {
    acks: -1,
    timeoutMs: 5000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  });
  return response.responses[0]!.partitionResponses[0]!;
}

async function latestOffset(topic: string): Promise<bigint | undefined> {
  const response = await client.request<ListOffsetsResponse>(2, 7, {
    replicaId: -1,
    isolationLevel: 0,
    topics: [{ name: topic, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n }] }],
  });
  return response.topics[0]!.partitions[0]!.offset;
}

/** How long a KafkaJS send to `topic` takes: the broker serves other clients meanwhile. */
async function sendTime(topic: string): Promise<number> {
  const started = Date.now();
  await producer.send({ topic, messages: [{ value: 'after' }] });
  return Date.now() - started;
}

describe('batches whose headers lie', () => {
  it('refuses a record count that disagrees with the offsets or the records, and control batches', async () => {
    const topic = 'hostile-counts';
    expect((await produce(topic, await batch({}))).errorCode).toBe(0);
    const before = await latestOffset(topic);
    const lies = [
      await batch({ recordCount: 0x7fffffff }),
      await batch({ recordCount: 0, lastOffsetDelta: -1 }),
      // Consistent with the offsets, but the batch carries one record.
      await batch({ recordCount: 1 << 28, lastOffsetDelta: (1 << 28) - 1 }),
      // A transaction marker: only a broker writes those.
      await batch({ attributes: 0x20 }),
    ];
    for (const lie of lies) {
      const answer = await produce(topic, lie);
      expect(answer.errorCode).toBe(KafkaErrorCode.invalidRecord);
      expect(answer.errorMessage).toBeTruthy();
    }
    expect(await latestOffset(topic)).toBe(before);
    expect(await sendTime(topic)).toBeLessThan(2000);
  }, 30_000);

  it("answers the refusals Kafka's log makes with the log start offset, and a corrupt batch with -1", async () => {
    const topic = 'hostile-log-start';
    await admin.createTopics({ topics: [{ topic }] });
    for (let i = 0; i < 2; i++) expect((await produce(topic, await batch({}))).errorCode).toBe(0);
    const deleted = await client.request<DeleteRecordsResponse>(21, 2, {
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 1n }] }],
      timeoutMs: 5000,
    });
    expect(deleted.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 1n });
    const refused = async (records: Buffer) => {
      const { errorCode, logStartOffset } = await produce(topic, records);
      return { errorCode, logStartOffset };
    };
    const byLog = { errorCode: KafkaErrorCode.invalidRecord, logStartOffset: 1n };
    expect(await refused(await batch({ recordCount: 0x7fffffff }))).toEqual(byLog);
    expect(await refused(await batch({ recordCount: 1 << 28, lastOffsetDelta: (1 << 28) - 1 }))).toEqual(
      byLog,
    );
    expect(await refused(await batch({ attributes: 0x20 }))).toEqual(byLog);
    // Refused before the log sees them, as Kafka does: a CRC mismatch, a wrong magic.
    const corrupt = await batch({});
    corrupt[corrupt.length - 1]! ^= 1;
    expect(await refused(corrupt)).toEqual({ errorCode: KafkaErrorCode.corruptMessage, logStartOffset: -1n });
    const magic1 = await batch({});
    magic1[16] = 1;
    expect(await refused(magic1)).toEqual({ errorCode: KafkaErrorCode.invalidRecord, logStartOffset: -1n });
  });

  it('names a partition the topic lacks, or a topic that does not exist, before looking at the records', async () => {
    const corrupt = await batch({});
    corrupt[corrupt.length - 1]! ^= 1;
    const lie = await batch({ recordCount: 0x7fffffff });
    for (const records of [corrupt, lie, Buffer.from('not a batch'), await batch({})]) {
      expect((await produce('hostile-counts', records, 7)).errorCode).toBe(
        KafkaErrorCode.unknownTopicOrPartition,
      );
      expect((await produce('hostile-counts', records, -1)).errorCode).toBe(
        KafkaErrorCode.unknownTopicOrPartition,
      );
      expect((await produce('hostile-nowhere', records)).errorCode).toBe(
        KafkaErrorCode.unknownTopicOrPartition,
      );
    }
    // The partition the topic has still tells a corrupt batch from a good one.
    expect((await produce('hostile-counts', corrupt)).errorCode).toBe(KafkaErrorCode.corruptMessage);
    // A partition added a moment ago takes records at once.
    const grown = await client.request<CreatePartitionsResponse>(37, 3, {
      topics: [{ name: 'hostile-counts', count: 8, assignments: null }],
      timeoutMs: 5000,
      validateOnly: false,
    });
    expect(grown.results[0]!.errorCode).toBe(0);
    expect((await produce('hostile-counts', await batch({}), 7)).errorCode).toBe(0);
    expect((await produce('hostile-counts', corrupt, 7)).errorCode).toBe(KafkaErrorCode.corruptMessage);
  });

  it('refuses, on a topic recompressing to its compression.type, records that cannot be recompressed', async () => {
    const topic = 'hostile-recompressed';
    await admin.createTopics({
      topics: [{ topic, configEntries: [{ name: 'compression.type', value: 'zstd' }] }],
    });
    expect((await produce(topic, await batch({}, Compression.gzip))).errorCode).toBe(0);
    const before = await latestOffset(topic);
    const garbled = await batch({}, Compression.gzip);
    garbled.fill(0x5a, 61);
    garbled.writeUInt32BE(computeBatchCrc(garbled), 17);
    expect(await produce(topic, garbled)).toMatchObject({
      errorCode: KafkaErrorCode.corruptMessage,
      logStartOffset: 0n,
    });
    // Consistent with its offsets, but the compressed records hold one, not two.
    const miscounted = await batch({ recordCount: 2, lastOffsetDelta: 1 }, Compression.gzip);
    expect(await produce(topic, miscounted)).toMatchObject({
      errorCode: KafkaErrorCode.invalidRecord,
      logStartOffset: 0n,
    });
    expect(await latestOffset(topic)).toBe(before);
    expect(await sendTime(topic)).toBeLessThan(2000);
  }, 30_000);

  it('stays responsive when a compressed batch claims far more records than it holds', async () => {
    const topic = 'hostile-compressed';
    // Produce does not decompress, so this is stored; its records go to the router as they are.
    const answer = await produce(
      topic,
      await batch({ recordCount: 1 << 28, lastOffsetDelta: (1 << 28) - 1 }, Compression.gzip),
    );
    expect(answer.errorCode).toBe(0);
    expect(await sendTime(topic)).toBeLessThan(2000);
    await server.waitForLog((line) => line.msg === 'stored Kafka records not published on the router');
  }, 60_000);
});

/** A batch whose compressed records are replaced by `payload`, with a valid CRC: Produce stores it. */
async function forged(compression: Compression, payload: Buffer, timestamp: number): Promise<Buffer> {
  const real = await batch({}, compression, timestamp);
  const bytes = Buffer.concat([real.subarray(0, 61), payload]);
  bytes.writeInt32BE(bytes.length - 12, 8);
  bytes.writeUInt32BE(computeBatchCrc(bytes), 17);
  return bytes;
}

/** A zstd frame without a content size whose 1.875 GiB window the decoder moves once per block. */
function zstdWindowBomb(blocks: number): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 << 3) | 7])];
  for (let i = 0; i < blocks; i++) parts.push(Buffer.from([(i === blocks - 1 ? 1 : 0) | 2 | 8, 0, 0, 0x41]));
  return Buffer.concat(parts);
}

describe('stored batches a timestamp lookup cannot read', () => {
  it('answers offsets for times around a batch whose compressed records are garbage', async () => {
    const topic = 'stored-garbage';
    const t0 = Date.now() - 60_000;
    await producer.send({ topic, messages: [{ value: 'first', timestamp: String(t0) }] });
    const garbage = await forged(Compression.gzip, Buffer.from('not gzip at all'), t0 + 1000);
    expect((await produce(topic, garbage)).errorCode).toBe(0);
    await producer.send({ topic, messages: [{ value: 'third', timestamp: String(t0 + 2000) }] });
    const at = async (timestamp: number) =>
      (await admin.fetchTopicOffsetsByTimestamp(topic, timestamp))[0]!.offset;
    expect(await at(t0 - 1)).toBe('0');
    // The unreadable batch is where a consumer starts: it cannot be looked into.
    expect(await at(t0 + 500)).toBe('1');
    // Its latest timestamp is earlier, so the lookup goes past it without reading it.
    expect(await at(t0 + 1500)).toBe('2');
  }, 30_000);

  it('answers offsets for times at once when a stored batch is a decompression bomb', async () => {
    const topic = 'stored-bomb';
    const t0 = Date.now() - 60_000;
    expect((await produce(topic, await forged(Compression.zstd, zstdWindowBomb(8), t0))).errorCode).toBe(0);
    const started = Date.now();
    const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, t0 - 1);
    expect(offsets[0]!.offset).toBe('0');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await sendTime(topic)).toBeLessThan(2000);
  }, 60_000);
});
