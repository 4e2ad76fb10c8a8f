import { createHash } from 'node:crypto';
import {
  ErrorCode,
  isRobustMQError,
  RobustMQError,
  type AppendResult,
  type Logger,
  type MetaPutOptions,
  type MetaStore,
  type StorageEngine,
} from '@robustmq/core';
import type { StoredMessage } from './stored-message.js';
import type { StoredWill } from './wills.js';
import type { SubscriptionOptions } from './subscription-tree.js';

/**
 * One event in a persistent session's log. Replayed in order it gives the session's QoS 1/2 state:
 * `m` a message for the session (queued, with its shared group), `s` it was sent with a packet id, `r` its PUBREC came,
 * `a` it is done (acknowledged, expired or dropped); `i`/`I` an inbound QoS 2 id accepted/released,
 * `i` with the message when it is routed only once that entry is durable, and `d` once it was routed.
 */
export type LogEntry =
  | {
      t: 'm';
      s: number;
      m: StoredMessage;
      q: 1 | 2;
      r: boolean;
      ids: readonly number[] | null;
      /** The shared group it came through, if any. */
      g?: string;
    }
  | { t: 's'; s: number; p: number }
  | { t: 'r'; s: number }
  | { t: 'a'; s: number }
  | { t: 'i'; p: number; m?: StoredMessage }
  | { t: 'd'; p: number }
  | { t: 'I'; p: number };

/** A persistent session's record in the meta store. */
export interface SessionRecord {
  clientId: string;
  expiryInterval: number;
  subscriptions: Array<[string, SubscriptionOptions]>;
  /**
   * The broker serving the session, in a cluster of brokers on one storage; absent in records
   * written before brokers shared sessions (the node that wrote them serves them).
   */
  node?: number;
  /** When the client went away, ms since the epoch; null while connected. */
  disconnectedAt: number | null;
  /**
   * The will still to publish: the connected client's, or one waiting out its delay. Absent
   * when there is none (no will, a clean DISCONNECT, or already published).
   */
  will?: StoredWill;
}

/** Meta store prefix of session records. */
export const SESSIONS_PREFIX = '/mqtt/sessions/';
/** Storage shard prefix of session logs. */
const SHARD_PREFIX = 'mqtt-sessions/';
/** Reads of a log cut under the reader each time before giving up on it. */
const MAX_READ_ATTEMPTS = 20;
/**
 * How long a session remembers the exactly-once messages it was given ({@link
 * Publication.exactlyOnce}): longer than a broker takes to restart or to have its sessions taken
 * over, which is when such a message can be routed again.
 */
export const EXACTLY_ONCE_MEMORY_MS = 60_000;

/**
 * Collects the writes a publish caused, so its PUBACK/PUBREC waits until they are durable.
 */
export class WriteBarrier {
  private writes: Array<Promise<void>> | null = null;

  begin(): void {
    this.writes = null;
  }

  add(write: Promise<void>): void {
    (this.writes ??= []).push(write);
  }

  /** The writes since {@link begin}, or null when there were none. */
  end(): Promise<void> | null {
    const writes = this.writes;
    this.writes = null;
    if (writes === null) return null;
    return Promise.all(writes).then(() => undefined);
  }
}

/** Hex SHA-256 of a client id: shard names and meta keys of any client id are then valid. */
export function sessionKey(clientId: string): string {
  return createHash('sha256').update(clientId).digest('hex');
}

/**
 * The stored side of one client id's persistent session: its record in the meta store and its
 * log shard in storage. Every write goes through one chain, so records and log entries land in
 * the order they were made, and a session started again after its end waits for the deletion.
 */
