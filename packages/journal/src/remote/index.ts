/**
 * `@robustmq/journal/remote`: the storage engine a broker uses when its shards live on a journal
 * server in the cluster. The default export is the definition the server loads by package name:
 *
 * ```toml
 * [storage]
 * engine = "@robustmq/journal/remote"
 * address = "journal-1:1228"
 * request_timeout_ms = 30000
 * connect_timeout_ms = 5000
 * ```
 *
 * It connects with TLS when the server's `[rpc]` section sets the node's certificate.
 */
import { defineStorageEngine, ErrorCode, isRobustMQError, RobustMQError } from '@robustmq/core';
import { connectJournal } from './client.js';
import { parseRemoteJournalConfig } from './config.js';

export { connectJournal, type JournalClient, type JournalClientOptions } from './client.js';
export { DEFAULT_REMOTE_SETTINGS, parseRemoteJournalConfig, type RemoteJournalSettings } from './config.js';

/**
 * The remote journal as a storage engine: `options.config` is the `[storage]` section. Opening
 * waits up to `connect_timeout_ms` for the journal server and fails UNAVAILABLE if it does not
 * answer, so a wrong address shows at start-up. Later, while the server is unreachable, calls fail
 * UNAVAILABLE within `connect_timeout_ms` rather than at `request_timeout_ms`. `dataDir` is not used.
 */
const journalRemote = defineStorageEngine({
  name: 'journal-remote',
  async open(options) {
    const settings = parseRemoteJournalConfig(options.config);
    const client = connectJournal({
      ...settings,
      logger: options.logger,
      ...(options.clusterTls === undefined ? {} : { tls: options.clusterTls }),
    });
    try {
      await client.waitConnected(settings.connectTimeoutMs);
    } catch (error) {
      await client.close();
      if (!isRobustMQError(error, ErrorCode.Unavailable)) throw error;
      throw new RobustMQError(
        ErrorCode.Unavailable,
        `no journal server answered at ${settings.host}:${settings.port} within ${settings.connectTimeoutMs} ms`,
        { cause: error },
      );
    }
    return client;
  },
});

export default journalRemote;
