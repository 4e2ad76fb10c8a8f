import type { BrokerContext, Logger } from '@robustmq/core';
import { listAll } from './meta-listing.js';
import type { Publication } from './publication.js';
import { SESSIONS_PREFIX, SessionLog, sessionKey, type LogEntry, type SessionRecord } from './session-log.js';
import { loadMessage, storeMessage, type StoredMessage } from './stored-message.js';

/** Meta store prefix of retained messages. */
const RETAINED_PREFIX = '/mqtt/retained/';

/** A stored session as found at start: its record and its log. */
export interface StoredSession {
  record: SessionRecord;
  /** The record's revision in the meta store. */
  revision: number;
  log: SessionLog;
  entries: LogEntry[];
}

/**
 * What the MQTT broker keeps across restarts, through the node's contracts only: session records
 * and retained messages in the meta store, each persistent session's QoS 1/2 log in a storage
 * shard.
 */
export class Persistence {
  private readonly logs = new Map<string, SessionLog>();
  private retainedChain: Promise<void> = Promise.resolve();
  private readonly logger: Logger;

  constructor(private readonly context: BrokerContext) {
    this.logger = context.logger;
  }

  /** The log of `clientId` (one per client id, so its writes stay in order across sessions). */
  logFor(clientId: string): SessionLog {
    const key = sessionKey(clientId);
    let log = this.logs.get(key);
    if (!log) {
      log = new SessionLog(
        clientId,
        this.context.storage,
        this.context.meta,
        this.logger,
        this.context.nodeId,
      );
      this.logs.set(key, log);
    }
    return log;
  }

  /**
   * Deletes an ended session's record and log. Once that is done, and unless a new session of the
   * client id wrote to the log meanwhile, the log is forgotten too: with every session that ever
   * ended kept, a broker seeing many short-lived client ids would grow without bound.
   */
  destroy(log: SessionLog): void {
    const deletion = log.destroy();
    const writes = log.writeCount;
    deletion
      .catch(() => {})
      .finally(() => {
        if (log.writeCount === writes && this.logs.get(log.key) === log) this.logs.delete(log.key);
      });
  }

  /**
   * Forgets the log of a session another broker now serves, without deleting anything: that
   * broker writes to it from here on.
   */
  forget(log: SessionLog): void {
    if (this.logs.get(log.key) === log) this.logs.delete(log.key);
  }

  /** The stored record of `clientId`'s session with its revision, or null when there is none. */
  async loadRecord(clientId: string): Promise<{ record: SessionRecord; revision: number } | null> {
    const entry = await this.context.meta.get(SESSIONS_PREFIX + sessionKey(clientId));
    return entry === null ? null : { record: parseRecord(entry.value), revision: entry.modRevision };
  }

  /** The stored session records that `wanted` picks, with their revisions (logs not read). */
  async listRecords(
    wanted: (record: SessionRecord) => boolean,
  ): Promise<Array<{ record: SessionRecord; revision: number }>> {
    const found: Array<{ record: SessionRecord; revision: number }> = [];
    for (const entry of await listAll(this.context.meta, SESSIONS_PREFIX)) {
      const record = parseRecord(entry.value);
      if (wanted(record)) found.push({ record, revision: entry.modRevision });
    }
    return found;
  }

  /**
   * Every stored session `wanted` picks, with its log entries. A session whose log cannot be
   * read is logged and left out (its record and log stay stored): one bad log must not keep the
   * broker from starting.
   */
  async loadSessions(wanted: (record: SessionRecord) => boolean): Promise<StoredSession[]> {
    const found: StoredSession[] = [];
    for (const { record, revision } of await this.listRecords(wanted)) {
      const log = this.logFor(record.clientId);
      try {
        found.push({ record, revision, log, entries: await log.read() });
      } catch (error) {
        this.logger.error(
          { err: error, clientId: record.clientId },
          'stored session not loaded: its log is unreadable',
        );
      }
    }
    return found;
  }

  /** Stores (or, for an empty payload, deletes) the retained message of a topic; resolves when durable. */
  saveRetained(publication: Publication): Promise<void> {
    const value =
      publication.payload.length === 0 ? null : Buffer.from(JSON.stringify(storeMessage(publication)));
    return this.writeRetained(publication.topic, value);
  }

  /** Deletes the stored retained message of `topic`; resolves when durable. */
  deleteRetained(topic: string): Promise<void> {
    return this.writeRetained(topic, null);
  }

  private writeRetained(topic: string, value: Buffer | null): Promise<void> {
    const key = RETAINED_PREFIX + sessionKey(topic);
    const meta = this.context.meta;
    const write = this.retainedChain.then(async () => {
      if (value === null) await meta.delete(key);
      else await meta.put(key, value);
    });
    this.retainedChain = write.catch((error: unknown) => {
      this.logger.error({ err: error, topic }, 'retained message write failed');
    });
    return write;
  }

  /** The stored retained messages. */
  async loadRetained(): Promise<Publication[]> {
    const entries = await listAll(this.context.meta, RETAINED_PREFIX);
    return entries.map((entry) =>
      loadMessage(JSON.parse(Buffer.from(entry.value).toString('utf8')) as StoredMessage),
    );
  }

  /** Resolves once every write made so far is done. */
  async settled(): Promise<void> {
    await Promise.all([this.retainedChain, ...[...this.logs.values()].map((log) => log.settled())]);
  }
}

function parseRecord(value: Uint8Array): SessionRecord {
  return JSON.parse(Buffer.from(value).toString('utf8')) as SessionRecord;
}
