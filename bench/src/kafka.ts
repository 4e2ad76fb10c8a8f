/**
 * `npm run bench -- kafka`: RobustMQ's Kafka broker on loopback. Produce throughput (1 KiB records,
 * batched, acks=1 and acks=all), consume throughput, and end-to-end latency at a fixed moderate
 * rate, each beside this machine's limits measured in the same run: sequential disk writes with
 * fdatasync for produce, one loopback TCP stream for consume (issue 6's targets).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  decodeRecordBatches,
  encodeRecordBatch,
  type FetchResponse,
  type ProduceResponse,
} from '@robustmq/protocol-kafka/codec';
import { LatencyHistogram } from './latency-histogram.js';
import { measureMachineLimits } from './machine-limits.js';
import { freePort, HOST, spawnWithFileLimit } from './mqtt-brokers.js';
import { KafkaWire } from './kafka-wire.js';
import { describeMachine, parseSuiteArgs, positiveOption, progressTo, type Suite } from './suite.js';
import { formatMBps, formatPercent, markdownTable } from './table.js';
import { serverArgs } from './server-command.js';

const OPTIONS = `    --seconds N         measured seconds per phase (default: 5)
    --producers N       producer connections, one partition each (default: 2)
    --batch-records N   1 KiB records per produce request (default: 64)
    --inflight N        produce requests in flight per producer (default: 8)
    --rate N            records/s for the latency phase (default: 500)
    --cpu-prof DIR      run robustmq-server under --cpu-prof, one profile per thread in DIR
    --json              print the results as JSON instead of tables`;

const API = { produce: 0, fetch: 1, createTopics: 19, deleteTopics: 20 } as const;
const PRODUCE_VERSION = 9;
const FETCH_VERSION = 12;
const RECORD_BYTES = 1024;
/** Each produce phase writes its own topic; consumers read the acks=all one. */
const ACKS_1_TOPIC = 'bench-acks-1';
const TOPIC = 'bench-acks-all';
const LATENCY_TOPIC = 'bench-latency';
const START_TIMEOUT_MS = 30_000;
const progress = progressTo('kafka');

interface Settings {
  seconds: number;
  producers: number;
  batchRecords: number;
  inflight: number;
  rate: number;
  cpuProfDir: string | null;
  json: boolean;
}

interface Results {
  machine: Record<string, string | number>;
  settings: Settings;
  diskWriteBytesPerSecond: number;
  loopbackBytesPerSecond: number;
  /** The same stream sent from a page-cached file: information, not a target's limit. */
  pageCacheLoopbackBytesPerSecond: number;
  produceAcks1BytesPerSecond: number;
  produceAcksAllBytesPerSecond: number;
  consumeBytesPerSecond: number;
  latency: { rate: number; samples: number; p50Ms: number | null; p99Ms: number | null };
}

function parseSettings(args: readonly string[]): Settings {
  const values = parseSuiteArgs(args, {
    seconds: { type: 'string' },
    producers: { type: 'string' },
    'batch-records': { type: 'string' },
    inflight: { type: 'string' },
    rate: { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean' },
  });
  return {
    seconds: positiveOption('seconds', values.seconds, 5),
    producers: Math.round(positiveOption('producers', values.producers, 2)),
    batchRecords: Math.round(positiveOption('batch-records', values['batch-records'], 64)),
    inflight: Math.round(positiveOption('inflight', values.inflight, 8)),
    rate: positiveOption('rate', values.rate, 500),
    cpuProfDir:
      values['cpu-prof'] === undefined
        ? null
        : resolve(process.env.INIT_CWD ?? process.cwd(), values['cpu-prof']),
    json: values.json ?? false,
  };
}

interface Server {
  port: number;
  stop(): Promise<void>;
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The built robustmq-server, standalone with the Kafka plugin, on free loopback ports. */
async function startServer(root: string, cpuProfDir: string | null): Promise<Server> {
  const port = await freePort();
  const config = join(root, 'robustmq.toml');
  await writeFile(
    config,
    [
      'protocols = ["@robustmq/protocol-kafka"]',
      `data_dir = ${JSON.stringify(join(root, 'data'))}`,
      `bind = "${HOST}"`,
      '[http]',
      `port = ${await freePort()}`,
      '[log]',
      'level = "warn"',
      '[kafka]',
      `port = ${port}`,
      '',
    ].join('\n'),
  );
  const profile =
    cpuProfDir === null
      ? []
      : // One profile per thread (the journal's read threads have their own), each named by Node.
        ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, `robustmq-kafka-${Date.now()}`)}`];
  const child: ChildProcess = spawnWithFileLimit(process.execPath, serverArgs(profile, ['--config', config]));
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4096)));
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4096)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`robustmq-server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, stop };
}

