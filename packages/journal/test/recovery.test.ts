import {
  appendFile,
  mkdir,
  open as openFile,
  readdir,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type RecordBatch } from '@robustmq/core';
import { RecordingLogger, batch, crashCopy, open, readAll, segmentLogs, sha } from './helpers.js';

/** Flips one byte of a file in place. */
async function flipByte(path: string, position: number): Promise<void> {
  const handle = await openFile(path, 'r+');
  try {
    const one = Buffer.alloc(1);
    await handle.read(one, 0, 1, position);
    one[0] = one[0]! ^ 0x5a;
    await handle.write(one, 0, 1, position);
  } finally {
    await handle.close();
  }
}

/** A shard with `count` one-record batches of 200 bytes (232 on disk) in segments of `segmentBytes`. */
async function filled(dir: string, count: number, segmentBytes = 1 << 20, logger = new RecordingLogger()) {
  const engine = await open(dir, { logger, indexIntervalBytes: 512 });
  await engine.createShard('s', { segmentBytes });
  const written: RecordBatch[] = [];
  for (let i = 0; i < count; i++) {
    const b = batch(200, 1_000 + i);
    written.push(b);
    await engine.append('s', [b]);
  }
  return { engine, written, logger };
}

const FRAME = 232;

describe('journal recovery', () => {
  it('truncates a torn tail after a crash and keeps everything before it', async () => {
    const { engine, written } = await filled(await tempDirFor(), 20);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await truncate(log!, 19 * FRAME + 100);

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect((await reopened.shardInfo('s')).nextOffset).toBe(19);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(
      written.slice(0, 19).map((b) => sha(b.data)),
    );
    expect(logger.count('truncating torn or corrupt tail')).toBe(1);
    expect((await stat(log!)).size).toBe(19 * FRAME);
    expect(await reopened.append('s', [batch(10)])).toEqual({
      baseOffset: 19,
      lastOffset: 19,
      logStartOffset: 0,
    });
  });

  it('truncates garbage appended to the last segment', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 10);
    await engine.close();
    const [log] = await segmentLogs(dir, 's');
    await appendFile(log!, Buffer.from('this is not a frame, just junk bytes that follow the last one'));

    const reopened = await open(dir);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    expect((await stat(log!)).size).toBe(10 * FRAME);
  });

  it('truncates a frame-shaped tail with a bad checksum', async () => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 9 * FRAME + 150);

    const reopened = await open(crashed);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(
      written.slice(0, 9).map((b) => sha(b.data)),
    );
  });

  it('keeps acknowledged frames after a flipped payload byte in the middle of the last segment', async () => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 5 * FRAME + 100);

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect(await reopened.shardInfo('s')).toMatchObject({ logStartOffset: 0, nextOffset: 10 });
    expect(logger.count('truncating torn or corrupt tail')).toBe(0);
    const lost = logger.lines.filter((l) => l.level === 'error' && l.message.includes('damaged frame'));
    expect(lost.map((l) => l.fields)).toEqual([
      expect.objectContaining({ shard: 's', segment: log, position: 5 * FRAME, lostFrom: 5, lostTo: 6 }),
    ]);
    await expect(reopened.read('s', 5, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    // A read from before the damage stops at it; reads after it get every later batch.
    const before = await reopened.read('s', 3, { maxBytes: 1 << 20 });
    expect(before.batches.map((b) => b.baseOffset)).toEqual([3, 4]);
    const after = await reopened.read('s', 6, { maxBytes: 1 << 20 });
    expect(after.batches.map((b) => sha(b.data))).toEqual(written.slice(6).map((b) => sha(b.data)));
    expect(await reopened.append('s', [batch(200, 5_000)])).toEqual({
      baseOffset: 10,
      lastOffset: 10,
      logStartOffset: 0,
    });
    expect((await stat(log!)).size).toBe(11 * FRAME);
    await reopened.close();

    // The kept frames stay across a clean restart; the lost offset stays lost.
    const again = await open(crashed);
    expect((await again.shardInfo('s')).nextOffset).toBe(11);
    await expect(again.read('s', 5, { maxBytes: 10 })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    for (const offset of [0, 4, 6, 9]) {
      const { batches } = await again.read('s', offset, { maxBytes: 1 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(await again.offsetForTimestamp('s', 1_007)).toBe(7);
    expect((await again.append('s', [batch(10)])).baseOffset).toBe(11);
  });

  it.each([
    { field: 'data length', at: 1 },
    { field: 'magic', at: 8 },
    { field: 'base offset', at: 19 },
  ])('keeps the frames after a damaged $field in the middle of the last segment', async ({ at }) => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 5 * FRAME + at);

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger, indexIntervalBytes: 512 });
    expect((await reopened.shardInfo('s')).nextOffset).toBe(10);
    expect(logger.count('truncating torn or corrupt tail')).toBe(0);
    expect(logger.lines.find((l) => l.message.includes('damaged frame'))?.fields).toMatchObject({
      lostFrom: 5,
      lostTo: 6,
    });
    await expect(reopened.read('s', 5, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    expect((await reopened.read('s', 0, { maxBytes: 1 << 20 })).batches.map((b) => b.baseOffset)).toEqual([
      0, 1, 2, 3, 4,
    ]);
    for (let offset = 6; offset < 10; offset++) {
      const { batches } = await reopened.read('s', offset, { maxBytes: 1 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(await reopened.append('s', [batch(10)])).toEqual({
      baseOffset: 10,
      lastOffset: 10,
      logStartOffset: 0,
    });
  });

  it('takes the lost offsets from the next whole frame, not from a damaged header', async () => {
    // Batches of 3 records: offsets 0, 3, 6, ... ; the record count of the one at 9 is damaged.
    const dir = await tempDirFor();
    const engine = await open(dir);
    await engine.createShard('s');
    const written: RecordBatch[] = [];
    for (let i = 0; i < 6; i++) {
      const b = batch(200, 1_000 + i, 3);
      written.push(b);
      await engine.append('s', [b]);
    }
    const crashed = await crashCopy(dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 3 * FRAME + 23);

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect(logger.lines.find((l) => l.message.includes('damaged frame'))?.fields).toMatchObject({
      lostFrom: 9,
      lostTo: 12,
    });
    for (const offset of [9, 10, 11]) {
      await expect(reopened.read('s', offset, { maxBytes: 10 })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
    }
    const after = await reopened.read('s', 12, { maxBytes: 1 << 20 });
    expect(after.batches.map((b) => b.baseOffset)).toEqual([12, 15]);
    expect(after.batches.map((b) => sha(b.data))).toEqual(written.slice(4).map((b) => sha(b.data)));
    expect(await reopened.append('s', [batch(10)])).toEqual({
      baseOffset: 18,
      lastOffset: 18,
      logStartOffset: 0,
    });
  });

  it('keeps the frames after junk written over parts of two frames', async () => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    const handle = await openFile(log!, 'r+');
    await handle.write(Buffer.alloc(300, 0xa7), 0, 300, 3 * FRAME + 150);
    await handle.close();

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect(logger.lines.find((l) => l.message.includes('damaged frame'))?.fields).toMatchObject({
      position: 3 * FRAME,
      bytes: 2 * FRAME,
      lostFrom: 3,
      lostTo: 5,
    });
    for (const offset of [3, 4]) {
      await expect(reopened.read('s', offset, { maxBytes: 10 })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
    }
    expect((await reopened.read('s', 5, { maxBytes: 1 << 20 })).batches.map((b) => sha(b.data))).toEqual(
      written.slice(5).map((b) => sha(b.data)),
    );
  });

  it('still cuts a torn tail, and unwritten zeros with frames after them, behind kept damage', async () => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 2 * FRAME + 100);
    // Frame 6 never reached the file, though frames 7.. did: none of them was acknowledged.
    const handle = await openFile(log!, 'r+');
    await handle.write(Buffer.alloc(FRAME), 0, FRAME, 6 * FRAME);
    await handle.close();

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect(logger.count('damaged frame')).toBe(1);
    expect(logger.count('truncating torn or corrupt tail')).toBe(1);
    expect((await reopened.shardInfo('s')).nextOffset).toBe(6);
    expect((await stat(log!)).size).toBe(6 * FRAME);
    await expect(reopened.read('s', 2, { maxBytes: 10 })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    expect((await reopened.read('s', 3, { maxBytes: 1 << 20 })).batches.map((b) => sha(b.data))).toEqual(
      written.slice(3, 6).map((b) => sha(b.data)),
    );
    expect(await reopened.append('s', [batch(10)])).toEqual({
      baseOffset: 6,
      lastOffset: 6,
      logStartOffset: 0,
    });
  });

  it('cuts a short frame at the end behind kept damage', async () => {
    const { engine, written } = await filled(await tempDirFor(), 10);
    const crashed = await crashCopy(engine.dir);
    const [log] = await segmentLogs(crashed, 's');
    await flipByte(log!, 4 * FRAME + 60);
    await truncate(log!, 9 * FRAME + 150);

    const logger = new RecordingLogger();
    const reopened = await open(crashed, { logger });
    expect(logger.count('damaged frame')).toBe(1);
    expect(logger.count('truncating torn or corrupt tail')).toBe(1);
    expect((await reopened.shardInfo('s')).nextOffset).toBe(9);
    expect((await reopened.read('s', 5, { maxBytes: 1 << 20 })).batches.map((b) => sha(b.data))).toEqual(
      written.slice(5, 9).map((b) => sha(b.data)),
    );
    expect(await reopened.append('s', [batch(10)])).toEqual({
      baseOffset: 9,
      lastOffset: 9,
      logStartOffset: 0,
    });
  });

  it('cuts garbage off a sealed segment whose frames are complete', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 30, 2048);
    await engine.close();
    const logs = await segmentLogs(dir, 's');
    const size = (await stat(logs[1]!)).size;
    await appendFile(logs[1]!, Buffer.alloc(500, 7));

    const reopened = await open(dir);
    expect((await stat(logs[1]!)).size).toBe(size);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });

  it('serves CORRUPT, not bytes, for a flipped byte in the middle of a sealed segment', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 30, 2048);
    await engine.close();
    const logs = await segmentLogs(dir, 's');
    // Segment 1 holds offsets 8..15 (8 frames of 232 bytes per 2048-byte segment); damage offset 11.
    await flipByte(logs[1]!, 3 * FRAME + 100);

    const logger = new RecordingLogger();
    const reopened = await open(dir, { logger });
    await expect(reopened.read('s', 11, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    const upTo = await reopened.read('s', 8, { maxBytes: 1 << 20 });
    expect(upTo.batches.map((b) => b.baseOffset)).toEqual([8, 9, 10]);
    for (const offset of [0, 7, 12, 15, 16, 29]) {
      const { batches } = await reopened.read('s', offset, { maxBytes: 1 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(
      logger.lines.some((l) => l.level === 'error' && l.message.includes('corrupt batch not served')),
    ).toBe(true);
    // Appends go on; nothing was truncated away.
    expect((await reopened.append('s', [batch(5)])).baseOffset).toBe(30);
  });

  it('serves CORRUPT for damage found in the last segment after a clean shutdown', async () => {
    const dir = await tempDirFor();
    const { engine } = await filled(dir, 10);
    await engine.close();
    const [log] = await segmentLogs(dir, 's');
    await flipByte(log!, 4 * FRAME + 40);

    const reopened = await open(dir);
    await expect(reopened.read('s', 4, { maxBytes: 10 })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    await expect(reopened.offsetForTimestamp('s', 1_004)).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    expect((await reopened.read('s', 5, { maxBytes: 10 })).batches[0]!.baseOffset).toBe(5);
  });

  it('keeps what was appended after a clean restart when a crash follows older damage', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 10);
    await engine.close();
    const [log] = await segmentLogs(dir, 's');
    await flipByte(log!, 4 * FRAME + 40);
    const reopened = await open(dir);
    for (let i = 0; i < 5; i++) {
      const b = batch(200, 2_000 + i);
      written.push(b);
      await reopened.append('s', [b]);
    }
    const crashed = await crashCopy(reopened.dir);

    // The damage from before the clean close has whole frames after it: kept as damage, not cut
    // off as a torn tail.
    const logger = new RecordingLogger();
    const recovered = await open(crashed, { logger });
    expect(logger.count('truncating torn or corrupt tail')).toBe(0);
    expect((await recovered.shardInfo('s')).nextOffset).toBe(15);
    await expect(recovered.read('s', 4, { maxBytes: 10 })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    for (const offset of [0, 3, 5, 9, 10, 14]) {
      const { batches } = await recovered.read('s', offset, { maxBytes: 1 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(await recovered.append('s', [batch(10)])).toEqual({
      baseOffset: 15,
      lastOffset: 15,
      logStartOffset: 0,
    });
  });

  it('cuts a torn tail appended after a clean restart, and only that', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 10);
    await engine.close();
    const reopened = await open(dir, { indexIntervalBytes: 512 });
    for (let i = 0; i < 5; i++) {
      const b = batch(200, 2_000 + i);
      written.push(b);
      await reopened.append('s', [b]);
    }
    const crashed = await crashCopy(reopened.dir);
    const [log] = await segmentLogs(crashed, 's');
    await truncate(log!, 14 * FRAME + 100);

    const logger = new RecordingLogger();
    const recovered = await open(crashed, { logger, indexIntervalBytes: 512 });
    expect(logger.count('truncating torn or corrupt tail')).toBe(1);
    expect((await recovered.shardInfo('s')).nextOffset).toBe(14);
    expect((await readAll(recovered, 's')).map((b) => sha(b.data))).toEqual(
      written.slice(0, 14).map((b) => sha(b.data)),
    );
    // The indexes loaded for the clean part and rebuilt after it find every offset and time.
    for (let offset = 0; offset < 14; offset++) {
      expect((await recovered.read('s', offset, { maxBytes: 1 })).batches[0]!.baseOffset).toBe(offset);
    }
    expect(await recovered.offsetForTimestamp('s', 2_002)).toBe(12);
    expect(await recovered.append('s', [batch(10)])).toEqual({
      baseOffset: 14,
      lastOffset: 14,
      logStartOffset: 0,
    });
  });

  it('forgets the clean marker once open, so a crash after a clean restart recovers as any crash', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 10);
    await engine.close();
    const shardDir = dirname((await segmentLogs(dir, 's'))[0]!);
    expect(await readdir(shardDir)).toContain('clean-shutdown.json');
    const reopened = await open(dir);
    expect(await readdir(shardDir)).not.toContain('clean-shutdown.json');
    for (let i = 0; i < 5; i++) {
      const b = batch(200, 2_000 + i);
      written.push(b);
      await reopened.append('s', [b]);
    }
    const crashed = await crashCopy(reopened.dir);
    // The disk loses more than the crash: part of what was there at the clean close too.
    const [log] = await segmentLogs(crashed, 's');
    await truncate(log!, 6 * FRAME + 100);

    const logger = new RecordingLogger();
    const recovered = await open(crashed, { logger });
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
    expect((await recovered.shardInfo('s')).nextOffset).toBe(6);
    expect((await readAll(recovered, 's')).map((b) => sha(b.data))).toEqual(
      written.slice(0, 6).map((b) => sha(b.data)),
    );
    expect((await recovered.append('s', [batch(10)])).baseOffset).toBe(6);
  });

  it('rebuilds a sealed segment whose header is smashed, keeping the frames after the damage and later segments', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 30, 2048);
    await engine.close();
    const logs = await segmentLogs(dir, 's');
    await flipByte(logs[1]!, 2 * FRAME + 9);
    await truncate(logs[1]!.replace(/\.log$/, '.index'), 3);

    const logger = new RecordingLogger();
    const reopened = await open(dir, { logger });
    expect((await reopened.read('s', 9, { maxBytes: 1 << 20 })).batches.map((b) => b.baseOffset)).toEqual([
      9,
    ]);
    await expect(reopened.read('s', 10, { maxBytes: 10 })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
    // The acknowledged frames after the damaged one in the same segment are still served.
    for (const offset of [11, 13, 15, 16]) {
      const { batches } = await reopened.read('s', offset, { maxBytes: 10 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(
      logger.lines.find((l) => l.message.includes('damaged frame in a sealed segment'))?.fields,
    ).toMatchObject({ segment: logs[1], lostFrom: 10, lostTo: 11 });
    await reopened.close();
  });

  it('keeps the frames after a hole of zeros in a sealed segment whose indexes are gone', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 30, 2048);
    await engine.close();
    const logs = await segmentLogs(dir, 's');
    // Zeros over the whole of offsets 12 and 13 (frames 4 and 5 of segment 1), indexes removed.
    const handle = await openFile(logs[1]!, 'r+');
    await handle.write(Buffer.alloc(2 * FRAME), 0, 2 * FRAME, 4 * FRAME);
    await handle.close();
    await rm(logs[1]!.replace(/\.log$/, '.index'));
    await rm(logs[1]!.replace(/\.log$/, '.timeindex'));

    const reopened = await open(dir);
    for (const offset of [12, 13]) {
      await expect(reopened.read('s', offset, { maxBytes: 10 })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
    }
    for (const offset of [8, 11, 14, 15, 16]) {
      const { batches } = await reopened.read('s', offset, { maxBytes: 10 });
      expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
    }
    expect(await reopened.offsetForTimestamp('s', 1_015)).toBe(15);
    expect((await reopened.append('s', [batch(5)])).baseOffset).toBe(30);
    await reopened.close();
  });

  it('goes on after the offsets of a last segment removed by hand, never handing them out again', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 30, 2048);
    await engine.close();
    // Segments of 8 frames: 0..7, 8..15, 16..23, and the last one, 24..29, is removed.
    const logs = await segmentLogs(dir, 's');
    expect(logs).toHaveLength(4);
    await rm(logs[3]!);

    const logger = new RecordingLogger();
    const reopened = await open(dir, { logger });
    expect(await reopened.shardInfo('s')).toMatchObject({ logStartOffset: 0, nextOffset: 30 });
    expect(
      logger.lines.some((l) => l.level === 'error' && l.message.includes('last segment is missing')),
    ).toBe(true);
    const kept = await reopened.read('s', 16, { maxBytes: 1 << 20 });
    expect(kept.batches.map((b) => sha(b.data))).toEqual(written.slice(16, 24).map((b) => sha(b.data)));
    await expect(reopened.read('s', 24, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    const next = batch(50);
    expect((await reopened.append('s', [next])).baseOffset).toBe(30);
    await reopened.close();

    // The gap stays a gap across restarts, and what came after it stays readable.
    const again = await open(dir);
    expect(await again.shardInfo('s')).toMatchObject({ logStartOffset: 0, nextOffset: 31 });
    await expect(again.read('s', 29, { maxBytes: 1 << 20 })).rejects.toMatchObject({
      code: ErrorCode.Corrupt,
    });
    expect(sha((await again.read('s', 30, { maxBytes: 1 << 20 })).batches[0]!.data)).toBe(sha(next.data));
    expect((await again.read('s', 0, { maxBytes: 1 })).batches[0]!.baseOffset).toBe(0);
  });

  it('goes on after the offsets of a last segment cut short or emptied by hand, never handing them out again', async () => {
    for (const cutTo of [3 * FRAME, 3 * FRAME + 100, 0]) {
      const dir = await tempDirFor();
      const { engine, written } = await filled(dir, 30, 2048);
      await engine.close();
      // Segments of 8 frames: the last one, 24..29, is cut to 3 whole frames (and part of a
      // fourth), or emptied.
      const logs = await segmentLogs(dir, 's');
      await truncate(logs[3]!, cutTo);

      const logger = new RecordingLogger();
      const reopened = await open(dir, { logger });
      expect(await reopened.shardInfo('s')).toMatchObject({ logStartOffset: 0, nextOffset: 30 });
      expect(
        logger.lines.some((l) => l.level === 'error' && l.message.includes('records it held are lost')),
      ).toBe(true);
      const keptUpTo = 24 + Math.floor(cutTo / FRAME);
      for (let offset = 20; offset < keptUpTo; offset++) {
        const { batches } = await reopened.read('s', offset, { maxBytes: 1 });
        expect(sha(batches[0]!.data)).toBe(sha(written[offset]!.data));
      }
      await expect(reopened.read('s', keptUpTo, { maxBytes: 1 << 20 })).rejects.toMatchObject({
        code: ErrorCode.Corrupt,
      });
      const next = batch(50);
      expect((await reopened.append('s', [next])).baseOffset).toBe(30);
      await reopened.close();

      const again = await open(dir);
      expect(await again.shardInfo('s')).toMatchObject({ nextOffset: 31 });
      expect(sha((await again.read('s', 30, { maxBytes: 1 << 20 })).batches[0]!.data)).toBe(sha(next.data));
      await again.close();
    }
  });

  it('goes on after the offsets of a shard whose only segment was removed by hand', async () => {
    const dir = await tempDirFor();
    const { engine } = await filled(dir, 10);
    await engine.close();
    const logs = await segmentLogs(dir, 's');
    expect(logs).toHaveLength(1);
    await rm(logs[0]!);

    const reopened = await open(dir);
    expect(await reopened.shardInfo('s')).toMatchObject({ logStartOffset: 10, nextOffset: 10 });
    await expect(reopened.read('s', 0, { maxBytes: 10 })).rejects.toMatchObject({
      code: ErrorCode.OffsetOutOfRange,
    });
    expect((await reopened.append('s', [batch(5)])).baseOffset).toBe(10);
  });

  it('opens a shard directory holding entries it did not make, and leaves them there', async () => {
    const dir = await tempDirFor();
    const { engine, written } = await filled(dir, 20, 2048);
    await engine.close();
    const shard = dirname((await segmentLogs(dir, 's'))[0]!);
    const foreign = ['backup.tmp/', 'lost+found/', 'notes.tmp', 'notes.txt', '00000000000000000000.log.bak'];
    for (const name of foreign) {
      if (name.endsWith('/')) await mkdir(join(shard, name));
      else await writeFile(join(shard, name), 'not the journal');
    }

    const reopened = await open(dir);
    expect((await readAll(reopened, 's')).map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
    await reopened.append('s', [batch(100)]);
    await reopened.close();
    const left = await readdir(shard);
    for (const name of foreign) expect(left).toContain(name.replace(/\/$/, ''));
  });

  it('gives typed errors for bad input and changes nothing', async () => {
    const { engine } = await filled(await tempDirFor(), 3);
    const before = await engine.shardInfo('s');
    const cases: [() => Promise<unknown>, string][] = [
      [() => engine.read('s', -1, { maxBytes: 10 }), ErrorCode.InvalidArgument],
      [() => engine.read('s', 1.5, { maxBytes: 10 }), ErrorCode.InvalidArgument],
      [() => engine.read('s', 0, { maxBytes: -1 }), ErrorCode.InvalidArgument],
      [() => engine.read('s', 4, { maxBytes: 10 }), ErrorCode.OffsetOutOfRange],
      [() => engine.read('nope', 0, { maxBytes: 10 }), ErrorCode.NotFound],
      [() => engine.read('../etc', 0, { maxBytes: 10 }), ErrorCode.InvalidArgument],
      [() => engine.append('nope', [batch(1)]), ErrorCode.NotFound],
      [() => engine.append('s', []), ErrorCode.InvalidArgument],
      [
        () => engine.append('s', [{ recordCount: 0, maxTimestamp: 1, data: Buffer.alloc(1) }]),
        ErrorCode.InvalidArgument,
      ],
      [
        () => engine.append('s', [{ recordCount: 1, maxTimestamp: Number.NaN, data: Buffer.alloc(1) }]),
        ErrorCode.InvalidArgument,
      ],
      [
        () =>
          engine.append('s', [
            batch(1),
            { recordCount: 1, maxTimestamp: 1, data: 'text' as unknown as Uint8Array },
          ]),
        ErrorCode.InvalidArgument,
      ],
      [() => engine.append('s', [batch(1), batch(8 * 1024 * 1024 + 1)]), ErrorCode.TooLarge],
      [() => engine.deleteBefore('s', -5), ErrorCode.InvalidArgument],
      [() => engine.deleteBefore('s', 4), ErrorCode.OffsetOutOfRange],
      [() => engine.waitForData('s', -1, 10), ErrorCode.InvalidArgument],
      [() => engine.offsetForTimestamp('nope', 1), ErrorCode.NotFound],
      [() => engine.createShard('s'), ErrorCode.AlreadyExists],
      [() => engine.createShard('x', { segmentBytes: -1 }), ErrorCode.InvalidArgument],
      [() => engine.createShard('x', { flavour: 'mint' } as never), ErrorCode.InvalidArgument],
      [() => engine.updateShardConfig('s', { durability: 'maybe' as never }), ErrorCode.InvalidArgument],
      [() => engine.deleteShard('nope'), ErrorCode.NotFound],
    ];
    for (const [call, code] of cases) {
      await expect(call()).rejects.toMatchObject({ name: 'RobustMQError', code });
    }
    expect(await engine.shardInfo('s')).toEqual(before);
    expect(await engine.listShards()).toEqual(['s']);
    expect((await readAll(engine, 's')).length).toBe(3);
  });
});

import { tempDir as tempDirFor } from './helpers.js';
