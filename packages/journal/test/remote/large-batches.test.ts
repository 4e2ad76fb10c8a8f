import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { batch, open, readAll, sha, tempDir } from '../helpers.js';
import { client, rejectionOf, startServer } from './helpers.js';

const MiB = 1024 * 1024;

describe('large batches', () => {
  it('round-trips batches of several MiB byte for byte', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const journal = client(server.port);
    await journal.createShard('s');
    const sent = [batch(3 * MiB + 1, 1, 7), batch(8 * MiB, 2, 1), batch(5.5 * MiB, 3, 2)];
    expect(await journal.append('s', sent)).toEqual({ baseOffset: 0, lastOffset: 9, logStartOffset: 0 });
    const alone = batch(6 * MiB - 3, 4);
    expect(await journal.append('s', [alone])).toEqual({ baseOffset: 10, lastOffset: 10, logStartOffset: 0 });

    const expected = [...sent, alone];
    const stored = await readAll(journal, 's');
    expect(stored.map((s) => [s.baseOffset, s.recordCount, s.maxTimestamp])).toEqual([
      [0, 7, 1],
      [7, 1, 2],
      [8, 2, 3],
      [10, 1, 4],
    ]);
    stored.forEach((s, i) => {
      expect(s.data).toBeInstanceOf(Uint8Array);
      expect(s.data.byteLength).toBe(expected[i]!.data.byteLength);
      expect(sha(s.data)).toBe(sha(expected[i]!.data));
    });
    // One read with room for everything, and one that returns the 8 MiB batch alone.
    const all = await journal.read('s', 0, { maxBytes: 64 * MiB });
    expect(all.batches.map((b) => sha(b.data))).toEqual(expected.map((b) => sha(b.data)));
    const middle = await journal.read('s', 7, { maxBytes: 1 });
    expect(middle.batches).toHaveLength(1);
    expect(sha(middle.batches[0]!.data)).toBe(sha(sent[1]!.data));
  });

  it('refuses a request above the frame limit with TOO_LARGE and stores nothing', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine, { maxFrameBytes: MiB });
    const journal = client(server.port, { maxFrameBytes: MiB });
    await journal.createShard('s');
    const error = await rejectionOf(journal.append('s', [batch(2 * MiB)]));
    expect(isRobustMQError(error, ErrorCode.TooLarge), String(error)).toBe(true);
    expect((await journal.shardInfo('s')).nextOffset).toBe(0);
  });

  it('keeps read replies under the frame limit, returning fewer batches', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine, { maxFrameBytes: MiB });
    const journal = client(server.port, { maxFrameBytes: MiB });
    await journal.createShard('s');
    const sent = Array.from({ length: 40 }, (_, i) => batch(64 * 1024, i));
    for (const b of sent) await journal.append('s', [b]);
    const { batches, nextOffset } = await journal.read('s', 0, { maxBytes: 64 * MiB });
    expect(nextOffset).toBe(40);
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThan(16);
    expect(batches.map((b) => b.baseOffset)).toEqual(batches.map((_, i) => i));
    const stored = await readAll(journal, 's');
    expect(stored.map((s) => sha(s.data))).toEqual(sent.map((b) => sha(b.data)));
  });
});
