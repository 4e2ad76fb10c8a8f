import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@robustmq/core';
import { damageBatch, open, sha, shardOfSizes } from './helpers.js';

/**
 * A read of several MiB is split into pieces read a few at a time, and the frames are checked in
 * runs as the pieces arrive: these reads cross many pieces, with frames of uneven sizes.
 */
const SIZES = [70_000, 3_000, 130_000, 17, 65_536, 1_200_000, 40_000];
const BATCHES = 60;

function longShard() {
  return shardOfSizes(SIZES, BATCHES);
}

describe('long reads', () => {
  it('return every byte written, into a lent buffer or fresh memory', async () => {
    const { engine, written } = await longShard();
    for (const into of [Buffer.alloc(40 * 1024 * 1024), undefined]) {
      let offset = 0;
      const read = [];
      while (offset < BATCHES) {
        const { batches } = await engine.read('s', offset, { maxBytes: 9 * 1024 * 1024, into });
        read.push(...batches.map((b) => sha(b.data)));
        offset = (batches.at(-1)?.baseOffset ?? offset) + 1;
      }
      expect(read).toEqual(written.map((b) => sha(b.data)));
    }
  });

  it('serve the frames before a damaged one deep in a long read, then report it corrupt', async () => {
    const { dir, engine, written } = await longShard();
    await engine.close();
    // Damage batch 40, several MiB into the log.
    await damageBatch(dir, 's', SIZES, 40);
    const reopened = await open(dir);
    const into = Buffer.alloc(40 * 1024 * 1024);
    const { batches } = await reopened.read('s', 0, { maxBytes: 32 * 1024 * 1024, into });
    expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, 40).map((b) => sha(b.data)));
    await expect(reopened.read('s', 40, { maxBytes: 1 << 20, into })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    // The batches after it are intact and still served.
    const after = await reopened.read('s', 41, { maxBytes: 32 * 1024 * 1024, into });
    expect(after.batches.map((b) => sha(b.data))).toEqual(written.slice(41).map((b) => sha(b.data)));
  });
});
