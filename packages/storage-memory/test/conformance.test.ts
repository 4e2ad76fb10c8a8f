import { describeStorageEngine } from '@robustmq/storage-conformance';
import { MemoryStorageEngine } from '../src/index.js';

describeStorageEngine('memory', {
  open: () => Promise.resolve(new MemoryStorageEngine()),
  persistent: false,
});
