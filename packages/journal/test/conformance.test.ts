import { describeStorageEngine } from '@robustmq/storage-conformance';
import { openJournal } from '../src/index.js';

describeStorageEngine('journal', {
  open: (dir) => openJournal({ dir }),
  persistent: true,
});
