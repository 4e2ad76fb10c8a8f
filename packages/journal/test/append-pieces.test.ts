import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCode, type DurabilityPolicy, type RecordBatch } from '@robustmq/core';
import {
  FRAME_HEADER_BYTES,
  frameBytes,
  frameChecksumOk,
  readFrameHeader,
  sealFrame,
  writeFrame,
  writeFrameHeader,
} from '../src/frame.js';
import { batch, open, readAll, segmentLogs, sha, tempDir } from './helpers.js';

/** Larger than the data the journal copies behind a frame's header: written from the caller's buffer. */
const LARGE = 20_000;
const SMALL = 300;

describe('appends written from the caller’s buffers', () => {
  it('frames data given apart exactly as data copied behind the header', () => {
    const data = randomBytes(LARGE);
    const whole = Buffer.alloc(frameBytes(data.length));
    writeFrame(whole, 0, 7, 1_234.5, data);
    sealFrame(whole, 0, 2 ** 40 + 3);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    writeFrameHeader(header, 0, data.length, 7, 1_234.5);
    sealFrame(header, 0, 2 ** 40 + 3, data);
    expect(header.equals(whole.subarray(0, FRAME_HEADER_BYTES))).toBe(true);
    const parsed = readFrameHeader(whole, 0);
    expect(parsed).not.toBeNull();
    expect(frameChecksumOk(whole, 0, parsed!)).toBe(true);
  });

  for (const durability of ['group-commit', 'fsync', 'none'] as DurabilityPolicy[]) {
    it(`stores what was appended though the caller reuses its buffers once the append resolves (${durability})`, async () => {
      const dir = await tempDir();
      const engine = await open(dir);
      await engine.createShard('s', { durability });
      const expected: string[] = [];
      // Producers that each fill one buffer, append it and, once acknowledged, fill it anew.
      const producer = async (): Promise<void> => {
        const large = Buffer.alloc(LARGE);
        const small = Buffer.alloc(SMALL);
        for (let i = 0; i < 20; i++) {
          large.set(randomBytes(LARGE));
          small.set(randomBytes(SMALL));
          const batches: RecordBatch[] = [
            { recordCount: 2, maxTimestamp: 1_000 + i, data: large },
            { recordCount: 1, maxTimestamp: 1_000 + i, data: small },
          ];
          const sums = [sha(large), sha(small)];
          const { baseOffset } = await engine.append('s', batches);
          expected[baseOffset] = sums[0]!;
          expected[baseOffset + 2] = sums[1]!;
          large.fill(0xee);
          small.fill(0xee);
        }
      };
      await Promise.all(Array.from({ length: 8 }, producer));
      const check = async (reader: typeof engine): Promise<void> => {
        const stored = await readAll(reader, 's');
        expect(stored.length).toBe(8 * 20 * 2);
        for (const b of stored) expect(sha(b.data)).toBe(expected[b.baseOffset]);
      };
      await check(engine);
      // Recovery checks the frames on disk against their checksums too.
      await engine.close();
      await check(await open(dir));
    });
  }

  it('writes more pieces than one vectored write takes', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { durability: 'none' });
    // 700 appends queued at once, two pieces each for the large batch plus one for the small:
    // more than the 1024 buffers one writev takes, so the write goes on where the first stopped.
    const appended = Array.from({ length: 700 }, (_, i) => [batch(5_000, 1_000 + i), batch(100, 1_000 + i)]);
    const results = await Promise.all(appended.map((batches) => engine.append('s', batches)));
    const stored = await readAll(engine, 's');
    expect(stored.length).toBe(1_400);
    for (const [i, { baseOffset }] of results.entries()) {
      expect(sha(stored[baseOffset]!.data)).toBe(sha(appended[i]![0]!.data));
      expect(sha(stored[baseOffset + 1]!.data)).toBe(sha(appended[i]![1]!.data));
    }
  });

  it('never serves a frame written from the caller’s buffer that is damaged on disk, with or without a lent buffer', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', {});
    const written = Array.from({ length: 6 }, (_, i) => batch(LARGE, 1_000 + i));
    for (const b of written) await engine.append('s', [b]);
    const [log] = await segmentLogs(dir, 's');
    const bytes = await readFile(log!);
    // Damage the data of frame 3 under the running engine: the page cache serves the change.
    const at = 3 * frameBytes(LARGE) + FRAME_HEADER_BYTES + 9_000;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(log!, bytes);
    const into = Buffer.alloc(1 << 20);
    for (const options of [{ maxBytes: 1 << 20 }, { maxBytes: 1 << 20, into }]) {
      for (let i = 0; i < 2; i++) {
        const { batches } = await engine.read('s', 0, options);
        expect(batches.map((b) => b.baseOffset)).toEqual([0, 1, 2]);
        expect(batches.map((b) => sha(b.data))).toEqual(written.slice(0, 3).map((b) => sha(b.data)));
        await expect(engine.read('s', 3, options)).rejects.toMatchObject({ code: ErrorCode.Corrupt });
      }
    }
  });
});