export class SessionLog {
  readonly key: string;
  private readonly shard: string;
  private chain: Promise<void> = Promise.resolve();
  /** Writes enqueued so far (a deletion included). */
  private writes = 0;
  private shardReady = false;
  /**
   * Whether an append found the log deleted by the broker now serving the session: entries are then
   * skipped while the record names another broker, rather than written to a log made again.
   */
  private deletedElsewhere = false;
  /** Entries waiting for the next append, or null when none is open. */
  private batch: LogEntry[] | null = null;
  private batchWrite: Promise<void> = Promise.resolve();
  /** The offset after the last appended entry. */
  private endOffset = 0;
  /**
   * The first offset of an exactly-once message appended in each second of the last {@link
   * EXACTLY_ONCE_MEMORY_MS} ([second, offset], oldest first): a truncation keeps them, so that
   * the session still knows them when it is read back after a crash.
   */
  private readonly exactlyOnceOffsets: Array<[number, number]> = [];

  constructor(
    readonly clientId: string,
    private readonly storage: StorageEngine,
    private readonly meta: MetaStore,
    private readonly logger: Logger,
    /** This broker, as session records name the broker serving them. */
    private readonly nodeId: number,
  ) {
    this.key = sessionKey(clientId);
    this.shard = SHARD_PREFIX + this.key;
  }

  /** Writes the session record. */
  saveRecord(record: SessionRecord): Promise<void> {
    return this.writeRecord(record, {});
  }

  /**
   * Writes the record only if it is still at `revision`: how a broker takes a session over from
   * another, so that of two brokers taking it at once only one wins (the other gets `CONFLICT`).
   */
  claimRecord(record: SessionRecord, revision: number): Promise<void> {
    return this.writeRecord(record, { ifRevision: revision });
  }

  private writeRecord(record: SessionRecord, options: MetaPutOptions): Promise<void> {
    const value = Buffer.from(JSON.stringify(record));
    return this.enqueue(async () => {
      await this.meta.put(SESSIONS_PREFIX + this.key, value, options);
    });
  }

  /** Appends an entry; entries made in one tick share one append. Resolves once it is durable. */
  append(entry: LogEntry): Promise<void> {
    if (this.batch === null) {
      const batch: LogEntry[] = [];
      this.batch = batch;
      this.batchWrite = this.enqueue(async () => {
        if (this.batch === batch) this.batch = null;
        // Not made again by a broker that no longer serves the session (see below).
        if (this.deletedElsewhere && !(await this.servedHere())) return;
        await this.ensureShard();
        const now = Date.now();
        const records = batch.map((e) => ({
          recordCount: 1,
          maxTimestamp: now,
          data: Buffer.from(JSON.stringify(e)),
        }));
        let result: AppendResult;
        try {
          result = await this.storage.append(this.shard, records);
        } catch (error) {
          if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
          // Another broker deleted the log: one that ended the session after taking it over from
          // here, or a copy of its own that it ended. Failing here failed every publisher routed to
          // this session, and the broker forwarding to it resent its batch without end.
          this.shardReady = false;
          if (!(await this.servedHere())) {
            // Once per deletion: every message routed to the session until it ends here skips it.
            if (!this.deletedElsewhere) {
              this.deletedElsewhere = true;
              this.logger.warn(
                { clientId: this.clientId },
                'session log deleted by the broker that serves the session now; entries not stored here',
              );
            }
            return;
          }
          await this.ensureShard();
          result = await this.storage.append(this.shard, records);
        }
        this.endOffset = result.lastOffset + 1;
        const first = batch.findIndex((e) => e.t === 'm' && e.m.exactlyOnce === true);
        if (first >= 0) this.noteExactlyOnce(result.lastOffset + 1 - batch.length + first, now);
      });
    }
    this.batch.push(entry);
    return this.batchWrite;
  }

  private noteExactlyOnce(offset: number, now: number): void {
    const second = Math.floor(now / 1000);
    const last = this.exactlyOnceOffsets.at(-1);
    if (last === undefined || last[0] !== second) this.exactlyOnceOffsets.push([second, offset]);
  }

