/**
 * `npm run bench -- storage`: append and read throughput of every storage engine under every
 * durability policy, next to this machine's disk and page-cache limits measured in the same run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DurabilityPolicy, StorageEngine } from '@robustmq/core';
import { openJournal } from '@robustmq/journal';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { RocksDbStorageEngine } from '@robustmq/storage-rocksdb';
import { measureMachineLimits, type MachineLimits } from './machine-limits.js';
import { RecordingMetrics } from './recording-metrics.js';
import {
  describeMachine,
  nonNegativeOption,
  parseSuiteArgs,
  positiveOption,
  progressTo,
  UsageError,
  type Suite,
} from './suite.js';
import {
  READ_BUFFER_HEADROOM_BYTES,
  runWorkload,
  type WorkloadOptions,
  type WorkloadResult,
} from './storage-workload.js';
import { formatMBps, formatPercent, formatRate, markdownTable, MiB } from './table.js';

/** Syncs an engine made during the appends, read from its own metrics. */
interface Syncs {
  count: number;
  /** Time spent in them, when the engine measures it. */
  seconds: number | null;
}

interface EngineSetup {
  name: string;
  durabilities: readonly DurabilityPolicy[];
  open(dir: string, metrics: RecordingMetrics): Promise<StorageEngine>;
  /** Null for an engine that never syncs. */
  syncs(metrics: RecordingMetrics): Syncs | null;
}

const ALL_POLICIES: readonly DurabilityPolicy[] = ['fsync', 'group-commit', 'none'];

/** Each engine with its default settings, as the server would open it. */
const ENGINES: readonly EngineSetup[] = [
  {
    name: 'journal',
    durabilities: ALL_POLICIES,
    open: (dir, metrics) => openJournal({ dir, metrics }),
    syncs: (metrics) => ({
      count: metrics.counterTotal('robustmq_journal_fsyncs_total'),
      seconds: metrics.histogramTotals('robustmq_journal_fsync_seconds').sum,
    }),
  },
  // Memory keeps nothing on disk: every policy is `none` to it, so it runs once.
  {
    name: 'memory',
    durabilities: ['none'],
    open: () => Promise.resolve(new MemoryStorageEngine()),
    syncs: () => null,
  },
  {
    name: 'rocksdb',
    durabilities: ALL_POLICIES,
    open: (dataDir, metrics) => RocksDbStorageEngine.open({ dataDir, metrics }),
    syncs: (metrics) => ({
      count: metrics.counterTotal('robustmq_storage_rocksdb_writes_total{sync="true"}'),
      seconds: null,
    }),
  },
];

/** Group-commit appends against the sequential-write limit, reads against the page cache. */
const APPEND_TARGET = 0.5;
const READ_TARGET = 0.5;

/**
 * The loads, in appends of one batch in flight. Appenders that each wait for their
 * acknowledgement get at most the bytes in flight per durable write: 16 (256 KiB) measures how
 * well an engine serves a light load, whose rate the disk's sync latency bounds; 256 (4 MiB, less
 * than one Kafka producer may have in flight with five requests of up to 1 MiB) measures
 * throughput, which is what the append target is judged on.
 */
const DEFAULT_CONCURRENCIES = '16,256';

/**
 * Size of the file the sequential-write and page-cache limits use, whatever the engines append.
 * Every earlier figure in BENCHMARKS.md used it, and a larger file writes slower here (the host
 * absorbs less of it), so it is the stricter yardstick.
 */
const LIMIT_FILE_BYTES = 256 * MiB;

const OPTIONS = `    --engines LIST     engines to run, of journal,memory,rocksdb (default: all)
    --records LIST     record sizes in bytes (default: 100,1024)
    --mib N            MiB appended per engine, policy, record size and load (default: 1024)
    --seconds N        time limit of each append phase and each read phase (default: 5)
    --concurrency LIST loads, in appends in flight at once; the append target is judged at the
                       largest (default: ${DEFAULT_CONCURRENCIES})
    --batch-kib N      batch size in KiB; records per batch = batch / record size (default: 16)
    --read-mib N       maxBytes of each read in MiB (default: 4)
    --read-seconds N   least seconds of each read phase, in whole passes from offset 0; 0: one pass (default: 1)
    --warmup-mib N     MiB per run of an unmeasured first round of every engine's runs; 0: none (default: 64)
    --json             print the results as JSON instead of tables`;

interface Settings {
  engines: readonly EngineSetup[];
  recordSizes: readonly number[];
  appendBytes: number;
  phaseSeconds: number;
  /** Loads, ascending; the largest is the throughput load the targets are judged at. */
  concurrencies: readonly number[];
  batchBytes: number;
  readMaxBytes: number;
  readSeconds: number;
  warmupBytes: number;
  json: boolean;
}

