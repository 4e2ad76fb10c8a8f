import type { Counter, Metrics } from '@robustmq/core';

/** The tiered engine's own metrics (the journal underneath keeps its own). */
export interface TieringMetrics {
  uploadedSegments: Counter;
  uploadedBytes: Counter;
  offloadedSegments: Counter;
  deletedObjects: Counter;
  remoteReadBytes: Counter;
  failures: Counter;
}

export function tieringMetrics(metrics: Metrics): TieringMetrics {
  return {
    uploadedSegments: metrics.counter({
      name: 'robustmq_tiering_uploaded_segments_total',
      help: 'Sealed segments uploaded to the bucket and confirmed',
    }),
    uploadedBytes: metrics.counter({
      name: 'robustmq_tiering_uploaded_bytes_total',
      help: 'Bytes of segments uploaded to the bucket and confirmed',
    }),
    offloadedSegments: metrics.counter({
      name: 'robustmq_tiering_offloaded_segments_total',
      help: 'Segments dropped from local disk past local retention, after their upload was confirmed',
    }),
    deletedObjects: metrics.counter({
      name: 'robustmq_tiering_deleted_objects_total',
      help: 'Segment objects deleted from the bucket by retention, deleteBefore or shard deletion',
    }),
    remoteReadBytes: metrics.counter({
      name: 'robustmq_tiering_remote_read_bytes_total',
      help: 'Bytes read from the bucket to serve reads of offloaded segments',
    }),
    failures: metrics.counter({
      name: 'robustmq_tiering_failures_total',
      help: 'Tiering work that failed and will be retried, by what was being done',
      labelNames: ['operation'],
    }),
  };
}
