import { describeMetaStore } from '../src/testing/index.js';
import { openLocalMetaStore } from '../src/index.js';

describeMetaStore('LocalMetaStore', { open: (dir) => openLocalMetaStore({ dir }), persistent: true });

// The same suite with a tiny log threshold, so snapshots and log truncation happen between writes.
describeMetaStore('LocalMetaStore, snapshotting constantly', {
  open: (dir) => openLocalMetaStore({ dir, snapshotLogBytes: 512 }),
  persistent: true,
});