/** Size of the file the page-cache loopback stream sends over and over: more than the CPU caches. */
const LOOPBACK_FILE_BYTES = 1024 * 1024 * 1024;

/**
 * One loopback TCP stream: a child process writes as fast as it can, this process reads into one
 * reused buffer, as the consumers receive each response into the memory of the one before (read
 * into fresh memory, the stream measured 1.9-5.0 GB/s from run to run; into reused memory it
 * measures 5.3-5.7).
 *
 * Without `file`, the child sends one 1 MiB buffer that stays in the CPU cache: the limit the
 * consume target is judged against. With `file`, it first writes that file (synced, so no
 * write-back runs during the measure) and then sends it from the page cache, 1 MiB read after
 * another, as a broker sends what it stored; no checksum. That one is for information only.
 */
async function measureLoopback(seconds: number, file?: string): Promise<number> {
  const port = await freePort();
  const source = `
    const net = require('node:net');
    const fs = require('node:fs');
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const file = ${JSON.stringify(file ?? null)};
    let fd = -1;
    let position = 0;
    if (file !== null) {
      fd = fs.openSync(file, 'w+');
      for (let at = 0; at < ${LOOPBACK_FILE_BYTES}; at += chunk.length) fs.writeSync(fd, chunk);
      fs.fdatasyncSync(fd);
    }
    // Reading into the one buffer again is safe: a write that returns true has been handed to the
    // kernel whole, and after one that returns false the next read waits for 'drain'.
    const next = () => {
      if (fd < 0) return chunk;
      if (position >= ${LOOPBACK_FILE_BYTES}) position = 0;
      position += fs.readSync(fd, chunk, 0, chunk.length, position);
      return chunk;
    };
    net.createServer((socket) => {
      const pump = () => { while (socket.write(next())); };
      socket.on('drain', pump);
      socket.on('error', () => {});
      pump();
    }).listen(${port}, '${HOST}', () => process.stdout.write('ready\\n'));
  `;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    let bytes = 0;
    const socket = connect({
      host: HOST,
      port,
      onread: {
        buffer: Buffer.allocUnsafe(1024 * 1024),
        callback: (received) => {
          bytes += received;
          return true;
        },
      },
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const startBytes = bytes;
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const rate = (bytes - startBytes) / ((performance.now() - started) / 1000);
    socket.destroy();
    return rate;
  } finally {
    child.kill('SIGKILL');
  }
}

function check(errorCode: number, what: string): void {
  if (errorCode !== 0) throw new Error(`${what} failed with Kafka error code ${errorCode}`);
}

async function createTopic(wire: KafkaWire, name: string, partitions: number): Promise<void> {
  const response = await wire.call<{ topics: { name: string; errorCode: number }[] }>(API.createTopics, 5, {
    topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }],
    timeoutMs: 10_000,
    validateOnly: false,
  });
  for (const topic of response.topics) check(topic.errorCode, `creating topic ${topic.name}`);
}

async function deleteTopic(wire: KafkaWire, name: string): Promise<void> {
  const response = await wire.call<{ responses: { name: string | null; errorCode: number }[] }>(
    API.deleteTopics,
    4,
    { topicNames: [name], timeoutMs: 10_000 },
  );
  for (const topic of response.responses) check(topic.errorCode, `deleting topic ${topic.name ?? name}`);
}

function produceBody(topic: string, partition: number, acks: number, records: Buffer) {
  return {
    transactionalId: null,
    acks,
    timeoutMs: 30_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  };
}

