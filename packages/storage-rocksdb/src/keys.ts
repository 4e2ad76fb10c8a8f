/**
 * The key layout of the one RocksDB database. Every key starts with a kind byte, so kinds never
 * interleave; numbers in keys are big-endian so that byte order is numeric order.
 *
 * - `00 "format"`, `00 "next-shard-id"`: engine-wide settings.
 * - `01 <shard name>` -> shard id: the registry of shard names.
 * - `02 <id u32>` + sub-key: everything of one shard, so a shard is one key range:
 *   `00` config, `01` log start offset, `02` next offset, `03 <first offset u64>` a block of the
 *   sparse time index, `04 <base offset u64>` a record batch.
 * - `03 <id u32>`: a deleted shard whose key range may not be cleared yet.
 */

const ENGINE = 0x00;
const REGISTRY = 0x01;
const SHARD = 0x02;
const TOMBSTONE = 0x03;

const CONFIG = 0x00;
const LOG_START = 0x01;
const NEXT_OFFSET = 0x02;
const BLOCK = 0x03;
const BATCH = 0x04;

/** Shard ids are u32; the last one is kept free so every shard's range has an exclusive end. */
export const MAX_SHARD_ID = 0xffff_fffe;

export const FORMAT_KEY = Buffer.concat([Buffer.of(ENGINE), Buffer.from('format')]);
export const NEXT_SHARD_ID_KEY = Buffer.concat([Buffer.of(ENGINE), Buffer.from('next-shard-id')]);

export const REGISTRY_RANGE = { gte: Buffer.of(REGISTRY), lt: Buffer.of(REGISTRY + 1) };
export const TOMBSTONE_RANGE = { gte: Buffer.of(TOMBSTONE), lt: Buffer.of(TOMBSTONE + 1) };

export function registryKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(REGISTRY), Buffer.from(name, 'utf8')]);
}

export function nameOfRegistryKey(key: Buffer): string {
  return key.toString('utf8', 1);
}

function withId(kind: number, id: number): Buffer {
  const key = Buffer.allocUnsafe(5);
  key[0] = kind;
  key.writeUInt32BE(id, 1);
  return key;
}

export function tombstoneKey(id: number): Buffer {
  return withId(TOMBSTONE, id);
}

export function idOfTombstoneKey(key: Buffer): number {
  return key.readUInt32BE(1);
}

/** The whole key range of shard `id`. */
export function shardRange(id: number): { gte: Buffer; lt: Buffer } {
  return { gte: withId(SHARD, id), lt: withId(SHARD, id + 1) };
}

function shardKey(id: number, sub: number): Buffer {
  const key = Buffer.allocUnsafe(6);
  key[0] = SHARD;
  key.writeUInt32BE(id, 1);
  key[5] = sub;
  return key;
}

function shardOffsetKey(id: number, sub: number, offset: number): Buffer {
  const key = Buffer.allocUnsafe(14);
  key[0] = SHARD;
  key.writeUInt32BE(id, 1);
  key[5] = sub;
  // Offsets are safe integers (< 2^53), written as two u32 halves.
  key.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), 6);
  key.writeUInt32BE(offset % 0x1_0000_0000, 10);
  return key;
}

export function offsetOfKey(key: Buffer): number {
  return key.readUInt32BE(6) * 0x1_0000_0000 + key.readUInt32BE(10);
}

export function configKey(id: number): Buffer {
  return shardKey(id, CONFIG);
}

export function logStartKey(id: number): Buffer {
  return shardKey(id, LOG_START);
}

export function nextOffsetKey(id: number): Buffer {
  return shardKey(id, NEXT_OFFSET);
}

export function blockKey(id: number, firstOffset: number): Buffer {
  return shardOffsetKey(id, BLOCK, firstOffset);
}

export function blockRange(id: number): { gte: Buffer; lt: Buffer } {
  return { gte: shardKey(id, BLOCK), lt: shardKey(id, BLOCK + 1) };
}

export function batchKey(id: number, baseOffset: number): Buffer {
  return shardOffsetKey(id, BATCH, baseOffset);
}

/** Where shard `id`'s batch keys start (below every batch key of the shard). */
export function firstBatchKey(id: number): Buffer {
  return shardKey(id, BATCH);
}

/** Where shard `id`'s batch keys end (above every batch key of the shard). */
export function batchKeysEnd(id: number): Buffer {
  return shardKey(id, BATCH + 1);
}
