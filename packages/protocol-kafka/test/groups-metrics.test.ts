import type { Gauge, MetricLabels, Metrics } from '@robustmq/core';
import { silentLogger } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { GroupMetrics } from '../src/groups/group-metrics.js';
import type { GroupService, PartitionLag } from '../src/groups/index.js';

/** Gauges that remember their last value per label set. */
function recordingMetrics() {
  const values = new Map<string, number>();
  const key = (name: string, labels?: MetricLabels) => `${name}${JSON.stringify(labels ?? {})}`;
  const gauge = (name: string): Gauge => ({
    set: (labels, value) => values.set(key(name, labels), value),
    inc: () => undefined,
    dec: () => undefined,
  });
  const metrics: Metrics = {
    counter: () => ({ inc: () => undefined }),
    gauge: (options) => gauge(options.name),
    histogram: () => ({ observe: () => undefined }),
  };
  return { metrics, value: (name: string, labels: MetricLabels) => values.get(key(name, labels)) };
}

function lagOf(topic: string, partition: number, lag: number | null): PartitionLag {
  return {
    topic,
    partition,
    committedOffset: 0,
    endOffset: lag,
    lag,
    metadata: '',
    commitTimestamp: 0,
  };
}

describe('consumer group metrics', () => {
  it('count groups by state and report lag per partition, dropping vanished states to 0', async () => {
    let groups = [
      { groupId: 'billing', protocolType: 'consumer', state: 'Stable' },
      { groupId: 'audit', protocolType: 'consumer', state: 'Empty' },
    ];
    const lags: Record<string, PartitionLag[]> = {
      billing: [lagOf('orders', 0, 3), lagOf('orders', 1, 0)],
      audit: [lagOf('orders', 0, 7), lagOf('gone', 0, null)],
    };
    const service = {
      listGroups: () => Promise.resolve(groups),
      lag: (group: string) => Promise.resolve(lags[group] ?? []),
    } as unknown as GroupService;
    const { metrics, value } = recordingMetrics();
    const reporter = new GroupMetrics(() => service, metrics, silentLogger);

    await reporter.refresh();
    expect(value('robustmq_kafka_groups', { state: 'Stable' })).toBe(1);
    expect(value('robustmq_kafka_groups', { state: 'Empty' })).toBe(1);
    expect(value('robustmq_kafka_group_lag', { group: 'billing', topic: 'orders', partition: 0 })).toBe(3);
    expect(value('robustmq_kafka_group_lag', { group: 'billing', topic: 'orders', partition: 1 })).toBe(0);
    expect(value('robustmq_kafka_group_lag', { group: 'audit', topic: 'orders', partition: 0 })).toBe(7);
    expect(
      value('robustmq_kafka_group_lag', { group: 'audit', topic: 'gone', partition: 0 }),
    ).toBeUndefined();

    groups = [{ groupId: 'billing', protocolType: 'consumer', state: 'PreparingRebalance' }];
    await reporter.refresh();
    expect(value('robustmq_kafka_groups', { state: 'PreparingRebalance' })).toBe(1);
    expect(value('robustmq_kafka_groups', { state: 'Stable' })).toBe(0);
    expect(value('robustmq_kafka_groups', { state: 'Empty' })).toBe(0);
    await reporter.stop();
  });
});