  /**
   * Forgets the entries appended so far (nothing in them is needed any more), but for those from
   * the first exactly-once message of the last {@link EXACTLY_ONCE_MEMORY_MS} on.
   */
  truncate(): void {
    this.batch = null;
    void this.enqueue(async () => {
      const oldest = Math.floor((Date.now() - EXACTLY_ONCE_MEMORY_MS) / 1000);
      const kept = this.exactlyOnceOffsets;
      while (kept.length > 0 && kept[0]![0] < oldest) kept.shift();
      const cut = kept.length > 0 ? Math.min(kept[0]![1], this.endOffset) : this.endOffset;
      if (!this.shardReady || cut <= 0) return;
      try {
        await this.storage.deleteBefore(this.shard, cut);
      } catch (error) {
        // Deleted by another broker: nothing left to cut.
        if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
        this.shardReady = false;
      }
    });
  }

  /**
   * Reads the whole log, in order. Another broker serving the session may cut the log while it is
   * read: what it cut was no longer needed, so the read starts again from the new log start (a
   * log deleted meanwhile reads as empty).
   */
  async read(): Promise<LogEntry[]> {
    await this.chain;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.readOnce();
      } catch (error) {
        if (error instanceof RobustMQError && error.code === ErrorCode.NotFound) {
          this.shardReady = false;
          this.endOffset = 0;
          return [];
        }
        const cut = error instanceof RobustMQError && error.code === ErrorCode.OffsetOutOfRange;
        if (!cut || attempt >= MAX_READ_ATTEMPTS) throw error;
      }
    }
  }

  private async readOnce(): Promise<LogEntry[]> {
    const entries: LogEntry[] = [];
    const info = await this.storage.shardInfo(this.shard);
    this.shardReady = true;
    this.endOffset = info.nextOffset;
    let offset = info.logStartOffset;
    while (offset < info.nextOffset) {
      const { batches } = await this.storage.read(this.shard, offset, { maxBytes: 1 << 20 });
      if (batches.length === 0) break;
      for (const batch of batches) {
        if (batch.baseOffset + batch.recordCount <= offset) continue;
        entries.push(JSON.parse(Buffer.from(batch.data).toString('utf8')) as LogEntry);
        offset = batch.baseOffset + batch.recordCount;
      }
    }
    return entries;
  }

  /** Deletes the record and the log (the session ended). */
  destroy(): Promise<void> {
    this.batch = null;
    return this.enqueue(async () => {
      await this.meta.delete(SESSIONS_PREFIX + this.key);
      try {
        await this.storage.deleteShard(this.shard);
      } catch (error) {
        if (!(error instanceof RobustMQError && error.code === ErrorCode.NotFound)) throw error;
      }
      this.shardReady = false;
      this.endOffset = 0;
      this.exactlyOnceOffsets.length = 0;
    });
  }

  /** Resolves once every write made so far is done. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** How many writes have been enqueued: unchanged means nothing was written in between. */
  get writeCount(): number {
    return this.writes;
  }

  /** Whether the session's record names this broker (or no broker, as a lone broker writes it). */
  private async servedHere(): Promise<boolean> {
    const entry = await this.meta.get(SESSIONS_PREFIX + this.key);
    if (entry === null) return false;
    const { node } = JSON.parse(Buffer.from(entry.value).toString('utf8')) as SessionRecord;
    return node === undefined || node === this.nodeId;
  }

  private async ensureShard(): Promise<void> {
    if (this.shardReady) return;
    try {
      // Session messages stay until acknowledged or the session ends, whatever their age.
      await this.storage.createShard(this.shard, { retentionMs: null, segmentBytes: 4 * 1024 * 1024 });
    } catch (error) {
      if (!(error instanceof RobustMQError && error.code === ErrorCode.AlreadyExists)) throw error;
    }
    this.shardReady = true;
    this.deletedElsewhere = false;
  }

  private enqueue(write: () => Promise<void>): Promise<void> {
    this.writes++;
    const next = this.chain.then(write);
    // A failed write is logged; later writes still run (the chain never stays rejected). A claim
    // lost to another broker is no failure of the store: the claimer answers for it.
    this.chain = next.catch((error: unknown) => {
      if (isRobustMQError(error, ErrorCode.Conflict)) return;
      this.logger.error({ err: error, clientId: this.clientId }, 'session store write failed');
    });
    return next;
  }
}
