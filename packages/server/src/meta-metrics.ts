import type { MetaStore } from '@robustmq/core';
import * as prom from 'prom-client';
import { within, type NodeMetrics } from './metrics.js';
import type { MetaGroupStatus } from './node-status.js';

const POLL_MS = 1000;

/**
 * The meta service's metrics: the store revision on every node with a meta store, and on a member
 * of the meta Raft group its term, commit and applied index, whether it leads, and leader changes
 * seen (polled each second, so two changes within one poll count as one).
 * Returns a function that stops the polling.
 */
export function registerMetaMetrics(
  metrics: NodeMetrics,
  meta: MetaStore,
  group: (() => MetaGroupStatus) | null,
): () => void {
  const gauge = (name: string, help: string, read: () => number | null | Promise<number | null>) => {
    if (metrics.registry.getSingleMetric(name) !== undefined) metrics.registry.removeSingleMetric(name);
    new prom.Gauge({
      name,
      help,
      registers: [metrics.registry],
      async collect() {
        const value = await read();
        if (value !== null) this.set(value);
      },
    });
  };
  let closed = false;
  // Without a meta leader the last revision seen stays: a scrape does not wait for an election.
  gauge('robustmq_meta_revision', 'Current revision of the meta store', async () =>
    closed ? null : ((await within(meta.revision())) ?? null),
  );
  if (group === null) return () => (closed = true);

  gauge('robustmq_meta_raft_term', 'Raft term this meta node is in', () => group().term);
  gauge(
    'robustmq_meta_raft_commit_index',
    'Highest Raft log index known committed',
    () => group().commitIndex,
  );
  gauge(
    'robustmq_meta_raft_applied_index',
    'Highest Raft log index applied to the meta store',
    () => group().appliedIndex,
  );
  gauge(
    'robustmq_meta_raft_leader',
    'Id of the meta group leader this node knows, 0 when none',
    () => group().leader,
  );
  gauge('robustmq_meta_raft_is_leader', '1 when this node leads the meta group', () =>
    group().role === 'leader' ? 1 : 0,
  );
  const leaderChanges = metrics.counter({
    name: 'robustmq_meta_raft_leader_changes_total',
    help: 'Times the meta group leader known to this node changed',
  });
  // The first leader this node learns of counts as a change, as in etcd.
  let leader = 0;
  const check = () => {
    const now = group().leader;
    if (now !== 0 && now !== leader) {
      leaderChanges.inc();
      leader = now;
    }
  };
  check();
  const timer = setInterval(check, POLL_MS);
  timer.unref();
  return () => {
    closed = true;
    clearInterval(timer);
  };
}
