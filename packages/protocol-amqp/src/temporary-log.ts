import {
  ErrorCode,
  isRobustMQError,
  type Logger,
  type Message,
  type RecordCodec,
  type ShardConfig,
  type StorageEngine,
} from '@robustmq/core';
import { ShardLog, type AppendCallback } from './message-log.js';

/** Storage shards of temporary addresses: `amqp-temporary/<node id>/<address>`. */
const PREFIX = 'amqp-temporary/';
/** A temporary address ends with its link and with its node: nothing is synced, expired or kept. */
const CONFIG: Partial<ShardConfig> = {
  retentionMs: null,
  retentionBytes: null,
  durability: 'none',
  segmentBytes: 4 * 1024 * 1024,
};
/** Shortest gap between two deletions of settled messages from a temporary shard. */
const TRIM_INTERVAL_MS = 1000;

/** The storage shard of a temporary address that broker `nodeId` made. */
export const temporaryShard = (nodeId: number, address: string) => `${PREFIX}${nodeId}/${address}`;

/**
 * The log of a temporary (dynamic) address: a storage shard of its own, so that messages past the
 * queue's memory bounds wait in storage as they do for every other queue, instead of in memory.
 * Settled messages are deleted from it as the queue moves on, and the shard with the address.
 */
export class TemporaryLog extends ShardLog {
  /** Settles once the shard exists; appends made before wait for it. */
  readonly created: Promise<void>;
  private ready = false;
  private trimming = false;
  private lastTrim = 0;

  constructor(
    storage: StorageEngine,
    codec: RecordCodec,
    address: string,
    nodeId: number,
    private readonly logger: Logger,
  ) {
    super(storage, codec, address, temporaryShard(nodeId, address));
    this.created = storage.createShard(this.shard, CONFIG).then(() => {
      this.ready = true;
    });
  }

  override appendThen(message: Message, done: AppendCallback): void {
    if (this.ready) {
      super.appendThen(message, done);
      return;
    }
    this.created.then(
      () => super.appendThen(message, done),
      (error: unknown) => done(error, -1),
    );
  }

  override trim(offset: number): void {
    if (this.trimming || Date.now() - this.lastTrim < TRIM_INTERVAL_MS) return;
    this.trimming = true;
    this.lastTrim = Date.now();
    void this.storage
      .deleteBefore(this.shard, offset)
      .catch((error: unknown) => {
        // What stays is deleted by a later trim, or with the shard.
        if (!isRobustMQError(error, ErrorCode.NotFound)) {
          this.logger.warn({ err: error, address: this.topic }, 'trimming a temporary address failed');
        }
      })
      .finally(() => {
        this.trimming = false;
      });
  }

  /** Deletes the shard (the address is gone), once it exists. */
  async delete(): Promise<void> {
    try {
      await this.created;
      await this.storage.deleteShard(this.shard);
    } catch (error) {
      if (!isRobustMQError(error, ErrorCode.NotFound)) {
        this.logger.warn({ err: error, address: this.topic }, 'deleting a temporary address failed');
      }
    }
  }

  /**
   * Deletes the temporary shards a node left behind when it stopped without deleting them (a
   * crash). One that cannot be deleted now is left for the next start.
   */
  static async deleteLeftovers(storage: StorageEngine, nodeId: number, logger: Logger): Promise<void> {
    const prefix = temporaryShard(nodeId, '');
    let deleted = 0;
    try {
      for (const shard of await storage.listShards()) {
        if (!shard.startsWith(prefix)) continue;
        await storage.deleteShard(shard);
        deleted++;
      }
    } catch (error) {
      logger.warn({ err: error }, 'deleting temporary addresses left by a crash failed');
    }
    if (deleted > 0) logger.info({ count: deleted }, 'temporary addresses left by a crash deleted');
  }
}

/** How long a message to another broker's temporary address waits for its shard to exist. */
const CREATION_WAIT_MS = 1000;
const CREATION_RETRY_MS = 50;

/**
 * The log of a temporary address another broker of the cluster made (a reply-to address): its
 * messages go to that broker's shard, where its queue reads them. The address is handed out as
 * its link attaches, a moment before the shard exists, so a shard not found yet is tried again
 * for a second before the address counts as gone.
 */
export class TemporaryLogElsewhere extends ShardLog {
  constructor(storage: StorageEngine, codec: RecordCodec, address: string, nodeId: number) {
    super(storage, codec, address, temporaryShard(nodeId, address));
  }

  override appendThen(message: Message, done: AppendCallback): void {
    const giveUpAt = Date.now() + CREATION_WAIT_MS;
    const attempt = () =>
      super.appendThen(message, (error, offset) => {
        if (error !== null && isRobustMQError(error, ErrorCode.NotFound) && Date.now() < giveUpAt) {
          setTimeout(attempt, CREATION_RETRY_MS);
          return;
        }
        done(error, offset);
      });
    attempt();
  }
}
