/**
 * `npm run bench -- mqtt`: RobustMQ's MQTT broker next to Mosquitto and Aedes, all started in the
 * same run on loopback: msgs/s and latency for fan-in, fan-out and point-to-point QoS 1, and
 * resident memory per idle connection, with the ratios against issue 5's targets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BROKER_NAMES, startBroker, type BrokerName, type RunningBroker } from './mqtt-brokers.js';
import { LoadWorkers } from './mqtt-load.js';
import { PAYLOAD_BYTES } from './mqtt-load-protocol.js';
import {
  measureIdleMemory,
  runScenario,
  SCENARIO_NAMES,
  SCENARIO_TITLES,
  type MemoryResult,
  type ScenarioName,
  type ScenarioResult,
  type Timing,
} from './mqtt-scenarios.js';
import {
  describeMachine,
  parseSuiteArgs,
  positiveOption,
  progressTo,
  UsageError,
  type Suite,
} from './suite.js';
import { formatRate, markdownTable, MiB } from './table.js';

const OPTIONS = `    --brokers LIST      brokers, of robustmq,mosquitto,aedes (default: all)
    --scenarios LIST    of fan-in,fan-out,qos1,memory (default: all)
    --seconds N         measured seconds per scenario and broker (default: 5)
    --warmup N          seconds of load before measuring (default: 2)
    --window N          QoS 0 messages in flight per publisher (default: 1000)
    --qos1-window N     QoS 1 messages in flight per publisher (default: 100)
    --connections N     idle connections for the memory measure (default: 10000)
    --cpu-prof DIR      run the Node brokers with --cpu-prof, profiles written to DIR
    --json              print the results as JSON instead of tables`;

const LOAD_PROCESSES = 2;
const IDLE_KEEPALIVE = 60;

/** Issue 5's targets: RobustMQ's delivered msgs/s divided by the peer's. */
const TARGETS: readonly { scenario: ScenarioName; peer: BrokerName; ratio: number }[] = [
  { scenario: 'fan-in', peer: 'mosquitto', ratio: 1 },
  { scenario: 'fan-in', peer: 'aedes', ratio: 3 },
  { scenario: 'fan-out', peer: 'mosquitto', ratio: 1 },
  { scenario: 'fan-out', peer: 'aedes', ratio: 3 },
  { scenario: 'qos1', peer: 'mosquitto', ratio: 1 },
];

interface Settings extends Timing {
  brokers: BrokerName[];
  scenarios: ScenarioName[];
  memory: boolean;
  connections: number;
  cpuProfDir: string | null;
  json: boolean;
}

interface TargetResult {
  what: string;
  value: number | null;
  target: string;
  pass: boolean | null;
}

function pickList<T extends string>(option: string, text: string | undefined, all: readonly T[]): T[] {
  if (text === undefined) return [...all];
  return text.split(',').map((item) => {
    if (!all.includes(item as T)) throw new UsageError(`unknown ${option} ${JSON.stringify(item)}`);
    return item as T;
  });
}

