import { ErrorCode, RobustMQError, type Logger, type ShardConfig } from '@robustmq/core';
import type { RocksDatabase } from './binding.js';
import { decodeBlock, decodeNumber, decodeShardId, encodeNumber, type BlockSummary } from './codec.js';
import {
  FORMAT_KEY,
  NEXT_SHARD_ID_KEY,
  REGISTRY_RANGE,
  TOMBSTONE_RANGE,
  batchKey,
  blockRange,
  configKey,
  firstBatchKey,
  idOfTombstoneKey,
  logStartKey,
  nameOfRegistryKey,
  nextOffsetKey,
  offsetOfKey,
  shardRange,
} from './keys.js';
import { entries, firstKey } from './scan.js';
import { decodeShardConfig } from './shard-config.js';

const FORMAT = 1;

/** One shard as stored. */
export interface StoredShard {
  name: string;
  id: number;
  config: ShardConfig;
  logStartOffset: number;
  nextOffset: number;
  blocks: BlockSummary[];
}

export interface StoredState {
  nextShardId: number;
  shards: StoredShard[];
}

function corrupt(message: string): RobustMQError {
  return new RobustMQError(ErrorCode.Corrupt, message);
}

/**
 * Reads what the database holds, and finishes what a crash may have left half done: the key
 * ranges of deleted shards, and batches below a shard's log start whose range delete was not
 * written yet.
 */
export async function loadState(db: RocksDatabase, logger: Logger): Promise<StoredState> {
  const [format, nextShardId] = await db.getMany([FORMAT_KEY, NEXT_SHARD_ID_KEY]);
  if (format === undefined) {
    if ((await firstKey(db, {})) !== undefined) throw corrupt('the database holds data but no format marker');
    await db.batch(
      [
        { type: 'put', key: FORMAT_KEY, value: encodeNumber(FORMAT) },
        { type: 'put', key: NEXT_SHARD_ID_KEY, value: encodeNumber(1) },
      ],
      { sync: true },
    );
    return { nextShardId: 1, shards: [] };
  }
  if (decodeNumber(format, 'format marker') !== FORMAT) {
    throw corrupt(`the database has format ${format.readDoubleBE()}, this engine reads format ${FORMAT}`);
  }

  for await (const [key] of entries(db, { ...TOMBSTONE_RANGE, values: false })) {
    const id = idOfTombstoneKey(key);
    await db.clear(shardRange(id));
    await db.batch([{ type: 'del', key }], { sync: false });
    logger.info({ shardId: id }, 'finished deleting a shard deleted before the last stop');
  }

  const shards: StoredShard[] = [];
  for await (const [key, value] of entries(db, REGISTRY_RANGE)) {
    shards.push(await loadShard(db, nameOfRegistryKey(key), decodeShardId(value), logger));
  }
  return { nextShardId: decodeNumber(nextShardId, 'next shard id'), shards };
}

async function loadShard(db: RocksDatabase, name: string, id: number, logger: Logger): Promise<StoredShard> {
  const [config, logStart, next] = await db.getMany([configKey(id), logStartKey(id), nextOffsetKey(id)]);
  const blocks: BlockSummary[] = [];
  for await (const [key, value] of entries(db, blockRange(id)))
    blocks.push(decodeBlock(offsetOfKey(key), value));
  const shard: StoredShard = {
    name,
    id,
    config: decodeShardConfig(config),
    logStartOffset: decodeNumber(logStart, `log start of ${name}`),
    nextOffset: decodeNumber(next, `next offset of ${name}`),
    blocks,
  };
  const last = blocks.at(-1);
  if (last !== undefined && last.endOffset !== shard.nextOffset) {
    throw corrupt(`shard ${name}: time index ends at ${last.endOffset}, next offset is ${shard.nextOffset}`);
  }
  const firstStored = blocks[0]?.firstOffset ?? shard.nextOffset;
  if (shard.logStartOffset < firstStored || shard.logStartOffset > shard.nextOffset) {
    throw corrupt(
      `shard ${name}: log start ${shard.logStartOffset} is outside its batches ${firstStored}..${shard.nextOffset}`,
    );
  }
  const below = { gte: firstBatchKey(id), lt: batchKey(id, firstStored) };
  if ((await firstKey(db, below)) !== undefined) {
    await db.clear(below);
    logger.info(
      { shard: name, before: firstStored },
      'removed batches below the log start left by the last stop',
    );
  }
  return shard;
}
