import type { Gauge, Logger, Metrics } from '@robustmq/core';
import type { GroupService } from './group-service.js';

/** How often group counts and lag are refreshed: lag needs a shard lookup per partition. */
export const GROUP_METRICS_INTERVAL_MS = 10_000;

/**
 * Publishes consumer-group counts by state and committed-offset lag per partition as gauges, so
 * a dashboard shows a consumer falling behind without asking the admin API.
 */
export class GroupMetrics {
  private readonly groups: Gauge;
  private readonly lag: Gauge;
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private lastStates = new Set<string>();

  constructor(
    private readonly service: () => GroupService,
    metrics: Metrics,
    private readonly logger: Logger,
  ) {
    this.groups = metrics.gauge({
      name: 'robustmq_kafka_groups',
      help: 'Kafka consumer groups by state',
      labelNames: ['state'],
    });
    this.lag = metrics.gauge({
      name: 'robustmq_kafka_group_lag',
      help: 'Records between a consumer group committed offset and the partition end',
      labelNames: ['group', 'topic', 'partition'],
    });
  }

  start(intervalMs = GROUP_METRICS_INTERVAL_MS): void {
    this.timer = setInterval(() => void this.refresh(), intervalMs);
    this.timer.unref();
    void this.refresh();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.refreshing;
  }

  /** Recomputes every gauge now; one refresh at a time. */
  refresh(): Promise<void> {
    this.refreshing ??= this.collect()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'consumer group metrics failed'))
      .finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async collect(): Promise<void> {
    const service = this.service();
    const counts = new Map<string, number>();
    for (const group of await service.listGroups()) {
      counts.set(group.state, (counts.get(group.state) ?? 0) + 1);
      for (const partition of await service.lag(group.groupId)) {
        if (partition.lag === null) continue;
        this.lag.set(
          { group: group.groupId, topic: partition.topic, partition: partition.partition },
          partition.lag,
        );
      }
    }
    // A state no group is in any more reads 0 rather than its last count.
    for (const state of this.lastStates) if (!counts.has(state)) this.groups.set({ state }, 0);
    for (const [state, count] of counts) this.groups.set({ state }, count);
    this.lastStates = new Set(counts.keys());
  }
}
