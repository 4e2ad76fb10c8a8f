/**
 * `npm run bench -- meta`: committed writes/s and commit latency of the replicated meta store, a
 * three-process Raft group on loopback, next to this machine's fsync cost measured in the same run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureFsyncCost, type FsyncCost } from './fsync-cost.js';
import { LatencyHistogram } from './latency-histogram.js';
import { MetaCluster } from './meta-cluster.js';
import type { WriteLoad } from './meta-node-protocol.js';
import {
  describeMachine,
  parseSuiteArgs,
  positiveOption,
  progressTo,
  UsageError,
  type Suite,
} from './suite.js';
import { formatPercent, formatRate, markdownTable } from './table.js';

/** Issue 4's targets. */
const THROUGHPUT_TARGET = 50_000;
const LATENCY_TARGET_MS = 10;
const NODES = 3;

const OPTIONS = `    --writers LIST     concurrent writers of each scenario (default: 1,64)
    --value-bytes N    bytes per value (default: 100)
    --seconds N        measured seconds per scenario, after a 1 s warm-up (default: 5)
    --cpu-prof DIR     run the nodes under --cpu-prof, leaving meta-node-<id>.cpuprofile in DIR
    --json             print the results as JSON instead of tables`;

interface Settings {
  writers: readonly number[];
  valueBytes: number;
  seconds: number;
  cpuProfDir: string | null;
  json: boolean;
}

interface ScenarioResult {
  writers: number;
  writes: number;
  writesPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  errors: number;
  /** Raft log entries committed in the measured window. */
  entries: number;
  /** CPU used by the leader's process and by each follower's, as a share of one core. */
  leaderCpu: number;
  followerCpu: number[];
}

interface Target {
  name: string;
  goal: string;
  value: string;
  pass: boolean;
  /** The measured figure over the goal (throughput) or the goal over it (latency). */
  ratio: number;
}

