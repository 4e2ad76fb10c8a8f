import { TopicCatalog, type BrokerContext, type Logger } from '@robustmq/core';
import { KafkaCluster } from '../cluster/kafka-cluster.js';
import type { KafkaSettings } from '../config.js';
import type { BrokerService, ConnectionAddress, KafkaBroker } from './handler.js';
import { KafkaMetrics } from './metrics.js';

/** The state one plugin run shares between its connections: settings, catalog, services. */
export class Broker implements KafkaBroker {
  readonly catalog: TopicCatalog;
  readonly logger: Logger;
  readonly nodeId: number;
  readonly metrics: KafkaMetrics;
  readonly cluster: KafkaCluster;
  private readonly services = new Map<string, object>();
  private readonly abort = new AbortController();

  constructor(
    readonly context: BrokerContext,
    readonly settings: KafkaSettings,
  ) {
    this.logger = context.logger.child({ protocol: 'kafka' });
    this.catalog = context.topics ?? new TopicCatalog(context.meta, context.storage, { logger: this.logger });
    this.nodeId = context.nodeId;
    this.metrics = new KafkaMetrics(context.metrics);
    this.cluster = new KafkaCluster({
      cluster: context.cluster,
      nodeId: context.nodeId,
      meta: context.meta,
      logger: this.logger,
      ...(settings.advertisedHost === undefined ? {} : { advertisedHost: settings.advertisedHost }),
      ...(settings.advertisedPort === undefined ? {} : { advertisedPort: settings.advertisedPort }),
    });
  }

  get stopped(): AbortSignal {
    return this.abort.signal;
  }

  advertised(connection: ConnectionAddress): { host: string; port: number } {
    // A listener bound to every address is reached at different ones (loopback on this host, an
    // interface's from elsewhere): each client is told the one it used, which it can reach.
    const tcp = connection.listener === 'tcp';
    // advertised_port is the tcp listener's, as announced to the other brokers of a cluster.
    const advertisedPort = tcp ? this.settings.advertisedPort : undefined;
    return {
      host:
        this.settings.advertisedHost ??
        connection.localAddress?.replace(/^::ffff:/, '') ??
        this.settings.host ??
        '127.0.0.1',
      port: advertisedPort ?? connection.localPort ?? (tcp ? this.settings.port : this.settings.tlsPort),
    };
  }

  endpointOf(nodeId: number, connection: ConnectionAddress): { host: string; port: number } | null {
    return nodeId === this.nodeId
      ? this.advertised(connection)
      : this.cluster.endpoint(nodeId, connection.listener);
  }

  service<T extends object>(name: string, create: () => T): T {
    let service = this.services.get(name) as T | undefined;
    if (!service) {
      if (this.abort.signal.aborted) throw new Error('the Kafka plugin has stopped');
      service = create();
      this.services.set(name, service);
    }
    return service;
  }

  /** Ends long waits and stops every service. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.cluster.stop();
    for (const [name, service] of this.services) {
      try {
        await (service as BrokerService).stop?.();
      } catch (error) {
        this.logger.error({ err: error, service: name }, 'service failed to stop');
      }
    }
    this.services.clear();
  }
}
