import type { Counter, Histogram, Metrics } from '@robustmq/core';

/** The journal's own metrics. */
export interface JournalMetrics {
  appendedBytes: Counter;
  appendedBatches: Counter;
  fsyncs: Counter;
  fsyncSeconds: Histogram;
  corruptFrames: Counter;
  truncatedBytes: Counter;
}

export function journalMetrics(metrics: Metrics): JournalMetrics {
  return {
    appendedBytes: metrics.counter({
      name: 'robustmq_journal_appended_bytes_total',
      help: 'Bytes appended to journal segments, framing included',
    }),
    appendedBatches: metrics.counter({
      name: 'robustmq_journal_appended_batches_total',
      help: 'Record batches appended to the journal',
    }),
    fsyncs: metrics.counter({
      name: 'robustmq_journal_fsyncs_total',
      help: 'fsyncs of journal segment files for appends (a write through an O_DSYNC handle counts as one)',
    }),
    fsyncSeconds: metrics.histogram({
      name: 'robustmq_journal_fsync_seconds',
      help: 'Time one fsync of a journal segment took (for an O_DSYNC write, the write and its sync)',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    }),
    corruptFrames: metrics.counter({
      name: 'robustmq_journal_corrupt_frames_total',
      help: 'Frames that failed their checksum or framing, found on read or during recovery',
      labelNames: ['found'],
    }),
    truncatedBytes: metrics.counter({
      name: 'robustmq_journal_recovery_truncated_bytes_total',
      help: 'Bytes of torn or corrupt segment tails cut off during recovery',
    }),
  };
}

const noop = { inc() {}, set() {}, dec() {}, observe() {} };

/** Metrics that record nothing, for direct use without a registry. */
export const noopMetrics: Metrics = {
  counter: () => noop,
  gauge: () => noop,
  histogram: () => noop,
};
