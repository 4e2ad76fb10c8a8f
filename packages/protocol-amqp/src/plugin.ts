import {
  adminAcrossBrokers,
  type AdminResource,
  type BrokerContext,
  type ConnectionInfo,
  type ListenerSpec,
  type ProtocolPlugin,
} from '@robustmq/core';
import type { Duplex } from 'node:stream';
import { adminResources } from './admin.js';
import { AmqpBroker } from './broker.js';
import type { AmqpSettings } from './config.js';
import { AmqpConnection } from './connection.js';
import { AmqpMetrics } from './metrics.js';

const FLUSH_MS = 1000;

/** The AMQP 1.0 protocol plugin: its listeners, one broker, an AmqpConnection per accepted socket. */
export class AmqpPlugin implements ProtocolPlugin {
  private broker: AmqpBroker | null = null;
  private admin: () => Readonly<Record<string, AdminResource>> = () => ({});
  private readonly connections = new Set<AmqpConnection>();
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(readonly settings: AmqpSettings) {}

  listeners(): readonly ListenerSpec[] {
    const { host, tls } = this.settings;
    return this.settings.listeners.map((transport) => ({
      name: transport,
      port: transport === 'tcp' ? this.settings.port : this.settings.tlsPort,
      transport,
      ...(host === undefined ? {} : { host }),
      ...(transport === 'tls' && tls ? { tls } : {}),
    }));
  }

  async start(context: BrokerContext): Promise<void> {
    const metrics = new AmqpMetrics(context.metrics);
    const broker = new AmqpBroker(this.settings, context, context.records, metrics);
    await broker.start();
    this.broker = broker;
    const own = () => adminResources(broker);
    // In a cluster, each queue is listed by its owner; links stay with the broker they are on.
    this.admin = context.cluster
      ? adminAcrossBrokers('amqp', context.cluster, own, ['queues'], broker.logger)
      : own;
    this.flushTimer = setInterval(() => this.flush(), FLUSH_MS);
    this.flushTimer.unref();
  }

  accept(connection: Duplex, info: ConnectionInfo): void {
    if (!this.broker) {
      connection.destroy();
      return;
    }
    this.connections.add(
      new AmqpConnection(this.broker, connection, info, (c) => this.connections.delete(c)),
    );
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = null;
    if (this.flushTimer) clearInterval(this.flushTimer);
    for (const connection of [...this.connections]) connection.close();
    if (broker) {
      this.flush(broker);
      await broker.stop();
    }
  }

  adminResources(): Readonly<Record<string, AdminResource>> {
    if (!this.broker) return {};
    return this.admin();
  }

  private flush(broker = this.broker): void {
    if (!broker) return;
    broker.metrics.flush(
      broker.allQueues().map(({ id, kind, queue }) => ({
        name: id,
        temporary: kind === 'temporary',
        depth: queue.depth,
        unsettled: queue.unsettled,
        memoryBytes: queue.memoryBytes,
      })),
    );
  }
}
