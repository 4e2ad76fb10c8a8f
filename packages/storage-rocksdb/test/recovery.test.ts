import { join } from 'node:path';
import { expectStoredBatches, makeBatches, readAll, withOffsets } from '@robustmq/storage-conformance';
import { describe, expect, it } from 'vitest';
import { createDatabase, type RocksDatabase } from '../src/binding.js';
import { encodeBatch } from '../src/codec.js';
import { RocksDbStorageEngine } from '../src/index.js';
import { batchKey, shardRange, tombstoneKey } from '../src/keys.js';
import { useTempDirs } from './helpers.js';

/** Opens the engine's database directly, to leave it as a crash between two writes would. */
async function openRaw(dir: string): Promise<RocksDatabase> {
  const db = createDatabase(join(dir, 'rocksdb'));
  await db.open({ createIfMissing: false });
  return db;
}

async function keysIn(db: RocksDatabase, range: { gte: Buffer; lt: Buffer }): Promise<number> {
  const iterator = db.iterator({ ...range, values: false });
  try {
    return (await iterator.nextv(1000)).length;
  } finally {
    await iterator.close();
  }
}

describe('recovery on open', () => {
  const tempDir = useTempDirs();

  it('finishes range deletes that a crash cut short', async () => {
    const dir = await tempDir();
    let engine = await RocksDbStorageEngine.open({ dataDir: dir });
    await engine.createShard('s');
    const batches = withOffsets(makeBatches(10, { recordCount: 2 }));
    await engine.append('s', batches);
    expect(await engine.deleteBefore('s', 8)).toBe(8);
    await engine.close();

    // As if the process died after the synced metadata writes but before the range deletes: a
    // batch below the log start of shard 1, and a deleted shard (id 7) whose keys are still there.
    let db = await openRaw(dir);
    const leftover = encodeBatch(batches[0]!);
    await db.batch(
      [
        { type: 'put', key: batchKey(1, 0), value: leftover },
        { type: 'put', key: batchKey(7, 0), value: leftover },
        { type: 'put', key: tombstoneKey(7), value: Buffer.alloc(0) },
      ],
      { sync: true },
    );
    await db.close();

    engine = await RocksDbStorageEngine.open({ dataDir: dir });
    expect(await engine.listShards()).toEqual(['s']);
    const info = await engine.shardInfo('s');
    expect([info.logStartOffset, info.nextOffset]).toEqual([8, 20]);
    expectStoredBatches(await readAll(engine, 's'), batches.slice(4));
    await engine.close();

    db = await openRaw(dir);
    expect(await keysIn(db, { gte: batchKey(1, 0), lt: batchKey(1, 8) })).toBe(0);
    expect(await keysIn(db, shardRange(7))).toBe(0);
    expect(await keysIn(db, { gte: tombstoneKey(7), lt: tombstoneKey(8) })).toBe(0);
    await db.close();
  });
});