/** Producers keep `inflight` batches each in flight for `seconds`; returns acknowledged bytes/s. */
async function produce(
  port: number,
  settings: Settings,
  topic: string,
  acks: number,
  seconds: number,
): Promise<number> {
  const batch = await encodeRecordBatch({
    records: Array.from({ length: settings.batchRecords }, (_, i) => ({
      key: `key-${i}`,
      value: Buffer.alloc(RECORD_BYTES, i & 0xff),
    })),
  });
  const wires = await Promise.all(
    Array.from({ length: settings.producers }, () => KafkaWire.open(HOST, port)),
  );
  let acknowledged = 0;
  let measuring = false;
  let running = true;
  const loops = wires.flatMap((wire, partition) =>
    Array.from({ length: settings.inflight }, async () => {
      while (running) {
        const response = await wire.call<ProduceResponse>(
          API.produce,
          PRODUCE_VERSION,
          produceBody(topic, partition, acks, batch),
        );
        for (const topic of response.responses) {
          for (const part of topic.partitionResponses) check(part.errorCode, 'produce');
        }
        if (measuring) acknowledged += batch.length;
      }
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  await Promise.all(loops);
  for (const wire of wires) wire.close();
  return acknowledged / elapsed;
}

/**
 * One consumer per partition fetches from offset 0 for `seconds`, starting over from offset 0 each
 * time it reaches the end (the acks=all phase leaves a few GB, read in under two seconds); returns
 * record bytes/s.
 */
async function consume(port: number, settings: Settings, seconds: number): Promise<number> {
  const wires = await Promise.all(
    Array.from({ length: settings.producers }, () => KafkaWire.open(HOST, port, { reuseFrames: true })),
  );
  let received = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    wires.map(async (wire, partition) => {
      let offset = 0n;
      while (performance.now() < deadline) {
        const response = await wire.call<FetchResponse>(API.fetch, FETCH_VERSION, {
          replicaId: -1,
          maxWaitMs: 100,
          minBytes: 1,
          maxBytes: 16 * 1024 * 1024,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [
            {
              topic: TOPIC,
              partitions: [
                {
                  partition,
                  currentLeaderEpoch: -1,
                  fetchOffset: offset,
                  lastFetchedEpoch: -1,
                  logStartOffset: -1n,
                  partitionMaxBytes: 8 * 1024 * 1024,
                },
              ],
            },
          ],
          forgottenTopicsData: [],
          rackId: '',
        });
        const data = response.responses[0]?.partitions[0];
        if (!data) throw new Error('fetch answered without the partition');
        check(data.errorCode, 'fetch');
        const records = data.records;
        if (!records || records.length === 0) {
          if (data.highWatermark === 0n) return;
          continue;
        }
        received += records.length;
        // The next offset follows the last whole batch: its base offset plus its offset span.
        let position = 0;
        while (position + 61 <= records.length) {
          const size = records.readInt32BE(position + 8) + 12;
          if (position + size > records.length) break;
          offset = records.readBigInt64BE(position) + BigInt(records.readInt32BE(position + 23) + 1);
          position += size;
        }
        // At the end, start over at once rather than wait out a long poll for new records.
        if (offset >= data.highWatermark) offset = 0n;
      }
    }),
  );
  for (const wire of wires) wire.close();
  return received / ((performance.now() - started) / 1000);
}

/** Single-record produces (acks=all) at `rate`/s while a consumer long-polls; end-to-end latency. */
async function measureLatency(port: number, settings: Settings): Promise<Results['latency']> {
  const producer = await KafkaWire.open(HOST, port);
  const consumer = await KafkaWire.open(HOST, port);
  await createTopic(producer, LATENCY_TOPIC, 1);
  const histogram = new LatencyHistogram();
  const origin = performance.timeOrigin;
  let running = true;
  const consuming = (async () => {
    let offset = 0n;
    while (running) {
      const response = await consumer.call<FetchResponse>(API.fetch, FETCH_VERSION, {
        replicaId: -1,
        maxWaitMs: 200,
        minBytes: 1,
        maxBytes: 1024 * 1024,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic: LATENCY_TOPIC,
            partitions: [
              {
                partition: 0,
                currentLeaderEpoch: -1,
                fetchOffset: offset,
                lastFetchedEpoch: -1,
                logStartOffset: -1n,
                partitionMaxBytes: 1024 * 1024,
              },
            ],
          },
        ],
        forgottenTopicsData: [],
        rackId: '',
      });
      const records = response.responses[0]?.partitions[0]?.records;
      if (!records || records.length === 0) continue;
      const now = origin + performance.now();
      for (const batch of decodeRecordBatches(records)) {
        for (const record of batch.records) {
          if (BigInt(record.offset) < offset || !record.value) continue;
          histogram.record((now - record.value.readDoubleBE(0)) * 1e6);
          offset = BigInt(record.offset) + 1n;
        }
      }
    }
  })();
  const interval = 1000 / settings.rate;
  const total = Math.round(settings.rate * settings.seconds);
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  for (let sent = 0; sent < total; sent++) {
    const due = started + sent * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const value = Buffer.alloc(RECORD_BYTES);
    value.writeDoubleBE(origin + performance.now(), 0);
    const batch = await encodeRecordBatch({ records: [{ value }] });
    sends.push(producer.call(API.produce, PRODUCE_VERSION, produceBody(LATENCY_TOPIC, 0, -1, batch)));
  }
  await Promise.all(sends);
  const deadline = Date.now() + 5000;
  while (histogram.total < total && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  running = false;
  await consuming;
  producer.close();
  consumer.close();
  return {
    rate: settings.rate,
    samples: histogram.total,
    p50Ms: histogram.percentileMs(0.5),
    p99Ms: histogram.percentileMs(0.99),
  };
}

function report(results: Results): string {
  const disk = results.diskWriteBytesPerSecond;
  const loopback = results.loopbackBytesPerSecond;
  const fromFile = results.pageCacheLoopbackBytesPerSecond;
  const row = (name: string, rate: number, limit: number, target: number | null) => [
    name,
    formatMBps(rate),
    formatPercent(rate / limit),
    target === null ? '' : `>= ${formatPercent(target)}: ${rate / limit >= target ? 'PASS' : 'MISS'}`,
  ];
  const ms = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(2)} ms`);
  return [
    `Kafka on loopback, ${results.settings.producers} producers x ${results.settings.inflight} requests in flight, ` +
      `${results.settings.batchRecords} x 1 KiB records per request, ${results.settings.seconds} s per phase`,
    '',
    markdownTable(
      [{ title: 'limit' }, { title: 'MB/s', align: 'right' }],
      [
        ['sequential disk write + fdatasync', formatMBps(disk)],
        ['loopback TCP, one stream', formatMBps(loopback)],
        ['the same stream sent from a page-cached 1 GiB file (information)', formatMBps(fromFile)],
      ],
    ),
    '',
    markdownTable(
      [
        { title: 'phase' },
        { title: 'MB/s', align: 'right' },
        { title: 'of its limit', align: 'right' },
        { title: 'target' },
      ],
      [
        row('produce acks=1 (disk)', results.produceAcks1BytesPerSecond, disk, null),
        row('produce acks=all (disk)', results.produceAcksAllBytesPerSecond, disk, 0.4),
        row('consume (loopback)', results.consumeBytesPerSecond, loopback, 0.5),
      ],
    ),
    '',
    `consume ÷ the stream from the page cache: ${formatPercent(results.consumeBytesPerSecond / fromFile)} (information)`,
    '',
    `end-to-end latency at ${results.latency.rate} records/s (acks=all, long-poll fetch): ` +
      `p50 ${ms(results.latency.p50Ms)}, p99 ${ms(results.latency.p99Ms)} over ${results.latency.samples} records`,
    '',
  ].join('\n');
}

async function run(args: readonly string[]): Promise<void> {
  const settings = parseSettings(args);
  const root = await mkdtemp(join(tmpdir(), 'robustmq-bench-kafka-'));
  let server: Server | null = null;
  try {
    progress('measuring the machine limits');
    const limits = measureMachineLimits({
      dir: root,
      fileBytes: 256 * 1024 * 1024,
      syncSeconds: 1,
      passes: 3,
    });
    const loopbackBytesPerSecond = await measureLoopback(Math.min(settings.seconds, 3));
    progress('starting robustmq-server with the Kafka plugin');
    server = await startServer(root, settings.cpuProfDir);
    const admin = await KafkaWire.open(HOST, server.port);
    await createTopic(admin, ACKS_1_TOPIC, settings.producers);
    progress('produce, acks=1');
    const produceAcks1BytesPerSecond = await produce(
      server.port,
      settings,
      ACKS_1_TOPIC,
      1,
      settings.seconds,
    );
    // Each phase writes gigabytes. Deleting the first phase's topic frees its page cache, so the
    // second phase starts from the state the disk limit was measured in: on this VM, page cache
    // grown into memory the guest has not touched before costs about a second of system CPU per
    // second of writing, which would otherwise fall on whichever phase runs second.
    await deleteTopic(admin, ACKS_1_TOPIC);
    await createTopic(admin, TOPIC, settings.producers);
    admin.close();
    progress('produce, acks=all');
    const produceAcksAllBytesPerSecond = await produce(server.port, settings, TOPIC, -1, settings.seconds);
    progress('consume');
    const consumeBytesPerSecond = await consume(server.port, settings, settings.seconds);
    progress('end-to-end latency');
    const latency = await measureLatency(server.port, settings);
    // Last, so that neither writing its 1 GiB nor deleting it changes the disk or the page cache
    // any measured phase meets.
    progress('loopback stream from the page cache');
    const pageCacheLoopbackBytesPerSecond = await measureLoopback(
      Math.min(settings.seconds, 3),
      join(root, 'loopback.dat'),
    );
    const results: Results = {
      machine: describeMachine(),
      settings,
      diskWriteBytesPerSecond: limits.sequentialWrite.bytesPerSecond,
      loopbackBytesPerSecond,
      pageCacheLoopbackBytesPerSecond,
      produceAcks1BytesPerSecond,
      produceAcksAllBytesPerSecond,
      consumeBytesPerSecond,
      latency,
    };
    process.stdout.write(settings.json ? `${JSON.stringify(results, null, 2)}\n` : `${report(results)}\n`);
  } finally {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  }
}

export const kafkaSuite: Suite = {
  name: 'kafka',
  summary: 'Kafka produce/consume MB/s and end-to-end latency against disk and loopback limits',
  options: OPTIONS,
  run,
};
