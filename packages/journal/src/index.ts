/**
 * `@robustmq/journal`: RobustMQ's default storage engine, a segment log on local disk.
 *
 * The default export is the engine definition the server loads by package name
 * (`storage.engine = "@robustmq/journal"`); {@link openJournal} opens one directly.
 */
import { defineStorageEngine } from '@robustmq/core';
import { parseJournalConfig } from './config.js';
import { openJournal } from './journal.js';

export { Journal, openJournal, type JournalOptions } from './journal.js';
export { writeFileAtomic } from './files.js';
export {
  DEFAULT_SETTINGS,
  JOURNAL_SETTING_NAMES,
  parseJournalConfig,
  type JournalSettings,
} from './config.js';
export type {
  OffloadedSegmentReader,
  SealedSegment,
  SegmentSealedListener,
  SegmentSource,
} from './offload.js';
export { connectJournal, type JournalClient, type JournalClientOptions } from './remote/client.js';
export { createJournalServer, type JournalServer, type JournalServerOptions } from './remote/server.js';
export { serveJournal, type JournalService, type JournalServiceOptions } from './remote/service.js';

/** The journal as a storage engine: `options.config` is the server's `[storage]` section. */
const journal = defineStorageEngine({
  name: 'journal',
  async open(options) {
    const settings = parseJournalConfig(options.config);
    return openJournal({
      ...settings,
      dir: options.dataDir,
      logger: options.logger,
      metrics: options.metrics,
    });
  },
});

export default journal;
