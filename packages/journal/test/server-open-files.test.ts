import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

/** The robustmq-server binary, as a user gets it from npm. */
const SERVER_BIN = join(
  dirname(createRequire(import.meta.url).resolve('robustmq-server/package.json')),
  'dist/bin.js',
);
const PARTITIONS = 1500;
const OPEN_FILES = 512;

const dirs: string[] = [];
const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * Starts the server (journal storage, Kafka on a free port) in `dir` in a shell whose open-file
 * limit is {@link OPEN_FILES}; resolves with the Kafka address once it is ready.
 */
async function startServer(dir: string): Promise<string> {
  const child = spawn(
    'sh',
    [
      '-c',
      `ulimit -n ${OPEN_FILES} && exec "$@"`,
      'sh',
      process.execPath,
      SERVER_BIN,
      '--config',
      'robustmq.toml',
    ],
    {
      cwd: dir,
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ROBUSTMQ_'))),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  stops.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  });
  let buffered = '';
  return new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const ready = buffered
        .split('\n')
        .map((line) => {
          try {
            return JSON.parse(line) as { msg?: string; listeners?: string[] };
          } catch {
            return null;
          }
        })
        .find((entry) => entry?.msg === 'node ready');
      const kafka = ready?.listeners?.find((l) => l.startsWith('kafka/tcp:'));
      if (kafka !== undefined) resolve(`127.0.0.1:${kafka.split(':').pop()}`);
    });
    void exited.then(() => reject(new Error(`server exited: ${stderr}`)));
  });
}

/**
 * With kafka-python (Debian's python3-kafka): creates the topic if `create`, sends one record to
 * each partition and waits for every acknowledgement, then answers the distinct end offsets.
 */
async function produceToEveryPartition(broker: string, topic: string, create: boolean): Promise<number[]> {
  const script = `
import json, sys
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
broker, topic, count, create = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'create'
if create:
    admin = KafkaAdminClient(bootstrap_servers=broker, request_timeout_ms=120000)
    admin.create_topics([NewTopic(topic, count, 1)], timeout_ms=120000)
    admin.close()
producer = KafkaProducer(bootstrap_servers=broker, acks='all', linger_ms=50, request_timeout_ms=120000)
sent = [producer.send(topic, b'record', partition=p) for p in range(count)]
producer.flush()
for future in sent:
    future.get(timeout=120)
producer.close()
consumer = KafkaConsumer(bootstrap_servers=broker)
ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(count)])
consumer.close()
print(json.dumps(sorted(set(ends.values()))))
`;
  const { stdout } = await promisify(execFile)(
    '/usr/bin/python3',
    ['-c', script, broker, topic, String(PARTITIONS), create ? 'create' : 'produce'],
    { timeout: 240_000, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as number[];
}

describe('a server with more partitions than open files', () => {
  it(`creates a ${PARTITIONS}-partition topic, takes records for all, restarts and takes more (ulimit -n ${OPEN_FILES})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'robustmq-journal-server-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'robustmq.toml'),
      [
        'bind = "127.0.0.1"',
        'data_dir = "data"',
        'protocols = ["@robustmq/protocol-kafka"]',
        '[storage]',
        'engine = "@robustmq/journal"',
        '[http]',
        'port = 0',
        '[log]',
        'format = "json"',
        '[kafka]',
        'port = 0',
      ].join('\n') + '\n',
    );
    let broker = await startServer(dir);
    expect(await produceToEveryPartition(broker, 'wide', true)).toEqual([1]);

    // At start every shard is opened again: that must not take more files than allowed either.
    await stops.pop()!();
    broker = await startServer(dir);
    expect(await produceToEveryPartition(broker, 'wide', false)).toEqual([2]);
  }, 600_000);
});
