/**
 * The mqtt suite's workloads, each run against one broker with the load-generator processes:
 * fan-in, fan-out and point-to-point QoS 1 (closed-loop, see mqtt-load-worker.ts), and idle
 * connections for resident memory per connection.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LatencyHistogram } from './latency-histogram.js';
import { cpuSeconds, HOST, residentBytes, schedulerNanoseconds, type RunningBroker } from './mqtt-brokers.js';
import type { LoadWorkers } from './mqtt-load.js';
import type { ClientSpec } from './mqtt-load-protocol.js';

export type ScenarioName = 'fan-in' | 'fan-out' | 'qos1';
export const SCENARIO_NAMES: readonly ScenarioName[] = ['fan-in', 'fan-out', 'qos1'];

export const SCENARIO_TITLES: Record<ScenarioName, string> = {
  'fan-in': 'fan-in: 4 publishers -> 1 subscriber on #, QoS 0',
  'fan-out': 'fan-out: 1 publisher -> 8 subscribers on one topic, QoS 0',
  qos1: 'point-to-point QoS 1: 8 publisher/subscriber pairs',
};

export interface Timing {
  warmupSeconds: number;
  measureSeconds: number;
  /** Window of a QoS 0 publisher: messages not yet delivered to every subscriber. */
  qos0Window: number;
  /** Window of a QoS 1 publisher: messages not yet both acknowledged and delivered. */
  qos1Window: number;
}

/** Which client runs in which load-generator process. */
interface Plan {
  qos: 0 | 1;
  publishers: number;
  copies: number;
  clients: ClientSpec[][];
}

export interface ScenarioResult {
  broker: string;
  scenario: ScenarioName;
  qos: 0 | 1;
  window: number;
  /** Length of the measured window (after the warm-up). */
  seconds: number;
  /** Messages received by all subscribers per second, over the measured window. */
  deliveredPerSecond: number;
  /** Messages written by all publishers per second, over the measured window. */
  publishedPerSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** CPU used over the measured window, in cores (1 = one core busy all the time). */
  brokerCores: number;
  /**
   * Share of the window the broker's main thread ran, and spent runnable but waiting for a CPU:
   * near 100% together means the broker was the limit (busy or starved), lower that it idled.
   */
  brokerMainRunning: number;
  brokerMainWaiting: number;
  /** The load processes and this one (which relays delivery counts). */
  loadCores: number;
  /** Over the whole run, after waiting for the broker to deliver what it had taken. */
  sent: number;
  acked: number;
  delivered: number;
  /** Deliveries missing: of acknowledged messages for QoS 1, of written ones for QoS 0. */
  lost: number;
  duplicates: number;
  /** Times a QoS 0 publisher's window stayed full for a second (the broker dropped messages). */
  writeOffs: number;
}

export interface MemoryResult {
  broker: string;
  requested: number;
  connections: number;
  keepalive: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** Why fewer connections than requested were opened, if so. */
  error: string | null;
}

const DRAIN_MS = 5000;

