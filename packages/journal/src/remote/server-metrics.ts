import type { Counter, Histogram, Metrics } from '@robustmq/core';

/** What a journal server measures beyond the RPC layer's own call counts. */
export interface JournalServerMetrics {
  callSeconds: Histogram;
  appendedBytes: Counter;
  readBytes: Counter;
  fencedWrites: Counter;
}

const noop = { inc() {}, observe() {} };

export function journalServerMetrics(metrics: Metrics | undefined): JournalServerMetrics {
  if (!metrics) return { callSeconds: noop, appendedBytes: noop, readBytes: noop, fencedWrites: noop };
  return {
    callSeconds: metrics.histogram({
      name: 'robustmq_journal_server_call_seconds',
      help: 'Time the journal server spent on a call, by StorageEngine method',
      labelNames: ['method'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    }),
    appendedBytes: metrics.counter({
      name: 'robustmq_journal_server_appended_bytes_total',
      help: 'Batch data bytes appended through the journal server',
    }),
    readBytes: metrics.counter({
      name: 'robustmq_journal_server_read_bytes_total',
      help: 'Batch data bytes served by the journal server',
    }),
    fencedWrites: metrics.counter({
      name: 'robustmq_journal_server_fenced_writes_total',
      help: 'Writes refused because they carried an older leader epoch than the shard has seen',
    }),
  };
}
