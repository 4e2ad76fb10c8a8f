import { describeStorageEngine } from '@robustmq/storage-conformance';
import { openOverRpc } from './helpers.js';

// The shared suite, unchanged, against a client talking to a journal server on loopback that
// serves a real journal engine. Reopening closes the client, the server and the engine, then
// starts all three again on the same directory.
describeStorageEngine('journal client over RPC', {
  open: (dir) => openOverRpc(dir),
  persistent: true,
});
