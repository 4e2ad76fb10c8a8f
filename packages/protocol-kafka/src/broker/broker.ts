import { TopicCatalog, type BrokerContext, type Logger } from '@robustmq/core';
import { KafkaCluster } from '../cluster/kafka-cluster.js';
import type { KafkaSettings } from '../config.js';
import type { BrokerService, KafkaBroker } from './handler.js';
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
  private readonly bound = new Map<string, { host: string; port: number }>();

  constructor(
    readonly context: BrokerContext,
    readonly settings: KafkaSettings,
  ) {
    this.logger = context.logger.child({ protocol: 'kafka' });
    this.catalog = new TopicCatalog(context.meta, context.storage, { logger: this.logger });
    this.nodeId = context.nodeId;
    this.metrics = new KafkaMetrics(context.metrics);
    this.cluster = new KafkaCluster({
      cluster: context.cluster,
      nodeId: context.nodeId,
      ...(settings.advertisedHost === undefined ? {} : { advertisedHost: settings.advertisedHost }),
      ...(settings.advertisedPort === undefined ? {} : { advertisedPort: settings.advertisedPort }),
    });
  }

  get stopped(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Records the address a listener is bound to, learnt from its first connection (the port may
   * have been 0 in config, the bind address a wildcard).
   */
  noteListener(listener: string, localAddress: string | undefined, localPort: number | undefined): void {
    if (localPort === undefined || localAddress === undefined || this.bound.has(listener)) return;
    this.bound.set(listener, { host: localAddress.replace(/^::ffff:/, ''), port: localPort });
  }

  advertised(listener: string): { host: string; port: number } {
    const bound = this.bound.get(listener);
    const port = listener === 'tls' ? this.settings.tlsPort : this.settings.port;
    return {
      host: this.settings.advertisedHost ?? bound?.host ?? this.settings.host ?? '127.0.0.1',
      port: this.settings.advertisedPort ?? bound?.port ?? port,
    };
  }

  endpointOf(nodeId: number, listener: string): { host: string; port: number } | null {
    return nodeId === this.nodeId ? this.advertised(listener) : this.cluster.endpoint(nodeId, listener);
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
