/**
 * `npm run bench -- amqp`: one AMQP 1.0 queue, at-least-once (unsettled sends, accepted by the
 * broker once stored; consumers accept each message), 256-byte bodies. Send and receive
 * throughput and end-to-end latency with 1 producer and 1 consumer, then 4 and 4, for RobustMQ
 * and, when the Debian `rabbitmq-server` is installed, RabbitMQ with its AMQP 1.0 plugin, started
 * in the same run. The clients are rhea connections in this process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import rhea, { type Connection, type ConnectionOptions, type EventContext, type Sender } from 'rhea';
import { LatencyHistogram } from './latency-histogram.js';
import { freePort, HOST, spawnWithFileLimit } from './mqtt-brokers.js';
import {
  describeMachine,
  parseSuiteArgs,
  positiveOption,
  progressTo,
  UsageError,
  type Suite,
} from './suite.js';
import { formatRate, markdownTable } from './table.js';
import { serverArgs } from './server-command.js';

const OPTIONS = `    --seconds N         measured seconds per scenario (default: 5)
    --inflight N        unsettled messages per producer (default: 100)
    --brokers LIST      robustmq,rabbitmq (default: both; rabbitmq only when installed)
    --cpu-prof DIR      run robustmq-server under --cpu-prof, one profile per thread in DIR
    --json              print the results as JSON instead of tables`;

/** The Debian package's server script; run directly (not the /usr/sbin wrapper, which switches user). */
const RABBITMQ = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const EPMD = '/usr/bin/epmd';
const RABBITMQCTL = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const BODY_BYTES = 256;
const WARMUP_MS = 1000;
const START_TIMEOUT_MS = 60_000;
/**
 * Terminus durability `unsettled-state`: RabbitMQ's AMQP 1.0 plugin then declares the queue
 * durable (with the default, none, it makes a transient queue whose messages never reach disk).
 * RobustMQ stores every queue; both get durable messages (header `durable`) and accept them only
 * once they are on disk.
 */
const DURABLE_TERMINUS = 2;
const SCENARIOS = [
  { producers: 1, consumers: 1 },
  { producers: 4, consumers: 4 },
] as const;
const progress = progressTo('amqp');
const require = createRequire(import.meta.url);

type BrokerName = 'robustmq' | 'rabbitmq';

interface Settings {
  seconds: number;
  inflight: number;
  brokers: BrokerName[];
  cpuProfDir: string | null;
  json: boolean;
}

interface Broker {
  name: BrokerName;
  version: string;
  port: number;
  /** The queue's address in the broker's own address model. */
  address: string;
  connection: Partial<ConnectionOptions>;
  /** What the broker itself reports about the bench queue's durability, when it can be asked. */
  queueDurability?(): string;
  stop(): Promise<void>;
}

interface Result {
  broker: BrokerName;
  producers: number;
  consumers: number;
  sentPerSecond: number;
  receivedPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
}

