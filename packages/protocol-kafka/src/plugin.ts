import type {
  AdminResource,
  BrokerContext,
  ConnectionInfo,
  ListenerAddress,
  ListenerSpec,
  ProtocolPlugin,
} from '@robustmq/core';
import type { Duplex } from 'node:stream';
import { Broker } from './broker/broker.js';
import { Connection } from './broker/connection.js';
import type { KafkaSettings } from './config.js';
import { GroupMetrics } from './groups/group-metrics.js';
import { groupService, groupsAdmin } from './groups/index.js';

/** The Kafka protocol plugin: its listeners, one broker, a Connection per accepted socket. */
export class KafkaPlugin implements ProtocolPlugin {
  private broker: Broker | null = null;
  private groupMetrics: GroupMetrics | null = null;
  private readonly connections = new Set<Connection>();

  constructor(readonly settings: KafkaSettings) {}

  listeners(): readonly ListenerSpec[] {
    const { host, tls } = this.settings;
    return this.settings.listeners.map((transport) => ({
      name: transport,
      port: transport === 'tls' ? this.settings.tlsPort : this.settings.port,
      transport,
      ...(host === undefined ? {} : { host }),
      ...(transport === 'tls' && tls ? { tls } : {}),
    }));
  }

  async start(context: BrokerContext): Promise<void> {
    const broker = new Broker(context, this.settings);
    this.broker = broker;
    this.groupMetrics = new GroupMetrics(() => groupService(broker), context.metrics, broker.logger);
    this.groupMetrics.start();
    this.broker.logger.info(
      { autoCreateTopics: this.settings.autoCreateTopics, sasl: this.settings.saslEnabled },
      'Kafka plugin started',
    );
    return Promise.resolve();
  }

  /** Joins the cluster's Kafka brokers once the real ports are known. */
  listening(listeners: readonly ListenerAddress[]): void {
    this.broker?.cluster.start(listeners);
  }

  accept(socket: Duplex, info: ConnectionInfo): void {
    if (!this.broker) {
      socket.destroy();
      return;
    }
    const connection = new Connection(this.broker, socket, info);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = null;
    await this.groupMetrics?.stop();
    this.groupMetrics = null;
    for (const connection of this.connections) connection.close();
    this.connections.clear();
    await broker?.stop();
  }

  adminResources(): Readonly<Record<string, AdminResource>> {
    if (!this.broker) return {};
    return { groups: groupsAdmin(this.broker) };
  }
}
