import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { startServer, type KafkaServer } from './helpers/server.js';

let server: KafkaServer;

beforeAll(async () => {
  server = await startServer();
}, 30_000);

afterAll(async () => {
  await server?.stop();
});

describe('kafka-python (Debian python3-kafka)', () => {
  it('produces, consumes and administers topics', async () => {
    const script = join(import.meta.dirname, 'helpers/kafka_python_scenario.py');
    const { stdout } = await run('/usr/bin/python3', [script, `127.0.0.1:${server.port}`], {
      timeoutMs: 90_000,
    });
    const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      topics: string[];
      records: Array<{
        partition: number;
        offset: number;
        key: string;
        value: string;
        timestamp: number;
        headers: string[][];
      }>;
      end_offsets: Record<string, number>;
      by_time: Record<string, number | null>;
      configs: Record<string, string>;
      partitions_after: number;
      after_delete: string[];
      assigned: Array<[number, boolean]>;
    };
    expect(report.topics).toEqual(['py-topic']);
    expect(report.records).toHaveLength(20);
    const expected = [null, 'gzip'].flatMap((codec) =>
      Array.from({ length: 10 }, (_, i) => ({
        key: `k${i}`,
        value: `${codec === null ? 'None' : codec}-${i}`,
        timestamp: 1_700_000_000_000 + i,
        headers: [
          ['codec', codec === null ? 'None' : codec],
          ['i', String(i)],
        ],
        partition: i % 2,
      })),
    );
    for (const record of expected) {
      expect(report.records).toContainEqual(expect.objectContaining(record));
    }
    expect(report.end_offsets).toEqual({ '0': 10, '1': 10 });
    // Timestamps 1700000000005.. on partition 1 (odd i): 5, 7, 9 of the first round are offsets 2, 3, 4.
    expect(report.by_time).toEqual({ '0': 3, '1': 2 });
    expect(report.configs).toEqual({
      'retention.ms': '7200000',
      'segment.bytes': '1048576',
      'cleanup.policy': 'delete',
    });
    // A topic made from replica assignments (NewTopic replica_assignments): one partition each.
    expect(report.assigned).toEqual([
      [0, true],
      [1, true],
      [2, true],
    ]);
    expect(report.partitions_after).toBe(4);
    expect(report.after_delete).toEqual([]);
  }, 120_000);
});