function parseSettings(args: readonly string[]): Settings {
  const values = parseSuiteArgs(args, {
    seconds: { type: 'string' },
    inflight: { type: 'string' },
    brokers: { type: 'string' },
    'cpu-prof': { type: 'string' },
    json: { type: 'boolean' },
  });
  const brokers = (values.brokers ?? 'robustmq,rabbitmq').split(',').map((b) => b.trim());
  const unknown = brokers.find((b) => b !== 'robustmq' && b !== 'rabbitmq');
  if (unknown !== undefined) throw new UsageError(`--brokers: unknown broker ${JSON.stringify(unknown)}`);
  return {
    seconds: positiveOption('seconds', values.seconds, 5),
    inflight: Math.round(positiveOption('inflight', values.inflight, 100)),
    brokers: brokers as BrokerName[],
    // npm runs the suite in bench/: a relative directory means the one the user typed it in.
    cpuProfDir:
      values['cpu-prof'] === undefined
        ? null
        : resolve(process.env.INIT_CWD ?? process.cwd(), values['cpu-prof']),
    json: values.json ?? false,
  };
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function supervise(child: ChildProcess): { output: () => string; stop: () => Promise<void> } {
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4096));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function waitForPort(
  port: number,
  child: ChildProcess,
  name: string,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${name} did not start:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The built robustmq-server, standalone with the AMQP plugin, on free loopback ports. */
async function startRobustmq(root: string, cpuProfDir: string | null): Promise<Broker> {
  const port = await freePort();
  const dir = join(root, 'robustmq');
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'robustmq.toml');
  await writeFile(
    config,
    [
      'protocols = ["@robustmq/protocol-amqp"]',
      `data_dir = ${JSON.stringify(join(dir, 'data'))}`,
      `bind = "${HOST}"`,
      '[http]',
      `port = ${await freePort()}`,
      '[log]',
      'level = "warn"',
      '[amqp]',
      `port = ${port}`,
      '',
    ].join('\n'),
  );
  const profile =
    cpuProfDir === null
      ? []
      : // One profile per thread (the journal's read threads have their own), each named by Node.
        ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, `robustmq-amqp-${Date.now()}`)}`];
  const child = spawnWithFileLimit(process.execPath, serverArgs(profile, ['--config', config]));
  const supervised = supervise(child);
  try {
    await waitForPort(port, child, 'robustmq-server', supervised.output);
  } catch (error) {
    await supervised.stop();
    throw error;
  }
  const version = (require('robustmq-server/package.json') as { version: string }).version;
  return { name: 'robustmq', version, port, address: 'queue://bench', connection: {}, stop: supervised.stop };
}

/**
 * RabbitMQ as its own node (name, ports, data and logs under `root`) with the AMQP 1.0 plugin;
 * null with the reason when it cannot run here.
 */
async function startRabbitmq(root: string): Promise<Broker | string> {
  if (!existsSync(RABBITMQ)) return `${RABBITMQ} is not installed (Debian package rabbitmq-server)`;
  const base = join(root, 'rabbitmq');
  await mkdir(base, { recursive: true });
  const port = await freePort();
  const epmdPort = await freePort();
  const plugins = join(base, 'enabled_plugins');
  await writeFile(plugins, '[rabbitmq_amqp1_0].\n');
  await writeFile(
    join(base, 'rabbitmq.conf'),
    ['loopback_users = none', 'log.console = false', ''].join('\n'),
  );
  const env = {
    ...process.env,
    HOME: base,
    RABBITMQ_NODENAME: `bench${process.pid}@localhost`,
    RABBITMQ_NODE_IP_ADDRESS: HOST,
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(await freePort()),
    RABBITMQ_BASE: base,
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
    RABBITMQ_ENABLED_PLUGINS_FILE: plugins,
    RABBITMQ_PID_FILE: join(base, 'rabbitmq.pid'),
    // Its own port mapper, so the one it starts can be stopped again without touching another.
    ERL_EPMD_PORT: String(epmdPort),
  };
  const child = spawn(RABBITMQ, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const supervised = supervise(child);
  const stop = async () => {
    await supervised.stop();
    spawnSync(EPMD, ['-port', String(epmdPort), '-kill'], { stdio: 'ignore' });
  };
  try {
    await waitForPort(port, child, 'rabbitmq-server', supervised.output);
  } catch (error) {
    await stop();
    return `rabbitmq-server could not start here: ${(error as Error).message.split('\n').slice(0, 6).join(' ')}`;
  }
  const dpkg = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server'], { encoding: 'utf8' });
  return {
    name: 'rabbitmq',
    version: dpkg.stdout.trim() || 'unknown',
    port,
    address: '/queue/bench',
    connection: { username: 'guest', password: 'guest' },
    queueDurability() {
      const listed = spawnSync(
        RABBITMQCTL,
        ['-n', env.RABBITMQ_NODENAME, '-q', 'list_queues', 'name', 'durable'],
        {
          env,
          encoding: 'utf8',
        },
      );
      const row = listed.stdout.split('\n').find((line) => line.startsWith('bench\t'));
      if (!row) return 'rabbitmq: could not list the bench queue';
      return row.endsWith('\ttrue')
        ? 'rabbitmq: queue "bench" is durable'
        : 'rabbitmq: queue "bench" is NOT durable';
    },
    stop,
  };
}

function open(broker: Broker): Promise<Connection> {
  // rhea reads `tcp_no_delay` (Nagle off, for both brokers alike) though its typings omit it.
  const options = {
    host: HOST,
    port: broker.port,
    reconnect: false,
    tcp_no_delay: true,
    ...broker.connection,
  };
  const connection = rhea.create_container().connect(options as ConnectionOptions);
  return new Promise((resolve, reject) => {
    connection.once('connection_open', () => resolve(connection));
    connection.once('connection_error', (context: EventContext) =>
      reject(new Error(`${broker.name}: ${JSON.stringify(context.connection.error)}`)),
    );
    connection.once('disconnected', (context: EventContext) =>
      reject(new Error(`${broker.name}: disconnected ${String(context.error ?? '')}`)),
    );
    connection.on('error', () => {});
  });
}

/** A 256-byte body whose first 8 bytes carry the send time, for the end-to-end latency. */
function body(): Buffer {
  const buffer = Buffer.alloc(BODY_BYTES, 0x61);
  buffer.writeDoubleBE(performance.now(), 0);
  return buffer;
}

async function runScenario(
  broker: Broker,
  producers: number,
  consumers: number,
  settings: Settings,
): Promise<Result> {
  const histogram = new LatencyHistogram();
  let measuring = false;
  let running = true;
  let sent = 0;
  let received = 0;
  const connections: Connection[] = [];
  for (let i = 0; i < consumers; i++) {
    const connection = await open(broker);
    connections.push(connection);
    const receiver = connection.open_receiver({
      source: { address: broker.address, durable: DURABLE_TERMINUS },
      credit_window: 500,
      autoaccept: true,
    });
    receiver.on('message', (context: EventContext) => {
      const content = (context.message!.body as { content?: Buffer }).content;
      if (!measuring || !content) return;
      received++;
      histogram.record((performance.now() - content.readDoubleBE(0)) * 1e6);
    });
    await new Promise<void>((resolve) => receiver.once('receiver_open', () => resolve()));
  }
  const senders: Sender[] = [];
  for (let i = 0; i < producers; i++) {
    const connection = await open(broker);
    connections.push(connection);
    const sender = connection.open_sender({
      target: { address: broker.address, durable: DURABLE_TERMINUS },
    });
    let unsettled = 0;
    const pump = () => {
      while (running && unsettled < settings.inflight && sender.sendable()) {
        sender.send({ body: rhea.message.data_section(body()), durable: true });
        unsettled++;
      }
    };
    sender.on('accepted', () => {
      unsettled--;
      if (measuring) sent++;
      pump();
    });
    sender.on('rejected', () => {
      unsettled--;
      pump();
    });
    sender.on('released', () => {
      unsettled--;
      pump();
    });
    sender.on('sendable', pump);
    senders.push(sender);
  }
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  measuring = true;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, settings.seconds * 1000));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  running = false;
  // Let what is in flight drain so the queue starts the next scenario empty.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const connection of connections) connection.close();
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    broker: broker.name,
    producers,
    consumers,
    sentPerSecond: sent / elapsed,
    receivedPerSecond: received / elapsed,
    p50Ms: histogram.percentileMs(0.5),
    p99Ms: histogram.percentileMs(0.99),
  };
}

const ms = (value: number | null) => (value === null ? '-' : value.toFixed(2));

function report(
  results: readonly Result[],
  brokers: readonly Broker[],
  notes: readonly string[],
  settings: Settings,
) {
  const lines = [
    `## AMQP 1.0: one queue, at-least-once, ${BODY_BYTES}-byte bodies, ${settings.inflight} unsettled per producer, ${settings.seconds} s per scenario`,
    '',
    `brokers: ${brokers.map((b) => `${b.name} ${b.version}`).join(', ')}`,
    'like for like: durable messages on a durable queue on both brokers, each accepted (publisher confirm) only once on disk;',
    `the same ${settings.inflight} unsettled sends per producer and 500 credit per consumer, consumers accepting each message`,
    ...notes.map((note) => `note: ${note}`),
    '',
    markdownTable(
      [
        { title: 'broker' },
        { title: 'producers/consumers' },
        { title: 'sent msg/s', align: 'right' },
        { title: 'received msg/s', align: 'right' },
        { title: 'p50 ms', align: 'right' },
        { title: 'p99 ms', align: 'right' },
      ],
      results.map((r) => [
        r.broker,
        `${r.producers}/${r.consumers}`,
        formatRate(r.sentPerSecond),
        formatRate(r.receivedPerSecond),
        ms(r.p50Ms),
        ms(r.p99Ms),
      ]),
    ),
  ];
  const ratios: string[][] = [];
  for (const scenario of SCENARIOS) {
    const ours = results.find((r) => r.broker === 'robustmq' && r.producers === scenario.producers);
    const theirs = results.find((r) => r.broker === 'rabbitmq' && r.producers === scenario.producers);
    if (!ours || !theirs || theirs.receivedPerSecond === 0) continue;
    ratios.push([
      `${scenario.producers}/${scenario.consumers}`,
      `${(ours.receivedPerSecond / theirs.receivedPerSecond).toFixed(2)}x`,
      ours.p99Ms !== null && theirs.p99Ms !== null ? `${(ours.p99Ms / theirs.p99Ms).toFixed(2)}x` : '-',
    ]);
  }
  if (ratios.length > 0) {
    lines.push(
      '',
      'RobustMQ / RabbitMQ (target: throughput at least 1.5x, p99 below 1x)',
      '',
      markdownTable(
        [
          { title: 'producers/consumers' },
          { title: 'throughput', align: 'right' },
          { title: 'p99', align: 'right' },
        ],
        ratios,
      ),
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function run(args: readonly string[]): Promise<void> {
  const settings = parseSettings(args);
  const root = await mkdtemp(join(tmpdir(), 'robustmq-bench-amqp-'));
  const brokers: Broker[] = [];
  const notes: string[] = [];
  try {
    for (const name of settings.brokers) {
      progress(`starting ${name}`);
      if (name === 'robustmq') {
        brokers.push(await startRobustmq(root, settings.cpuProfDir));
      } else {
        const rabbit = await startRabbitmq(root);
        if (typeof rabbit === 'string') {
          progress(`RabbitMQ not measured: ${rabbit}`);
          notes.push(`RabbitMQ not measured: ${rabbit}`);
        } else {
          brokers.push(rabbit);
        }
      }
    }
    const results: Result[] = [];
    for (const scenario of SCENARIOS) {
      for (const broker of brokers) {
        progress(`${broker.name}: ${scenario.producers} producer(s), ${scenario.consumers} consumer(s)`);
        results.push(await runScenario(broker, scenario.producers, scenario.consumers, settings));
      }
    }
    for (const broker of brokers) if (broker.queueDurability) notes.push(broker.queueDurability());
    if (settings.json) {
      const output = {
        suite: 'amqp',
        date: new Date().toISOString(),
        machine: describeMachine(),
        brokers: brokers.map((b) => ({ name: b.name, version: b.version })),
        settings: { ...settings, bodyBytes: BODY_BYTES },
        notes,
        results,
      };
      process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
    } else {
      report(results, brokers, notes, settings);
    }
  } finally {
    for (const broker of brokers) await broker.stop();
    await rm(root, { recursive: true, force: true });
  }
}

export const amqpSuite: Suite = {
  name: 'amqp',
  summary: 'AMQP 1.0 queue throughput and latency, RobustMQ beside RabbitMQ (when installed)',
  options: OPTIONS,
  run,
};