interface Run extends WorkloadResult {
  engine: string;
  durability: DurabilityPolicy;
  recordBytes: number;
  batchBytes: number;
  concurrency: number;
  /** Syncs during the appends; null for the memory engine. */
  syncs: Syncs | null;
}

interface Target {
  engine: string;
  recordBytes: number;
  /** Appends in flight in the runs judged: the largest load. */
  concurrency: number;
  /** Group-commit append MB/s ÷ sequential-write MB/s; null for an engine without group commit. */
  appendRatio: number | null;
  appendPass: boolean | null;
  /** The same ratio at the smallest load, for information; null with one load or no group commit. */
  lightLoadAppendRatio: number | null;
  /** Read MB/s of the default-policy run ÷ page-cache read MB/s. */
  readRatio: number;
  readPass: boolean;
}

function positiveIntegers(name: string, list: string): number[] {
  return list.split(',').map((item) => {
    const value = Number(item);
    if (!Number.isInteger(value) || value <= 0) throw new UsageError(`bad ${name} ${JSON.stringify(item)}`);
    return value;
  });
}

/** The lightest load and the heaviest, the one the targets are judged at (the same with one load). */
function loadsOf(settings: Settings): { lightest: number; heaviest: number } {
  const { concurrencies } = settings;
  return {
    lightest: concurrencies[0] as number,
    heaviest: concurrencies[concurrencies.length - 1] as number,
  };
}

