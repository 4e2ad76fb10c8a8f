import { copyFile, mkdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import { batch, GatedStore, open, tempDir } from './helpers.js';

describe('calls racing deleteBefore', () => {
  // Shard `s`: 60 batches of 400 bytes, 9 to a 4 KiB segment, timestamps 1000 + offset except
  // batch 2's, which lies far ahead; segment 0 offloaded to a store whose reads can be held.
  async function shard() {
    const store = new GatedStore(await tempDir());
    await mkdir(store.dir, { recursive: true });
    const engine = await open(await tempDir(), { offloadedReader: store });
    await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
    for (let i = 0; i < 60; i++) await engine.append('s', [batch(400, i === 2 ? 1_000_000 : 1_000 + i)]);
    const sealed = await engine.sealedSegments('s');
    await copyFile(sealed[0]!.logPath, store.path(sealed[0]!));
    expect(await engine.offloadSegment('s', 0)).toBe(true);
    // Batch 2, whose timestamp reaches every one asked for, is below the log start.
    await engine.deleteBefore('s', 4);
    return { store, engine, sealed };
  }

  it('finds an offset by timestamp when the segments it was about to look in are deleted meanwhile', async () => {
    const { store, engine, sealed } = await shard();
    const third = sealed[2]!.baseOffset;

    const held = store.hold();
    // Looks through segment 0 (held in its store), then would go on to segment 1, holding 12.
    const found = engine.offsetForTimestamp('s', 1_000 + 12);
    await held.arrived;
    expect(await engine.deleteBefore('s', third)).toBe(third);
    held.release();

    // Segments 0 and 1 are gone: the first batch from the log start on that reaches it.
    expect(await found).toBe(third);
    expect(await engine.offsetForTimestamp('s', 1_000 + 12)).toBe(third);
  });
});

describe('calls racing deleteShard', () => {
  it('fail a read under way when its shard is deleted with NOT_FOUND', async () => {
    const store = new GatedStore(await tempDir());
    await mkdir(store.dir, { recursive: true });
    const engine = await open(await tempDir(), { offloadedReader: store });
    await engine.createShard('s', { segmentBytes: 4096, retentionMs: null });
    for (let i = 0; i < 30; i++) await engine.append('s', [batch(400, 1_000 + i)]);
    const [first] = await engine.sealedSegments('s');
    await copyFile(first!.logPath, store.path(first!));
    expect(await engine.offloadSegment('s', 0)).toBe(true);

    const held = store.hold();
    // From segment 0 (held in its store) on into the local segments after it.
    const read = engine.read('s', 0, { maxBytes: 64 * 1024 });
    await held.arrived;
    await engine.deleteShard('s');
    held.release();
    await expect(read).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});