function plan(name: ScenarioName, run: number, workers: number): Plan {
  const prefix = `bench/${run}`;
  const clients: ClientSpec[][] = Array.from({ length: workers }, () => []);
  const id = (role: string, index: number) => `bench-${run}-${role}-${index}`;
  switch (name) {
    case 'fan-in':
      // The subscriber parses every message: it gets a process of its own.
      clients[0]?.push({ role: 'sub', clientId: id('sub', 0), filter: '#', qos: 0 });
      for (let i = 0; i < 4; i++)
        clients[1 % workers]?.push({
          role: 'pub',
          clientId: id('pub', i),
          publisher: i,
          topic: `${prefix}/in/${i}`,
          qos: 0,
        });
      return { qos: 0, publishers: 4, copies: 1, clients };
    case 'fan-out':
      for (let i = 0; i < 8; i++)
        clients[i % workers]?.push({ role: 'sub', clientId: id('sub', i), filter: `${prefix}/out`, qos: 0 });
      clients[0]?.push({ role: 'pub', clientId: id('pub', 0), publisher: 0, topic: `${prefix}/out`, qos: 0 });
      return { qos: 0, publishers: 1, copies: 8, clients };
    case 'qos1':
      for (let i = 0; i < 8; i++) {
        const topic = `${prefix}/p2p/${i}`;
        clients[i % workers]?.push({ role: 'sub', clientId: id('sub', i), filter: topic, qos: 1 });
        clients[i % workers]?.push({ role: 'pub', clientId: id('pub', i), publisher: i, topic, qos: 1 });
      }
      return { qos: 1, publishers: 8, copies: 1, clients };
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

let runs = 0;

/** Runs one scenario against one broker: connect, warm up, measure, stop, drain, count. */
export async function runScenario(
  broker: RunningBroker,
  load: LoadWorkers,
  name: ScenarioName,
  timing: Timing,
): Promise<ScenarioResult> {
  const { workers } = load;
  const layout = plan(name, ++runs, workers.length);
  const window = layout.qos === 0 ? timing.qos0Window : timing.qos1Window;
  load.reset(workers.filter((_, i) => layout.clients[i]?.some((c) => c.role === 'pub')));
  await Promise.all(
    workers.map((worker, i) =>
      worker.ask(
        {
          type: 'setup',
          host: HOST,
          port: broker.port,
          clients: layout.clients[i] ?? [],
          publishers: layout.publishers,
          copies: layout.copies,
          window,
        },
        'ready',
      ),
    ),
  );
  try {
    for (const worker of workers) worker.tell({ type: 'go' });
    await sleep(timing.warmupSeconds * 1000);
    const cpuBefore = [broker.pid, ...workers.map((w) => w.pid)].map(cpuSeconds);
    const ownBefore = process.cpuUsage();
    const schedBefore = schedulerNanoseconds(broker.pid);
    const startedAt = process.hrtime.bigint();
    for (const worker of workers) worker.tell({ type: 'mark' });
    await sleep(timing.measureSeconds * 1000);
    const reports = await Promise.all(workers.map((w) => w.ask({ type: 'report' }, 'report')));
    const wall = Number(process.hrtime.bigint() - startedAt) / 1e9;
    const cpuAfter = [broker.pid, ...workers.map((w) => w.pid)].map(cpuSeconds);
    const own = process.cpuUsage(ownBefore);
    const schedAfter = schedulerNanoseconds(broker.pid);
    await Promise.all(workers.map((w) => w.ask({ type: 'stop' }, 'stopped')));

    // Wait for what the broker took to arrive, then count.
    const deadline = Date.now() + DRAIN_MS;
    let totals = await Promise.all(workers.map((w) => w.ask({ type: 'totals' }, 'totals')));
    const perPublisher = (pick: (t: (typeof totals)[number]) => number[]) =>
      Array.from({ length: layout.publishers }, (_, p) => sum(totals.map((t) => pick(t)[p] ?? 0)));
    const missing = () => {
      const settled = perPublisher(layout.qos === 1 ? (t) => t.acked : (t) => t.sent);
      const delivered = perPublisher((t) => t.delivered);
      return sum(settled.map((n, p) => Math.max(0, n * layout.copies - (delivered[p] ?? 0))));
    };
    while (missing() > 0 && Date.now() < deadline) {
      await sleep(100);
      totals = await Promise.all(workers.map((w) => w.ask({ type: 'totals' }, 'totals')));
    }
    const error = load.firstError();
    if (error !== null) throw error;

    const histogram = new LatencyHistogram();
    for (const report of reports) histogram.addPairs(report.histogram);
    const rate = (count: (r: (typeof reports)[number]) => number) =>
      sum(reports.map((r) => (r.elapsedNs > 0 ? count(r) / (r.elapsedNs / 1e9) : 0)));
    return {
      broker: broker.name,
      scenario: name,
      qos: layout.qos,
      window,
      seconds: wall,
      deliveredPerSecond: rate((r) => r.delivered),
      publishedPerSecond: rate((r) => r.published),
      p50Ms: histogram.percentileMs(0.5),
      p99Ms: histogram.percentileMs(0.99),
      brokerCores: ((cpuAfter[0] ?? 0) - (cpuBefore[0] ?? 0)) / wall,
      brokerMainRunning: (schedAfter.running - schedBefore.running) / 1e9 / wall,
      brokerMainWaiting: (schedAfter.waiting - schedBefore.waiting) / 1e9 / wall,
      loadCores:
        (sum(cpuAfter.slice(1).map((after, i) => after - (cpuBefore[i + 1] ?? 0))) +
          (own.user + own.system) / 1e6) /
        wall,
      sent: sum(perPublisher((t) => t.sent)),
      acked: sum(perPublisher((t) => t.acked)),
      delivered: sum(perPublisher((t) => t.delivered)),
      lost: missing(),
      duplicates: sum(totals.map((t) => t.duplicates)),
      writeOffs: sum(totals.map((t) => t.writtenOff)),
    };
  } finally {
    await Promise.all(workers.map((w) => w.ask({ type: 'teardown' }, 'torn-down')));
  }
}

/**
 * Opens `count` idle connections (split over the load processes) and reports how much the
 * broker's resident memory grew, after letting it settle.
 */
export async function measureIdleMemory(
  broker: RunningBroker,
  load: LoadWorkers,
  count: number,
  keepalive: number,
): Promise<MemoryResult> {
  const { workers } = load;
  load.reset([]);
  await sleep(1000);
  const rssBeforeBytes = residentBytes(broker.pid);
  const share = Math.ceil(count / workers.length);
  const answers = await Promise.all(
    workers.map((worker, i) =>
      worker.ask(
        {
          type: 'idle',
          host: HOST,
          port: broker.port,
          count: Math.max(0, Math.min(share, count - i * share)),
          keepalive,
          prefix: `idle-${broker.name}-${i}`,
        },
        'idle-ready',
      ),
    ),
  );
  try {
    await sleep(2000);
    const rssAfterBytes = residentBytes(broker.pid);
    const connections = sum(answers.map((a) => a.connected));
    return {
      broker: broker.name,
      requested: count,
      connections,
      keepalive,
      rssBeforeBytes,
      rssAfterBytes,
      bytesPerConnection: connections > 0 ? (rssAfterBytes - rssBeforeBytes) / connections : 0,
      error: answers.find((a) => a.error !== null)?.error ?? null,
    };
  } finally {
    await Promise.all(workers.map((w) => w.ask({ type: 'close-idle' }, 'idle-closed')));
    // Let the broker take the closes in before anything is measured on it.
    await sleep(1000);
  }
}