function parseSettings(args: readonly string[]): Settings {
  const values = parseSuiteArgs(args, {
    engines: { type: 'string' },
    records: { type: 'string' },
    mib: { type: 'string' },
    seconds: { type: 'string' },
    concurrency: { type: 'string' },
    'batch-kib': { type: 'string' },
    'read-mib': { type: 'string' },
    'read-seconds': { type: 'string' },
    'warmup-mib': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const names = values.engines?.split(',') ?? ENGINES.map((e) => e.name);
  const engines = names.map((name) => {
    const engine = ENGINES.find((e) => e.name === name);
    if (engine === undefined) throw new UsageError(`unknown engine ${JSON.stringify(name)}`);
    return engine;
  });
  const recordSizes = positiveIntegers('record size', values.records ?? '100,1024');
  const concurrencies = [
    ...new Set(positiveIntegers('concurrency', values.concurrency ?? DEFAULT_CONCURRENCIES)),
  ].sort((a, b) => a - b);
  return {
    engines,
    recordSizes,
    appendBytes: Math.round(positiveOption('mib', values.mib, 1024) * MiB),
    phaseSeconds: positiveOption('seconds', values.seconds, 5),
    concurrencies,
    batchBytes: Math.round(positiveOption('batch-kib', values['batch-kib'], 16) * 1024),
    readMaxBytes: Math.round(positiveOption('read-mib', values['read-mib'], 4) * MiB),
    readSeconds: nonNegativeOption('read-seconds', values['read-seconds'], 1),
    warmupBytes: Math.round(nonNegativeOption('warmup-mib', values['warmup-mib'], 64) * MiB),
    json: values.json,
  };
}

const progress = progressTo('storage');

async function runOne(
  root: string,
  setup: EngineSetup,
  durability: DurabilityPolicy,
  workload: WorkloadOptions,
): Promise<Run> {
  const dir = await mkdtemp(join(root, `${setup.name}-`));
  const metrics = new RecordingMetrics();
  const engine = await setup.open(dir, metrics);
  try {
    const shard = 'bench/0';
    await engine.createShard(shard, { durability });
    const result = await runWorkload(engine, shard, workload);
    return {
      engine: setup.name,
      durability,
      recordBytes: workload.recordBytes,
      batchBytes: workload.batchBytes,
      concurrency: workload.concurrency,
      syncs: setup.syncs(metrics),
      ...result,
    };
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function targetsOf(runs: readonly Run[], limits: MachineLimits, settings: Settings): Target[] {
  const seq = limits.sequentialWrite.bytesPerSecond;
  const { lightest, heaviest } = loadsOf(settings);
  const judged = runs.filter((r) => r.concurrency === heaviest);
  const targets: Target[] = [];
  for (const run of judged) {
    const hasGroupCommit = run.durability === 'group-commit';
    const onlyPolicy = judged.every(
      (r) => r.engine !== run.engine || r.recordBytes !== run.recordBytes || r === run,
    );
    if (!hasGroupCommit && !onlyPolicy) continue;
    const appendRatio = hasGroupCommit ? run.append.bytesPerSecond / seq : null;
    const light =
      hasGroupCommit && lightest !== heaviest
        ? runs.find(
            (r) =>
              r.engine === run.engine &&
              r.recordBytes === run.recordBytes &&
              r.durability === run.durability &&
              r.concurrency === lightest,
          )
        : undefined;
    const readRatio = run.read.bytesPerSecond / limits.pageCacheRead.bytesPerSecond;
    targets.push({
      engine: run.engine,
      recordBytes: run.recordBytes,
      concurrency: run.concurrency,
      appendRatio,
      appendPass: appendRatio === null ? null : appendRatio >= APPEND_TARGET,
      lightLoadAppendRatio: light === undefined ? null : light.append.bytesPerSecond / seq,
      readRatio,
      readPass: readRatio >= READ_TARGET,
    });
  }
  return targets;
}

function mibOf(bytes: number): string {
  return `${(bytes / MiB).toFixed(0)} MiB`;
}

function verdict(ratio: number | null, pass: boolean | null): string {
  if (ratio === null) return 'n/a';
  return `${formatPercent(ratio)} ${pass === true ? 'PASS' : 'MISS'}`;
}

function report(
  settings: Settings,
  limits: MachineLimits,
  runs: readonly Run[],
  targets: readonly Target[],
): string {
  const machine = describeMachine();
  const seq = limits.sequentialWrite.bytesPerSecond;
  const cache = limits.pageCacheRead.bytesPerSecond;
  const inFlightLimit = (concurrency: number): MachineLimits['inFlightSyncWrites'][number] | undefined =>
    limits.inFlightSyncWrites[settings.concurrencies.indexOf(concurrency)];
  const limitTable = markdownTable(
    [{ title: 'machine limit' }, { title: 'MB/s', align: 'right' }, { title: 'ops/s', align: 'right' }],
    [
      [
        `sequential write, ${mibOf(limits.sequentialWrite.bytes)} in 1 MiB writes + fdatasync`,
        formatMBps(seq),
        '',
      ],
      [
        `synchronous 16 KiB writes (${limits.syncWrites.method})`,
        formatMBps(limits.syncWrites.bytesPerSecond),
        formatRate(limits.syncWrites.writesPerSecond),
      ],
      ...settings.concurrencies.flatMap((concurrency) => {
        const inFlight = inFlightLimit(concurrency);
        if (inFlight === undefined) return [];
        return [
          [
            `synchronous ${(concurrency * settings.batchBytes) / 1024} KiB writes, all of ${concurrency} appends in flight at once (${inFlight.method})`,
            formatMBps(inFlight.bytesPerSecond),
            formatRate(inFlight.writesPerSecond),
          ],
        ];
      }),
      [`page-cache read of that file, 1 MiB reads (like cat)`, formatMBps(cache), ''],
    ],
  );
  const runTable = markdownTable(
    [
      { title: 'engine' },
      { title: 'durability' },
      { title: 'record', align: 'right' },
      { title: 'records/batch', align: 'right' },
      { title: 'in flight', align: 'right' },
      { title: 'appended', align: 'right' },
      { title: 'append MB/s', align: 'right' },
      { title: 'records/s', align: 'right' },
      { title: 'fsyncs', align: 'right' },
      { title: 'fsync time', align: 'right' },
      { title: 'read MB/s', align: 'right' },
      { title: 'append ÷ seq write', align: 'right' },
      { title: 'append ÷ in-flight sync writes', align: 'right' },
      { title: 'read ÷ page cache', align: 'right' },
    ],
    runs.map((run) => {
      const inFlight = inFlightLimit(run.concurrency);
      return [
        run.engine,
        run.engine === 'memory' ? 'none (no disk)' : run.durability,
        `${run.recordBytes} B`,
        String(run.recordsPerBatch),
        String(run.concurrency),
        `${mibOf(run.append.bytes)}${run.append.complete ? '' : '*'}`,
        formatMBps(run.append.bytesPerSecond),
        formatRate(run.append.recordsPerSecond),
        run.syncs === null ? 'n/a' : formatRate(run.syncs.count),
        run.syncs?.seconds == null ? 'n/a' : `${run.syncs.seconds.toFixed(2)} s`,
        `${formatMBps(run.read.bytesPerSecond)}${run.read.complete ? '' : '*'}`,
        formatPercent(run.append.bytesPerSecond / seq),
        inFlight === undefined || run.durability === 'none' || run.engine === 'memory'
          ? 'n/a'
          : formatPercent(run.append.bytesPerSecond / inFlight.bytesPerSecond),
        formatPercent(run.read.bytesPerSecond / cache),
      ];
    }),
  );
  const { lightest, heaviest } = loadsOf(settings);
  const severalLoads = heaviest !== lightest;
  const targetTable = markdownTable(
    [
      { title: 'engine' },
      { title: 'record', align: 'right' },
      {
        title: `group-commit append ÷ seq write, ${heaviest} in flight (>= ${formatPercent(APPEND_TARGET)})`,
        align: 'right',
      },
      ...(severalLoads
        ? [{ title: `the same, ${lightest} in flight (information)`, align: 'right' as const }]
        : []),
      { title: `read ÷ page cache (>= ${formatPercent(READ_TARGET)})`, align: 'right' },
    ],
    targets.map((t) => [
      t.engine,
      `${t.recordBytes} B`,
      verdict(t.appendRatio, t.appendPass),
      ...(severalLoads
        ? [t.lightLoadAppendRatio === null ? 'n/a' : formatPercent(t.lightLoadAppendRatio)]
        : []),
      verdict(t.readRatio, t.readPass),
    ]),
  );
  const capped = runs.some((r) => !r.append.complete || !r.read.complete);
  return [
    `storage benchmark, ${new Date().toISOString()}`,
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, node ${machine.node}, files in ${machine.tmpdir}`,
    `workload: one shard per run, ${settings.concurrencies.join(' and then ')} appends in flight, ${settings.batchBytes / 1024} KiB batches (one per append), ` +
      `${mibOf(settings.appendBytes)} or ${settings.phaseSeconds} s per phase, reads from offset 0 with maxBytes ${mibOf(settings.readMaxBytes)}, ` +
      `passes over the shard (and over the page-cache file) repeated for at least ${settings.readSeconds} s, ` +
      `each read into the same reused ${mibOf(settings.readMaxBytes + READ_BUFFER_HEADROOM_BYTES)} buffer (ReadOptions.into; engines may ignore it); ` +
      (settings.warmupBytes > 0
        ? `each engine's runs first done once unmeasured with ${mibOf(settings.warmupBytes)}; `
        : 'no warm-up; ') +
      'MB = 10^6 bytes',
    '',
    limitTable,
    '',
    runTable,
    ...(capped
      ? [
          '',
          `* stopped at the ${settings.phaseSeconds} s limit before the full ${mibOf(settings.appendBytes)}`,
        ]
      : []),
    '',
    targetTable,
    '',
  ].join('\n');
}

async function run(args: readonly string[]): Promise<void> {
  const settings = parseSettings(args);
  const root = await mkdtemp(join(tmpdir(), 'robustmq-bench-storage-'));
  try {
    progress('measuring the machine limits');
    const limits = measureMachineLimits({
      dir: root,
      fileBytes: LIMIT_FILE_BYTES,
      syncSeconds: 2,
      passes: 3,
      readSeconds: settings.readSeconds,
      inFlightBytes: settings.concurrencies.map((concurrency) => concurrency * settings.batchBytes),
    });
    const runs: Run[] = [];
    for (const setup of settings.engines) {
      // Every run of the engine once, smaller and unmeasured, so that no measured run pays for
      // V8 compiling the engine's code: without it the first runs read at half the speed of the
      // same runs repeated later in the process.
      const rounds =
        settings.warmupBytes > 0 ? [settings.warmupBytes, settings.appendBytes] : [settings.appendBytes];
      for (const [round, appendBytes] of rounds.entries()) {
        const measured = round === rounds.length - 1;
        for (const durability of setup.durabilities) {
          for (const recordBytes of settings.recordSizes) {
            for (const concurrency of settings.concurrencies) {
              progress(
                `${setup.name} ${durability} ${recordBytes} B records, ${concurrency} in flight${measured ? '' : ', warm-up'}`,
              );
              const run = await runOne(root, setup, durability, {
                recordBytes,
                batchBytes: settings.batchBytes,
                concurrency,
                appendBytes,
                phaseSeconds: settings.phaseSeconds,
                readMaxBytes: settings.readMaxBytes,
                readSeconds: measured ? settings.readSeconds : 0,
              });
              if (measured) runs.push(run);
            }
          }
        }
      }
    }
    const targets = targetsOf(runs, limits, settings);
    if (settings.json) {
      const { engines, json: _json, ...rest } = settings;
      const result = {
        suite: 'storage',
        date: new Date().toISOString(),
        machine: describeMachine(),
        settings: { ...rest, engines: engines.map((e) => e.name) },
        limits,
        runs,
        targets,
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      process.stdout.write(report(settings, limits, runs, targets));
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

export const storageSuite: Suite = {
  name: 'storage',
  summary: 'append and read throughput of each storage engine and durability policy vs the disk',
  options: OPTIONS,
  run,
};
