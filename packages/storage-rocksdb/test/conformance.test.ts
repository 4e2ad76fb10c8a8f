import { describeStorageEngine } from '@robustmq/storage-conformance';
import { RocksDbStorageEngine } from '../src/index.js';

describeStorageEngine('rocksdb', {
  open: (dir) => RocksDbStorageEngine.open({ dataDir: dir }),
  persistent: true,
});
