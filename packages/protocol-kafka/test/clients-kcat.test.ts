import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPRESSION_NAMES,
  decodeRecordBatches,
  type DeleteRecordsResponse,
  type FetchResponse,
} from '../src/codec/index.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type KafkaServer } from './helpers/server.js';

const KCAT = '/usr/bin/kcat';
let server: KafkaServer;

beforeAll(async () => {
  server = await startServer();
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

const broker = () => `127.0.0.1:${server.port}`;

/** Consumes a topic from the beginning to its end with kcat, one line per record in `format`. */
async function consume(topic: string, format: string, ...options: string[]): Promise<string[]> {
  const { stdout } = await run(KCAT, [
    '-b',
    broker(),
    '-t',
    topic,
    '-C',
    '-o',
    'beginning',
    '-e',
    ...options,
    '-f',
    format,
  ]);
  return stdout.trim().split('\n');
}

/** Runs `task` with a raw client of the server, closed after. */
async function withRawClient<T>(task: (raw: RawClient) => Promise<T>): Promise<T> {
  const raw = await RawClient.open(server.port);
  try {
    return await task(raw);
  } finally {
    raw.close();
  }
}

async function createTopic(
  name: string,
  numPartitions: number,
  configs: Array<{ name: string; value: string }> = [],
): Promise<void> {
  await withRawClient((raw) =>
    raw.request(19, 7, {
      topics: [{ name, numPartitions, replicationFactor: 1, assignments: [], configs }],
      timeoutMs: 5000,
      validateOnly: false,
    }),
  );
}

/** The batches partition 0 of `topic` holds, as stored (up to 1 MiB). */
async function storedBatches(topic: string) {
  const fetched = await withRawClient((raw) =>
    raw.request<FetchResponse>(1, 12, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1 << 20 }] }],
    }),
  );
  return decodeRecordBatches(fetched.responses[0]!.partitions[0]!.records!);
}

