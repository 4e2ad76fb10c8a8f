/**
 * A load-generator process for the mqtt suite (forked by it, never run by hand): holds the MQTT
 * clients the suite gives it and answers its messages (see mqtt-load-protocol.ts).
 *
 * Publishers run closed-loop: each keeps at most `window` messages not yet delivered to every
 * subscriber (the suite relays delivery counts from the subscribers' processes) and, at QoS 1, not
 * yet acknowledged, so the offered load follows what the broker sustains instead of queueing.
 */
import mqttPacket from 'mqtt-packet';
import { LatencyHistogram } from './latency-histogram.js';
import { MqttBenchClient } from './mqtt-bench-client.js';
import {
  PAYLOAD_BYTES,
  PUBLISHER_OFFSET,
  SEQUENCE_OFFSET,
  STAMP_OFFSET,
  type FromWorker,
  type PublisherSpec,
  type Setup,
  type ToWorker,
  type Totals,
} from './mqtt-load-protocol.js';

/** Most frames in one socket write. */
const MAX_BATCH = 256;
/** A QoS 0 publisher whose window stays full this long writes it off as lost and goes on. */
const WRITE_OFF_MS = 1000;
const IDLE_CONNECT_CONCURRENCY = 200;
const REPORT_INTERVAL_MS = 1;

function send(message: FromWorker): void {
  process.send?.(message);
}

class Publisher {
  sent = 0;
  sentAtMark = 0;
  /** Deliveries of this publisher's messages counted by every subscriber, relayed by the suite. */
  delivered = 0;
  writtenOff = 0;
  writeOffs = 0;
  private running = false;
  private blocked = false;
  private scheduled = false;
  private sequence = 0;
  private messageId = 0;
  private lastProgressAt = Date.now();
  private readonly frame: Buffer;
  private readonly payloadAt: number;

  constructor(
    readonly spec: PublisherSpec,
    readonly client: MqttBenchClient,
    private readonly window: number,
    private readonly copies: number,
  ) {
    this.frame = mqttPacket.generate({
      cmd: 'publish',
      topic: spec.topic,
      payload: Buffer.alloc(PAYLOAD_BYTES),
      qos: spec.qos,
      ...(spec.qos === 1 ? { messageId: 1 } : {}),
      retain: false,
      dup: false,
    });
    this.payloadAt = this.frame.length - PAYLOAD_BYTES;
    client.onAck = () => this.schedule();
  }

  start(): void {
    this.running = true;
    this.lastProgressAt = Date.now();
    this.schedule();
  }

  stop(): void {
    this.running = false;
  }

  credit(delivered: number): void {
    if (delivered === this.delivered) return;
    this.delivered = delivered;
    this.lastProgressAt = Date.now();
    this.schedule();
  }

  /** Messages that count against the window. */
  outstanding(): number {
    const done = Math.floor(this.delivered / this.copies) + this.writtenOff;
    const settled = this.spec.qos === 1 ? Math.min(done, this.client.acked) : done;
    return this.sent - settled;
  }

  /** QoS 0 only: a window stuck full (messages the broker dropped) is written off. */
  checkStall(now: number): void {
    if (!this.running || this.spec.qos !== 0 || this.outstanding() < this.window) return;
    if (now - this.lastProgressAt < WRITE_OFF_MS) return;
    this.writtenOff += this.outstanding();
    this.writeOffs++;
    this.lastProgressAt = now;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || !this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running || this.blocked) return;
    const room = this.window - this.outstanding();
    if (room <= 0) return;
    const count = Math.min(room, MAX_BATCH);
    const size = this.frame.length;
    const batch = Buffer.allocUnsafe(count * size);
    const stamp = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      const at = i * size;
      this.frame.copy(batch, at);
      const payload = at + this.payloadAt;
      batch.writeBigUInt64LE(stamp, payload + STAMP_OFFSET);
      batch.writeUInt32LE(this.spec.publisher, payload + PUBLISHER_OFFSET);
      batch.writeUInt32LE(this.sequence++ >>> 0, payload + SEQUENCE_OFFSET);
      if (this.spec.qos === 1) {
        this.messageId = (this.messageId % 0xffff) + 1;
        batch.writeUInt16BE(this.messageId, payload - 2);
      }
    }
    this.sent += count;
    if (this.client.write(batch)) {
      this.schedule();
      return;
    }
    this.blocked = true;
    void this.client.drained().then(() => {
      this.blocked = false;
      this.schedule();
    });
  }
}

/** What this process's subscribers have received, per publisher index. */
class Deliveries {
  readonly counts: number[];
  duplicates = 0;
  sinceMark = 0;
  measuring = false;
  markedAt = 0n;
  readonly histogram = new LatencyHistogram();
  private reportScheduled = false;

  constructor(publishers: number) {
    this.counts = new Array<number>(publishers).fill(0);
  }

  /** A handler for one subscriber, which keeps its own last sequence per publisher. */
  handler(): (payload: Buffer, receivedAt: bigint) => void {
    const last = new Array<number>(this.counts.length).fill(-1);
    return (payload, receivedAt) => {
      const publisher = payload.readUInt32LE(PUBLISHER_OFFSET);
      const sequence = payload.readUInt32LE(SEQUENCE_OFFSET);
      if (sequence <= (last[publisher] ?? -1)) {
        this.duplicates++;
        return;
      }
      last[publisher] = sequence;
      this.counts[publisher] = (this.counts[publisher] ?? 0) + 1;
      if (this.measuring) {
        this.sinceMark++;
        this.histogram.record(Number(receivedAt - payload.readBigUInt64LE(STAMP_OFFSET)));
      }
      this.scheduleReport();
    };
  }

