import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_SHARD_CONFIG, ErrorCode, RobustMQError, type ShardConfig } from '@robustmq/core';
import { writeFileAtomic } from './files.js';
import { mergeJournalShardConfig } from './shard-config.js';

export const SHARD_META_FILE = 'shard.json';
const FORMAT = 1;

/** What a shard keeps beside its segments: its real name, its config and its log start. */
export interface ShardMeta {
  name: string;
  config: ShardConfig;
  /** Persisted by `deleteBefore`; the first segment's base offset can only raise it. */
  logStartOffset: number;
}

/** Writes the metadata file atomically (temp file, fsync, rename, fsync directory). */
export async function writeShardMeta(dir: string, meta: ShardMeta): Promise<void> {
  const text = JSON.stringify({ format: FORMAT, ...meta }, null, 2) + '\n';
  await writeFileAtomic(join(dir, SHARD_META_FILE), Buffer.from(text));
}

/** Reads and checks the metadata file; a damaged one is CORRUPT, naming the file. */
export async function readShardMeta(dir: string): Promise<ShardMeta> {
  const path = join(dir, SHARD_META_FILE);
  const corrupt = (why: string, cause?: unknown) =>
    new RobustMQError(
      ErrorCode.Corrupt,
      `shard metadata ${path} ${why}`,
      cause === undefined ? undefined : { cause },
    );
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw corrupt('cannot be read', error);
  }
  if (parsed === null || typeof parsed !== 'object') throw corrupt('is not an object');
  const record = parsed as Record<string, unknown>;
  if (record.format !== FORMAT) throw corrupt(`has unknown format ${String(record.format)}`);
  if (typeof record.name !== 'string') throw corrupt('has no shard name');
  const logStartOffset = record.logStartOffset;
  if (typeof logStartOffset !== 'number' || !Number.isSafeInteger(logStartOffset) || logStartOffset < 0) {
    throw corrupt('has an invalid logStartOffset');
  }
  let config: ShardConfig;
  try {
    config = mergeJournalShardConfig(DEFAULT_SHARD_CONFIG, record.config);
  } catch (error) {
    throw corrupt('has an invalid config', error);
  }
  return { name: record.name, config, logStartOffset };
}
