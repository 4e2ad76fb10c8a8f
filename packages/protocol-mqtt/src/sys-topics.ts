import { createRequire } from 'node:module';
import type { MqttBroker } from './broker.js';
import { Publication } from './publication.js';

const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * The `$SYS/broker/...` topics: version, uptime, clients connected, disconnected and in all,
 * subscriptions, retained and stored messages, messages and bytes received and sent, published
 * retained at QoS 0 every `intervalSeconds` (and at start). They live in
 * memory only: the retained store's copies are not written to the meta store. Wildcards at the
 * first level do not match `$SYS`, so only explicit `$SYS/...` subscribers get them.
 */
export class SysTopics {
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly broker: MqttBroker,
    private readonly intervalSeconds: number,
  ) {}

  start(): void {
    if (this.intervalSeconds === 0) return;
    this.publish();
    this.timer = setInterval(() => this.publish(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  publish(): void {
    const now = Date.now();
    const totals = this.broker.metrics.totals();
    let connected = 0;
    for (const connection of this.broker.connections) if (connection.state === 'connected') connected++;
    // As Mosquitto counts them: sessions connected or kept for a client that will come back, and
    // messages held for them (queued or awaiting acknowledgement) plus retained ones.
    const { sessions, retained } = this.broker;
    let held = 0;
    for (const session of sessions.values())
      held += session.outbound.queuedCount + session.outbound.inflightCount;
    const values: Array<[string, string | number]> = [
      ['version', `robustmq ${VERSION}`],
      ['uptime', `${Math.floor((now - this.startedAt) / 1000)} seconds`],
      ['clients/connected', connected],
      ['clients/total', Math.max(sessions.size, connected)],
      ['clients/disconnected', Math.max(0, sessions.size - connected)],
      ['subscriptions/count', this.broker.subscriptionCount()],
      ['retained messages/count', retained.size],
      ['messages/stored', retained.size + held],
      ['messages/received', totals.messagesReceived],
      ['messages/sent', totals.messagesSent],
      ['bytes/received', totals.bytesReceived],
      ['bytes/sent', totals.bytesSent],
    ];
    for (const [name, value] of values) this.set(name, value, now);
  }

  /** Publishes `$SYS/broker/<name>` retained at QoS 0 (also the bridges' connection states). */
  set(name: string, value: string | number, now = Date.now()): void {
    const publication = new Publication(
      `$SYS/broker/${name}`,
      Buffer.from(String(value)),
      0,
      true,
      undefined,
      0,
      null,
      null,
      4,
      now,
    );
    this.broker.retained.set(publication);
    this.broker.route(publication, now);
  }
}