function parseSettings(args: readonly string[]): Settings {
  const values = parseSuiteArgs(args, {
    brokers: { type: 'string' },
    scenarios: { type: 'string' },
    seconds: { type: 'string' },
    warmup: { type: 'string' },
    window: { type: 'string' },
    'qos1-window': { type: 'string' },
    connections: { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  const scenarios = pickList('scenario', values.scenarios, [...SCENARIO_NAMES, 'memory'] as const);
  return {
    brokers: pickList('broker', values.brokers, BROKER_NAMES),
    scenarios: scenarios.filter((s): s is ScenarioName => s !== 'memory'),
    memory: scenarios.includes('memory'),
    measureSeconds: positiveOption('seconds', values.seconds, 5),
    warmupSeconds: positiveOption('warmup', values.warmup, 2),
    qos0Window: Math.round(positiveOption('window', values.window, 1000)),
    qos1Window: Math.min(65535, Math.round(positiveOption('qos1-window', values['qos1-window'], 100))),
    connections: Math.round(positiveOption('connections', values.connections, 10_000)),
    // npm runs the suite in bench/: a relative directory means the one the user typed it in.
    cpuProfDir:
      values['cpu-prof'] === undefined
        ? null
        : resolve(process.env.INIT_CWD ?? process.cwd(), values['cpu-prof']),
    json: values.json,
  };
}

const progress = progressTo('mqtt');

function targetsOf(settings: Settings, results: readonly ScenarioResult[]): TargetResult[] {
  const rate = (broker: BrokerName, scenario: ScenarioName) =>
    results.find((r) => r.broker === broker && r.scenario === scenario)?.deliveredPerSecond;
  const targets: TargetResult[] = [];
  for (const { scenario, peer, ratio } of TARGETS) {
    const ours = rate('robustmq', scenario);
    const theirs = rate(peer, scenario);
    if (ours === undefined || theirs === undefined) continue;
    const value = theirs > 0 ? ours / theirs : null;
    targets.push({
      what: `${scenario}: RobustMQ ÷ ${peer === 'mosquitto' ? 'Mosquitto' : 'Aedes'} msgs/s`,
      value,
      target: `>= ${ratio.toFixed(1)}x`,
      pass: value === null ? null : value >= ratio,
    });
  }
  const qos1 = results.find((r) => r.broker === 'robustmq' && r.scenario === 'qos1');
  if (qos1 !== undefined && settings.scenarios.includes('qos1'))
    targets.push({
      what: 'qos1: RobustMQ messages lost',
      value: qos1.lost,
      target: '0',
      pass: qos1.lost === 0,
    });
  return targets;
}

const ms = (value: number | null) =>
  value === null ? 'n/a' : value < 10 ? value.toFixed(2) : value.toFixed(1);
const cores = (value: number) => `${(value * 100).toFixed(0)}%`;

function report(
  settings: Settings,
  brokers: readonly RunningBroker[],
  results: readonly ScenarioResult[],
  memory: readonly MemoryResult[],
  targets: readonly TargetResult[],
): string {
  const machine = describeMachine();
  const lines = [
    `mqtt benchmark, ${new Date().toISOString()}`,
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.os}, node ${machine.node}`,
    `brokers: ${brokers.map((b) => `${b.name} ${b.version}`).join(', ')}; all on 127.0.0.1, one process each`,
    `load: ${LOAD_PROCESSES} load-generator processes (raw MQTT 3.1.1 over mqtt-packet), ${PAYLOAD_BYTES}-byte payloads, ` +
      `${settings.warmupSeconds} s warm-up then ${settings.measureSeconds} s measured per scenario and broker; ` +
      `closed loop: each publisher keeps at most ${settings.qos0Window} (QoS 0) / ${settings.qos1Window} (QoS 1) messages ` +
      'not yet delivered to every subscriber (QoS 1: nor acknowledged), so it offers what the broker sustains; ' +
      'latency is publish-to-deliver under that load (queueing included). CPU: cores used over the measured window ' +
      "(broker: all its threads; load: load processes and the suite); run / wait: share of the window the broker's main " +
      'thread ran, and waited runnable for a CPU (/proc/PID/schedstat)',
    '',
  ];
  for (const scenario of settings.scenarios) {
    const rows = results.filter((r) => r.scenario === scenario);
    lines.push(
      SCENARIO_TITLES[scenario],
      '',
      markdownTable(
        [
          { title: 'broker' },
          { title: 'delivered msgs/s', align: 'right' },
          { title: 'published msgs/s', align: 'right' },
          { title: 'p50 ms', align: 'right' },
          { title: 'p99 ms', align: 'right' },
          { title: 'broker CPU', align: 'right' },
          { title: 'main thread run / wait', align: 'right' },
          { title: 'load CPU', align: 'right' },
          { title: scenario === 'qos1' ? 'acked' : 'sent', align: 'right' },
          { title: 'delivered', align: 'right' },
          { title: 'lost', align: 'right' },
        ],
        rows.map((r) => [
          r.broker,
          formatRate(r.deliveredPerSecond),
          formatRate(r.publishedPerSecond),
          ms(r.p50Ms),
          ms(r.p99Ms),
          cores(r.brokerCores),
          `${cores(r.brokerMainRunning)} / ${cores(r.brokerMainWaiting)}`,
          cores(r.loadCores),
          formatRate(scenario === 'qos1' ? r.acked : r.sent),
          formatRate(r.delivered),
          `${formatRate(r.lost)}${r.writeOffs > 0 ? ` (${r.writeOffs} stalls)` : ''}`,
        ]),
      ),
      '',
    );
  }
  if (memory.length > 0)
    lines.push(
      `memory per idle connection: ${settings.connections} MQTT 3.1.1 connections, keep-alive ${IDLE_KEEPALIVE} s, RSS from /proc/PID/status before and 2 s after`,
      '',
      markdownTable(
        [
          { title: 'broker' },
          { title: 'connections', align: 'right' },
          { title: 'RSS before', align: 'right' },
          { title: 'RSS after', align: 'right' },
          { title: 'per connection', align: 'right' },
        ],
        memory.map((m) => [
          m.broker,
          `${formatRate(m.connections)}${m.error === null ? '' : ` (${m.error})`}`,
          `${(m.rssBeforeBytes / MiB).toFixed(1)} MiB`,
          `${(m.rssAfterBytes / MiB).toFixed(1)} MiB`,
          `${(m.bytesPerConnection / 1024).toFixed(1)} KiB`,
        ]),
      ),
      '',
    );
  if (targets.length > 0)
    lines.push(
      markdownTable(
        [
          { title: 'target' },
          { title: 'value', align: 'right' },
          { title: 'wanted', align: 'right' },
          { title: 'verdict' },
        ],
        targets.map((t) => [
          t.what,
          t.value === null ? 'n/a' : t.what.endsWith('lost') ? String(t.value) : `${t.value.toFixed(2)}x`,
          t.target,
          t.pass === null ? 'n/a' : t.pass ? 'PASS' : 'MISS',
        ]),
      ),
      '',
    );
  return lines.join('\n');
}

async function run(args: readonly string[]): Promise<void> {
  const settings = parseSettings(args);
  const root = await mkdtemp(join(tmpdir(), 'robustmq-bench-mqtt-'));
  // Ctrl-C still runs the exit hooks that kill the brokers.
  const interrupted = () => process.exit(130);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const load = new LoadWorkers(LOAD_PROCESSES);
  const brokers: RunningBroker[] = [];
  try {
    for (const name of settings.brokers) {
      progress(`starting ${name}`);
      brokers.push(await startBroker(name, { root, cpuProfDir: settings.cpuProfDir }));
    }
    const memory: MemoryResult[] = [];
    if (settings.memory)
      for (const broker of brokers) {
        progress(`${broker.name}: ${settings.connections} idle connections`);
        memory.push(await measureIdleMemory(broker, load, settings.connections, IDLE_KEEPALIVE));
      }
    // Scenario by scenario, so the brokers compared in one scenario ran close together in time.
    const results: ScenarioResult[] = [];
    for (const scenario of settings.scenarios)
      for (const broker of brokers) {
        progress(`${broker.name}: ${scenario}`);
        results.push(await runScenario(broker, load, scenario, settings));
      }
    const targets = targetsOf(settings, results);
    if (settings.json) {
      const { json: _json, ...rest } = settings;
      const output = {
        suite: 'mqtt',
        date: new Date().toISOString(),
        machine: describeMachine(),
        brokers: brokers.map((b) => ({ name: b.name, version: b.version })),
        settings: { ...rest, loadProcesses: LOAD_PROCESSES, payloadBytes: PAYLOAD_BYTES },
        results,
        memory,
        targets,
      };
      process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    } else {
      process.stdout.write(report(settings, brokers, results, memory, targets));
    }
  } finally {
    await Promise.all(brokers.map((broker) => broker.stop()));
    await load.stop();
    await rm(root, { recursive: true, force: true });
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}

export const mqttSuite: Suite = {
  name: 'mqtt',
  summary: 'MQTT msgs/s, latency and memory per connection: RobustMQ vs Mosquitto and Aedes',
  options: OPTIONS,
  run,
};
