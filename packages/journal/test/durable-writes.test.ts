import { open as openFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode, type AppendResult } from '@robustmq/core';
import { batch, CountingMetrics, open, readAll, sha, tempDir } from './helpers.js';

/** The prototype every `FileHandle` shares, to make one of its writes fail. */
async function fileHandlePrototype(dir: string): Promise<FileHandle> {
  const probe = await openFile(join(dir, 'probe'), 'w');
  await probe.close();
  return Object.getPrototypeOf(probe) as FileHandle;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('journal durable writes', () => {
  it('acknowledges concurrent appends in order, each after its own synced write', async () => {
    const metrics = new CountingMetrics();
    const engine = await open(await tempDir(), { metrics });
    await engine.createShard('s', { segmentBytes: 64 * 1024 });
    const written = Array.from({ length: 300 }, (_, i) => batch(1000, 1_000 + i));
    const order: number[] = [];
    const results = await Promise.all(
      written.map((b) =>
        engine.append('s', [b]).then((r: AppendResult) => {
          order.push(r.baseOffset);
          return r;
        }),
      ),
    );
    // Acknowledged in offset order, though two writes may be under way at once.
    expect(order).toEqual([...order].sort((a, b) => a - b));
    const back = await readAll(engine, 's');
    for (const [i, r] of results.entries()) {
      expect(sha(back[r.baseOffset]!.data)).toBe(sha(written[i]!.data));
    }
    // Appends made together share writes: far fewer syncs than appends.
    const syncs = metrics.total('robustmq_journal_fsyncs_total');
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(300);
  });

  it('fails the shard when a durable write fails, keeping every acknowledged append', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', {});
    const acknowledged = Array.from({ length: 5 }, (_, i) => batch(100, 1_000 + i));
    for (const b of acknowledged) await engine.append('s', [b]);

    const eio = Object.assign(new Error('EIO: i/o error, writev'), { code: 'EIO' });
    vi.spyOn(await fileHandlePrototype(dir), 'writev').mockRejectedValueOnce(eio);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => engine.append('s', [batch(100, 2_000 + i)])),
    );
    vi.restoreAllMocks();
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    // Nothing unacknowledged is served, and the shard refuses appends until reopened.
    expect((await engine.shardInfo('s')).nextOffset).toBe(5);
    await expect(engine.append('s', [batch(100)])).rejects.toMatchObject({ code: ErrorCode.Internal });
    await engine.close();

    const reopened = await open(dir);
    const back = await readAll(reopened, 's');
    expect(back.map((b) => sha(b.data))).toEqual(acknowledged.map((b) => sha(b.data)));
    expect(await reopened.append('s', [batch(100)])).toEqual({
      baseOffset: 5,
      lastOffset: 5,
      logStartOffset: 0,
    });
  });

  it('checks an expected offset against appends whose durable write is still under way', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', {});
    await engine.append('s', [batch(100)]);

    const prototype = await fileHandlePrototype(dir);
    let writing!: () => void;
    const started = new Promise<void>((resolve) => (writing = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    vi.spyOn(prototype, 'writev').mockImplementationOnce(async function (
      this: FileHandle,
      ...args: Parameters<FileHandle['writev']>
    ) {
      writing();
      await held;
      // This implementation was for one call only: the handle's own writev does it.
      return this.writev(...args);
    });
    const underWay = engine.append('s', [batch(100, 1_000, 3)]);
    await started;
    // Not durable yet, so not visible: the shard's committed end is still 1.
    expect((await engine.shardInfo('s')).nextOffset).toBe(1);
    const stale = engine.append('s', [batch(100)], { expectedOffset: 1 });
    const following = engine.append('s', [batch(100)], { expectedOffset: 4 });
    await expect(stale).rejects.toMatchObject({ code: ErrorCode.Conflict });
    release();
    expect((await underWay).baseOffset).toBe(1);
    expect((await following).baseOffset).toBe(4);
    expect((await engine.shardInfo('s')).nextOffset).toBe(5);
  });

  it('syncs bytes written without a sync before writing durably after them', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('s', { durability: 'none' });
    const written = Array.from({ length: 10 }, (_, i) => batch(100, 1_000 + i));
    for (const b of written.slice(0, 5)) await engine.append('s', [b]);
    await engine.updateShardConfig('s', { durability: 'fsync' });
    const prototype = await fileHandlePrototype(dir);
    const datasync = vi.spyOn(prototype, 'datasync');
    for (const b of written.slice(5)) await engine.append('s', [b]);
    // The first durable append syncs the whole file (the unsynced appends before it too); the
    // later ones sync only themselves, in their writes.
    expect(datasync).toHaveBeenCalledTimes(1);
    const back = await readAll(engine, 's');
    expect(back.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
  });
});
