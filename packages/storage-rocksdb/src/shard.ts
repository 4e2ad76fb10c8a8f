import type { ShardConfig, ShardInfo } from '@robustmq/core';
import type { BlockSummary } from './codec.js';
import { DataWaiters } from './data-waiters.js';
import { ShardLock } from './shard-lock.js';
import { TimeIndex } from './time-index.js';

/** What the engine keeps in memory of one shard; the database holds the same under its key range. */
export class Shard {
  readonly name: string;
  /** The number in every key of the shard, from the registry. */
  readonly id: number;
  config: ShardConfig;
  logStartOffset: number;
  /** The offset after the last durable batch: reads never go past it. */
  nextOffset: number;
  readonly index: TimeIndex;
  readonly waiters = new DataWaiters();
  readonly lock: ShardLock;
  /** Set once the shard is deleted; whoever still holds this object reports NOT_FOUND. */
  deleted = false;
  /** Counts trims of the front, so a lookup that raced one can tell and look again. */
  generation = 0;

  constructor(init: {
    name: string;
    id: number;
    config: ShardConfig;
    logStartOffset: number;
    nextOffset: number;
    blocks: readonly BlockSummary[];
    onIdle: () => void;
  }) {
    this.name = init.name;
    this.id = init.id;
    this.config = init.config;
    this.logStartOffset = init.logStartOffset;
    this.nextOffset = init.nextOffset;
    this.index = new TimeIndex(init.blocks);
    this.lock = new ShardLock(init.onIdle);
  }

  /** The first offset of the first batch still stored (at or below the log start). */
  get firstStoredOffset(): number {
    return this.index.blocks[0]?.firstOffset ?? this.nextOffset;
  }

  info(): ShardInfo {
    return {
      name: this.name,
      config: { ...this.config },
      logStartOffset: this.logStartOffset,
      nextOffset: this.nextOffset,
      sizeBytes: this.index.bytes,
    };
  }
}