  /** At most one report a millisecond: the load processes share the CPUs with the broker. */
  private scheduleReport(): void {
    if (this.reportScheduled) return;
    this.reportScheduled = true;
    setTimeout(() => {
      this.reportScheduled = false;
      send({ type: 'delivered', counts: this.counts });
    }, REPORT_INTERVAL_MS);
  }
}

interface Scenario {
  clients: MqttBenchClient[];
  publishers: Publisher[];
  deliveries: Deliveries;
  stallTimer: NodeJS.Timeout;
}

let scenario: Scenario | null = null;
let idleClients: MqttBenchClient[] = [];

async function setUp(setup: Setup): Promise<void> {
  const deliveries = new Deliveries(setup.publishers);
  const clients: MqttBenchClient[] = [];
  const publishers: Publisher[] = [];
  const connect = (clientId: string) =>
    MqttBenchClient.connect({ host: setup.host, port: setup.port, clientId, keepalive: 60 });
  // Subscribers first, so nothing published is missed once every process is ready.
  for (const spec of setup.clients) {
    if (spec.role !== 'sub') continue;
    const client = await connect(spec.clientId);
    client.onPublish = deliveries.handler();
    await client.subscribe(spec.filter, spec.qos);
    clients.push(client);
  }
  for (const spec of setup.clients) {
    if (spec.role !== 'pub') continue;
    const client = await connect(spec.clientId);
    clients.push(client);
    publishers.push(new Publisher(spec, client, setup.window, setup.copies));
  }
  for (const client of clients) {
    client.onLost = (error) => send({ type: 'error', message: error.message });
  }
  const stallTimer = setInterval(() => {
    const now = Date.now();
    for (const publisher of publishers) publisher.checkStall(now);
  }, 100);
  scenario = { clients, publishers, deliveries, stallTimer };
}

function totals(current: Scenario, publishers: number): Totals {
  const sent = new Array<number>(publishers).fill(0);
  const acked = new Array<number>(publishers).fill(0);
  let writtenOff = 0;
  for (const publisher of current.publishers) {
    sent[publisher.spec.publisher] = publisher.sent;
    acked[publisher.spec.publisher] = publisher.client.acked;
    writtenOff += publisher.writeOffs;
  }
  return {
    type: 'totals',
    sent,
    acked,
    delivered: [...current.deliveries.counts],
    duplicates: current.deliveries.duplicates,
    writtenOff,
  };
}

/** Opens the connections; stops at the first failure and returns its message (null if none). */
async function openIdle(message: Extract<ToWorker, { type: 'idle' }>): Promise<string | null> {
  let next = 0;
  let failure: string | null = null;
  const open = async (): Promise<void> => {
    try {
      while (next < message.count) {
        const index = next++;
        idleClients.push(
          await MqttBenchClient.connect({
            host: message.host,
            port: message.port,
            clientId: `${message.prefix}-${index}`,
            keepalive: message.keepalive,
          }),
        );
      }
    } catch (error) {
      failure ??= error instanceof Error ? error.message : String(error);
      next = message.count;
    }
  };
  await Promise.all(Array.from({ length: IDLE_CONNECT_CONCURRENCY }, open));
  return failure;
}

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case 'setup':
      await setUp(message);
      send({ type: 'ready' });
      return;
    case 'go':
      for (const publisher of scenario?.publishers ?? []) publisher.start();
      return;
    case 'credit':
      for (const publisher of scenario?.publishers ?? [])
        publisher.credit(message.delivered[publisher.spec.publisher] ?? 0);
      return;
    case 'mark':
      if (scenario === null) return;
      scenario.deliveries.measuring = true;
      scenario.deliveries.sinceMark = 0;
      scenario.deliveries.histogram.clear();
      scenario.deliveries.markedAt = process.hrtime.bigint();
      for (const publisher of scenario.publishers) publisher.sentAtMark = publisher.sent;
      return;
    case 'report': {
      if (scenario === null) return;
      const { deliveries } = scenario;
      send({
        type: 'report',
        delivered: deliveries.sinceMark,
        published: scenario.publishers.reduce((sum, p) => sum + p.sent - p.sentAtMark, 0),
        elapsedNs: Number(process.hrtime.bigint() - deliveries.markedAt),
        histogram: deliveries.histogram.toPairs(),
      });
      deliveries.measuring = false;
      return;
    }
    case 'stop':
      for (const publisher of scenario?.publishers ?? []) publisher.stop();
      send({ type: 'stopped' });
      return;
    case 'totals':
      if (scenario !== null) send(totals(scenario, scenario.deliveries.counts.length));
      return;
    case 'teardown':
      if (scenario !== null) {
        clearInterval(scenario.stallTimer);
        await Promise.all(scenario.clients.map((client) => client.close()));
        scenario = null;
      }
      send({ type: 'torn-down' });
      return;
    case 'idle':
      {
        const error = await openIdle(message);
        send({ type: 'idle-ready', connected: idleClients.length, error });
      }
      return;
    case 'close-idle':
      for (const client of idleClients) client.destroy();
      idleClients = [];
      send({ type: 'idle-closed' });
      return;
  }
}

process.on('message', (message: ToWorker) => {
  handle(message).catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  });
});
process.on('disconnect', () => process.exit(0));