describe('kcat (librdkafka)', () => {
  for (const codec of ['none', 'gzip', 'snappy', 'lz4', 'zstd']) {
    it(`produces and consumes with compression ${codec}`, async () => {
      const topic = `kcat-${codec}`;
      const lines = Array.from({ length: 50 }, (_, i) => `key${i}:${codec} value ${i} ${'x'.repeat(i * 10)}`);
      await run(
        KCAT,
        ['-b', broker(), '-t', topic, '-P', '-K', ':', '-z', codec, '-H', 'origin=kcat', '-X', 'acks=all'],
        {
          input: lines.join('\n') + '\n',
        },
      );
      const consumed = await consume(topic, '%k|%s|%h|%o\\n');
      expect(consumed).toHaveLength(50);
      consumed.forEach((line, i) => {
        expect(line).toBe(`key${i}|${codec} value ${i} ${'x'.repeat(i * 10)}|origin=kcat|${i}`);
      });
      // The batches librdkafka wrote are stored compressed as sent, and our codec reads them.
      const batches = await storedBatches(topic);
      // librdkafka sends a batch uncompressed when compressing would not make it smaller.
      const codecs = new Set(batches.map((b) => COMPRESSION_NAMES[b.compression]));
      expect(codecs.has(codec)).toBe(true);
      expect([...codecs].every((c) => c === codec || c === 'none')).toBe(true);
      const records = batches.flatMap((b) => b.records);
      expect(records.map((r) => `${r.key!.toString()}:${r.value!.toString()}`)).toEqual(lines);
      expect(records[0]!.headers).toEqual([{ key: 'origin', value: Buffer.from('kcat') }]);
    }, 60_000);
  }

  for (const [target, stored] of [
    ['zstd', 'zstd'],
    ['uncompressed', 'none'],
  ] as const) {
    it(`stores batches compressed as the topic's compression.type=${target} asks`, async () => {
      const topic = `kcat-topic-${target}`;
      await createTopic(topic, 1, [{ name: 'compression.type', value: target }]);
      const sent: string[] = [];
      for (const codec of ['none', 'gzip', 'lz4', 'snappy']) {
        const lines = Array.from({ length: 20 }, (_, i) => `k${i}:${codec} ${i} ${'y'.repeat(200)}`);
        await run(KCAT, ['-b', broker(), '-t', topic, '-P', '-K', ':', '-z', codec, '-X', 'acks=all'], {
          input: lines.join('\n') + '\n',
        });
        sent.push(...lines);
      }
      const batches = await storedBatches(topic);
      expect(new Set(batches.map((b) => COMPRESSION_NAMES[b.compression]))).toEqual(new Set([stored]));
      const records = batches.flatMap((b) => b.records);
      expect(records.map((r) => `${r.key!.toString()}:${r.value!.toString()}`)).toEqual(sent);
      expect(records.map((r) => r.offset)).toEqual(sent.map((_, i) => i));
      expect(await consume(topic, '%k:%s\\n')).toEqual(sent);
    }, 60_000);
  }

  it('produces idempotently (InitProducerId, sequence numbers) without duplicates', async () => {
    const topic = 'kcat-idempotent';
    const lines = Array.from({ length: 200 }, (_, i) => `m${i}`);
    await run(KCAT, ['-b', broker(), '-t', topic, '-P', '-X', 'enable.idempotence=true', '-z', 'zstd'], {
      input: lines.join('\n') + '\n',
    });
    expect(await consume(topic, '%s\\n')).toEqual(lines);
  }, 60_000);

  it('lists the broker and topics with -L', async () => {
    await run(KCAT, ['-b', broker(), '-t', 'kcat-listed', '-P'], { input: 'one\n' });
    const { stdout } = await run(KCAT, ['-b', broker(), '-L', '-t', 'kcat-listed']);
    expect(stdout).toContain(`broker 1 at 127.0.0.1:${server.port}`);
    expect(stdout).toMatch(/topic "kcat-listed" with 1 partitions/);
  });

  it('reads from an offset and by timestamp', async () => {
    const topic = 'kcat-seek';
    await run(KCAT, ['-b', broker(), '-t', topic, '-P'], {
      input: Array.from({ length: 10 }, (_, i) => `m${i}`).join('\n') + '\n',
    });
    const { stdout } = await run(KCAT, ['-b', broker(), '-t', topic, '-C', '-o', '7', '-e', '-f', '%s\\n']);
    expect(stdout.trim().split('\n')).toEqual(['m7', 'm8', 'm9']);
    const fromTail = await run(KCAT, ['-b', broker(), '-t', topic, '-C', '-o', '-2', '-e', '-f', '%s\\n']);
    expect(fromTail.stdout.trim().split('\n')).toEqual(['m8', 'm9']);
    const byTime = await run(KCAT, ['-b', broker(), '-t', topic, '-C', '-o', 's@0', '-e', '-f', '%s\\n']);
    expect(byTime.stdout.trim().split('\n')).toHaveLength(10);
  }, 60_000);

  it('tells each client of a wildcard listener the address it connected to, not that of the first client', async () => {
    // Bound to every address (the server's default bind), without advertised_host: a client on
    // this host reaches it at 127.0.0.1, another through a second address (127.0.0.2 here, the
    // network interface's for a client elsewhere), which is the only one that client can use.
    const wildcard = await startServer({ kafka: ['host = "0.0.0.0"'] });
    try {
      const listed = async (host: string) =>
        (await run(KCAT, ['-b', `${host}:${wildcard.port}`, '-L'])).stdout.match(/broker 1 at (\S+)/)![1];
      expect(await listed('127.0.0.1')).toBe(`127.0.0.1:${wildcard.port}`);
      expect(await listed('127.0.0.2')).toBe(`127.0.0.2:${wildcard.port}`);
      expect(await listed('127.0.0.1')).toBe(`127.0.0.1:${wildcard.port}`);
    } finally {
      await wildcard.stop();
    }
  }, 60_000);

  it('keeps a Fetch within fetch.max.bytes past the first batch, which librdkafka enforces', async () => {
    const topic = 'kcat-fetch-max-bytes';
    await createTopic(topic, 2);
    // Batches of one 600 kB record: two of them are more than the consumer's 1 MB response limit.
    const big = (partition: number, i: number) => `${partition}-${i}-${'x'.repeat(600_000)}`;
    for (const partition of [0, 1]) {
      await run(KCAT, ['-b', broker(), '-t', topic, '-p', String(partition), '-P', '-X', 'linger.ms=0'], {
        input: [0, 1, 2].map((i) => big(partition, i)).join('\n') + '\n',
      });
    }
    // librdkafka drops a connection whose response is above receive.message.max.bytes, which it
    // requires to be at least fetch.max.bytes + 512: a larger response is never read.
    const { stdout, stderr } = await run(
      KCAT,
      [
        '-b',
        broker(),
        '-t',
        topic,
        '-C',
        '-o',
        'beginning',
        '-e',
        '-X',
        'fetch.max.bytes=1000000',
        '-X',
        'receive.message.max.bytes=1000512',
        '-f',
        '%p %o %S\\n',
      ],
      { timeoutMs: 20_000 },
    );
    expect(stderr).not.toContain('Invalid response size');
    expect(stdout.trim().split('\n').sort()).toEqual(
      ['0 0', '0 1', '0 2', '1 0', '1 1', '1 2'].map((line) => `${line} ${big(0, 0).length}`),
    );
  }, 60_000);

  it('resets a consumer whose offset fell below the log start (auto.offset.reset)', async () => {
    const topic = 'kcat-below-start';
    await run(KCAT, ['-b', broker(), '-t', topic, '-P', '-X', 'acks=all'], {
      input: Array.from({ length: 20 }, (_, i) => `m${i}`).join('\n') + '\n',
    });
    const raw = await RawClient.open(server.port);
    try {
      const deleted = await raw.request<DeleteRecordsResponse>(21, 2, {
        topics: [{ name: topic, partitions: [{ partitionIndex: 0, offset: 10n }] }],
        timeoutMs: 5000,
      });
      expect(deleted.topics[0]!.partitions[0]).toMatchObject({ errorCode: 0, lowWatermark: 10n });
    } finally {
      raw.close();
    }
    // Offset 2 is gone: librdkafka reads the OFFSET_OUT_OF_RANGE answer, starts over at the log start.
    const { stdout } = await run(KCAT, [
      '-b',
      broker(),
      '-t',
      topic,
      '-C',
      '-o',
      '2',
      '-e',
      '-X',
      'auto.offset.reset=earliest',
      '-f',
      '%o %s\\n',
    ]);
    expect(stdout.trim().split('\n')).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 10} m${i + 10}`));
  }, 60_000);
});
