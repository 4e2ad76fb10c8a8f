import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Journal } from '../src/index.js';
import { batch, open, readAll, segmentLogs, sha, tempDir } from './helpers.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A journal whose clock the test moves. */
async function withClock(dir: string, start: number) {
  const clock = { now: start };
  const engine = await open(dir, { now: () => clock.now });
  return { engine, clock };
}

/** Appends one batch stamped with the clock's time, as a producer with a right clock would. */
async function appendAt(engine: Journal, now: number) {
  const appended = batch(100, now);
  await engine.append('s', [appended]);
  return appended;
}

/** The base offsets of shard `s`'s segments, from their file names. */
async function segmentBases(dir: string): Promise<number[]> {
  return (await segmentLogs(dir, 's')).map((path) => Number(basename(path, '.log')));
}

describe('segmentMs', () => {
  it('rolls a quiet shard by age, so that retention by time deletes its old records', async () => {
    const dir = await tempDir();
    const t0 = 1_700_000_000_000;
    const { engine, clock } = await withClock(dir, t0);
    await engine.createShard('s', { segmentMs: MINUTE, retentionMs: HOUR });
    for (const at of [t0, t0 + 1_000, t0 + MINUTE - 1]) {
      clock.now = at;
      await appendAt(engine, at);
    }
    expect(await segmentBases(dir)).toEqual([0]);

    // A minute after the segment's first append, the next append starts a new segment.
    clock.now = t0 + MINUTE;
    const recent = await appendAt(engine, clock.now);
    expect(await segmentBases(dir)).toEqual([0, 3]);
    // The new segment's age counts from its own first append.
    clock.now = t0 + 2 * MINUTE - 1;
    const later = await appendAt(engine, clock.now);
    expect(await segmentBases(dir)).toEqual([0, 3]);

    // An hour after the old segment's newest record it goes, and the recent records stay.
    await engine.enforceRetention(t0 + MINUTE - 1 + HOUR + 1);
    const info = await engine.shardInfo('s');
    expect(info).toMatchObject({ logStartOffset: 3, nextOffset: 5 });
    expect(await segmentBases(dir)).toEqual([3]);
    expect((await readAll(engine, 's')).map((b) => sha(b.data))).toEqual([sha(recent.data), sha(later.data)]);

    // null rolls by size only.
    await engine.updateShardConfig('s', { segmentMs: null });
    clock.now = t0 + 10 * HOUR;
    await appendAt(engine, clock.now);
    expect(await segmentBases(dir)).toEqual([3]);
  });

  it('keeps counting a segment’s age across a restart', async () => {
    const dir = await tempDir();
    // Near the real time: the segment file's own times bound what a restart finds.
    const t0 = Date.now();
    let { engine, clock } = await withClock(dir, t0);
    await engine.createShard('s', { segmentMs: MINUTE, retentionMs: null });
    await appendAt(engine, t0);
    await engine.close();

    ({ engine, clock } = await withClock(dir, t0 + MINUTE / 2));
    await appendAt(engine, clock.now);
    expect(await segmentBases(dir)).toEqual([0]);
    await engine.close();

    ({ engine, clock } = await withClock(dir, t0 + MINUTE + 5_000));
    await appendAt(engine, clock.now);
    expect(await segmentBases(dir)).toEqual([0, 2]);
    expect((await engine.shardInfo('s')).nextOffset).toBe(3);
  });
});