function parseSettings(args: readonly string[]): Settings {
  const values = parseSuiteArgs(args, {
    writers: { type: 'string' },
    'value-bytes': { type: 'string' },
    seconds: { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const writers = (values.writers ?? '1,64').split(',').map((text) => {
    const count = Number(text);
    if (!Number.isInteger(count) || count <= 0)
      throw new UsageError(`bad writer count ${JSON.stringify(text)}`);
    return count;
  });
  return {
    writers,
    valueBytes: Math.round(positiveOption('value-bytes', values['value-bytes'], 100)),
    seconds: positiveOption('seconds', values.seconds, 5),
    cpuProfDir: values['cpu-prof'] ?? null,
    json: values.json,
  };
}

const progress = progressTo('meta');

function targetsOf(results: readonly ScenarioResult[]): Target[] {
  const targets: Target[] = [];
  const concurrent =
    results.find((r) => r.writers === 64) ??
    results.reduce<ScenarioResult | undefined>(
      (best, r) => (best === undefined || r.writers > best.writers ? r : best),
      undefined,
    );
  if (concurrent !== undefined && concurrent.writers > 1) {
    targets.push({
      name: `committed writes/s, ${concurrent.writers} concurrent writers`,
      goal: `>= ${formatRate(THROUGHPUT_TARGET)}`,
      value: formatRate(concurrent.writesPerSecond),
      pass: concurrent.writesPerSecond >= THROUGHPUT_TARGET,
      ratio: concurrent.writesPerSecond / THROUGHPUT_TARGET,
    });
  }
  const single = results.find((r) => r.writers === 1);
  if (single?.p99Ms != null) {
    targets.push({
      name: 'p99 commit latency, single writer',
      goal: `< ${LATENCY_TARGET_MS} ms`,
      value: `${single.p99Ms.toFixed(2)} ms`,
      pass: single.p99Ms < LATENCY_TARGET_MS,
      ratio: LATENCY_TARGET_MS / single.p99Ms,
    });
  }
  return targets;
}

const ms = (value: number | null): string => (value === null ? 'n/a' : value.toFixed(2));

function report(
  settings: Settings,
  fsync: FsyncCost,
  results: readonly ScenarioResult[],
  targets: readonly Target[],
): string {
  const machine = describeMachine();
  const fsyncTable = markdownTable(
    [
      { title: 'machine limit' },
      { title: 'ops/s', align: 'right' },
      { title: 'p50 ms', align: 'right' },
      { title: 'p99 ms', align: 'right' },
    ],
    [
      [
        `${fsync.writeBytes / 1024} KiB write + fdatasync, one at a time`,
        formatRate(fsync.writesPerSecond),
        ms(fsync.p50Ms),
        ms(fsync.p99Ms),
      ],
    ],
  );
  const resultTable = markdownTable(
    [
      { title: 'writers' },
      { title: 'committed writes/s', align: 'right' },
      { title: 'p50 ms', align: 'right' },
      { title: 'p99 ms', align: 'right' },
      { title: 'writes per Raft entry', align: 'right' },
      { title: 'writes/s ÷ fsyncs/s', align: 'right' },
      { title: 'CPU leader / followers', align: 'right' },
      { title: 'errors', align: 'right' },
    ],
    results.map((r) => [
      String(r.writers),
      formatRate(r.writesPerSecond),
      ms(r.p50Ms),
      ms(r.p99Ms),
      r.entries > 0 ? (r.writes / r.entries).toFixed(2) : 'n/a',
      `${(r.writesPerSecond / fsync.writesPerSecond).toFixed(2)}×`,
      [r.leaderCpu, ...r.followerCpu].map(formatPercent).join(' / '),
      String(r.errors),
    ]),
  );
  const targetTable = markdownTable(
    [
      { title: 'target' },
      { title: 'goal', align: 'right' },
      { title: 'measured', align: 'right' },
      { title: 'verdict' },
    ],
    targets.map((t) => [
      t.name,
      t.goal,
      t.value,
      `${t.pass ? 'PASS' : 'MISS'} (${formatPercent(t.ratio)} of goal)`,
    ]),
  );
  return [
    `meta benchmark, ${new Date().toISOString()}`,
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, node ${machine.node}, files in ${machine.tmpdir}`,
    `workload: ${NODES}-process RaftMetaStore group on 127.0.0.1 (default settings, DiskRaftStorage), puts of ` +
      `${settings.valueBytes} B values made on the leader's process, each writer one put in flight; ` +
      `1 s warm-up, ${settings.seconds} s measured per scenario`,
    '',
    fsyncTable,
    '',
    resultTable,
    '',
    targetTable,
    '',
  ].join('\n');
}

async function runScenario(cluster: MetaCluster, load: WriteLoad): Promise<ScenarioResult> {
  const leader = await cluster.leader();
  const cpu = async (): Promise<number[]> =>
    Promise.all(cluster.nodes.map(async (node) => (await node.ask({ type: 'status' }, 'status')).cpuMicros));
  const cpuBefore = await cpu();
  const started = performance.now();
  const answer = await leader.ask({ type: 'load', ...load }, 'load');
  const wallMicros = (performance.now() - started) * 1000;
  const cpuAfter = await cpu();
  const shares = cluster.nodes.map((node, i) => ({
    leader: node === leader,
    share: ((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) / wallMicros,
  }));
  const histogram = new LatencyHistogram();
  histogram.addPairs(answer.histogram);
  const writesPerSecond = answer.writes / (answer.elapsedNs / 1e9);
  return {
    writers: load.writers,
    writes: answer.writes,
    writesPerSecond,
    p50Ms: histogram.percentileMs(0.5),
    p99Ms: histogram.percentileMs(0.99),
    errors: answer.errors,
    entries: answer.entries,
    leaderCpu: shares.find((s) => s.leader)?.share ?? 0,
    followerCpu: shares.filter((s) => !s.leader).map((s) => s.share),
  };
}

async function run(args: readonly string[]): Promise<void> {
  const settings = parseSettings(args);
  const root = await mkdtemp(join(tmpdir(), 'robustmq-bench-meta-'));
  let cluster: MetaCluster | null = null;
  try {
    progress('measuring the fsync cost');
    const fsync = measureFsyncCost(root, 2);
    progress(`starting ${NODES} meta nodes`);
    cluster = await MetaCluster.start(root, NODES, settings.cpuProfDir);
    const results: ScenarioResult[] = [];
    for (const writers of settings.writers) {
      progress(`${writers} writer(s)`);
      results.push(
        await runScenario(cluster, {
          writers,
          valueBytes: settings.valueBytes,
          warmupMs: 1000,
          measureMs: Math.round(settings.seconds * 1000),
        }),
      );
    }
    const targets = targetsOf(results);
    if (settings.json) {
      const { json: _json, ...rest } = settings;
      const result = {
        suite: 'meta',
        date: new Date().toISOString(),
        machine: describeMachine(),
        settings: { ...rest, nodes: NODES },
        limits: { fsync },
        results,
        targets,
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      process.stdout.write(report(settings, fsync, results, targets));
    }
  } finally {
    await cluster?.stop();
    await rm(root, { recursive: true, force: true });
  }
}

export const metaSuite: Suite = {
  name: 'meta',
  summary: 'committed writes/s and commit latency of a 3-node meta Raft group vs fsync cost',
  options: OPTIONS,
  run,
};
