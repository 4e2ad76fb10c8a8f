import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '@robustmq/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { openLocalMetaStore } from '../src/index.js';
import { WriteAheadLog } from '../src/wal.js';
import { captureLogger, decode, text, useTempDirs } from './helpers.js';

describe('LocalMetaStore', () => {
  const tempDir = useTempDirs();
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('applies a transaction atomically and refuses it whole on a conflict', async () => {
    const store = await openLocalMetaStore({ dir: await tempDir() });
    const first = await store.put('/c', text('old'));
    const results = await store.txn([
      { type: 'put', key: '/a', value: text('1'), ifRevision: 0 },
      { type: 'put', key: '/b', value: text('2') },
      { type: 'delete', key: '/c', ifRevision: first },
    ]);
    expect(results).toEqual([
      { type: 'put', revision: 2 },
      { type: 'put', revision: 2 },
      { type: 'delete', deleted: true },
    ]);
    await expect(
      store.txn([
        { type: 'put', key: '/a', value: text('changed') },
        { type: 'put', key: '/b', value: text('changed'), ifRevision: 1 },
      ]),
    ).rejects.toMatchObject({ code: ErrorCode.Conflict });
    expect(decode((await store.get('/a'))!.value)).toBe('1');
    expect(await store.revision()).toBe(2);
    await store.close();
  });

  it('shares one fsync among writes that arrive together (group commit)', async () => {
    const append = vi.spyOn(WriteAheadLog.prototype, 'append');
    const store = await openLocalMetaStore({ dir: await tempDir() });
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.put(`/g/${i}`, text(String(i)))));
    expect(append.mock.calls.length).toBeLessThan(10);
    expect(append.mock.calls.reduce((sum, call) => sum + call[1].length, 0)).toBe(200);
    expect(await store.list('/g/')).toHaveLength(200);
    await store.close();
  });

  it('snapshots and empties the log as it grows, and recovers from snapshot plus log', async () => {
    const dir = await tempDir();
    const logger = captureLogger();
    const store = await openLocalMetaStore({ dir, logger, snapshotLogBytes: 4096 });
    for (let i = 0; i < 300; i++) await store.put(`/s/${i % 40}`, text(`value-${i}`));
    await store.delete('/s/0');
    const entries = await store.list('');
    const revision = await store.revision();
    await store.close();

    expect(
      logger.lines.filter((line) => line.message.startsWith('meta snapshot written')).length,
    ).toBeGreaterThanOrEqual(2);
    expect((await stat(join(dir, 'meta.log'))).size).toBeLessThan(4096);
    expect((await readdir(dir)).sort()).toEqual(['meta.log', 'meta.snapshot']);

    const reopened = await openLocalMetaStore({ dir, snapshotLogBytes: 4096 });
    expect(await reopened.list('')).toEqual(entries);
    expect(await reopened.revision()).toBe(revision);
    await reopened.close();
  });

  it('removes a snapshot temp file left by a crash and opens from the good snapshot', async () => {
    const dir = await tempDir();
    const store = await openLocalMetaStore({ dir, snapshotLogBytes: 256 });
    for (let i = 0; i < 20; i++) await store.put(`/k/${i}`, text(String(i)));
    await store.close();
    await writeFile(join(dir, 'meta.snapshot.tmp'), 'half a snapshot');
    const reopened = await openLocalMetaStore({ dir });
    expect(await reopened.list('/k/')).toHaveLength(20);
    expect(await readdir(dir)).not.toContain('meta.snapshot.tmp');
    await reopened.close();
  });

  it('replays watch history from the log after reopen, back to the last snapshot', async () => {
    const dir = await tempDir();
    const store = await openLocalMetaStore({ dir });
    for (let i = 1; i <= 5; i++) await store.put('/k', text(String(i)));
    await store.close();

    const reopened = await openLocalMetaStore({ dir });
    const events: number[] = [];
    const watch = reopened.watch('/k', (event) => events.push(event.revision), { afterRevision: 2 });
    await vi.waitFor(() => expect(events).toEqual([3, 4, 5]));
    watch.close();
    await reopened.close();

    const snapshotting = await openLocalMetaStore({ dir, snapshotLogBytes: 1 });
    await snapshotting.put('/k', text('6'));
    expect(() => snapshotting.watch('/k', () => {}, { afterRevision: 2 })).not.toThrow();
    await snapshotting.close();
    const afterSnapshot = await openLocalMetaStore({ dir });
    expect(() => afterSnapshot.watch('/k', () => {}, { afterRevision: 5 })).toThrow(
      expect.objectContaining({ code: ErrorCode.NotFound }) as Error,
    );
    const live: number[] = [];
    const liveWatch = afterSnapshot.watch('/k', (event) => live.push(event.revision), { afterRevision: 6 });
    await afterSnapshot.put('/k', text('7'));
    await vi.waitFor(() => expect(live).toEqual([7]));
    liveWatch.close();
    await afterSnapshot.close();
  });

  it('answers NOT_FOUND for a watch resuming from compacted history', async () => {
    const store = await openLocalMetaStore({ dir: await tempDir(), historyLimit: 3 });
    for (let i = 0; i < 6; i++) await store.put(`/k/${i}`, text(String(i)));
    expect(() => store.watch('/k/', () => {}, { afterRevision: 2 })).toThrow(
      expect.objectContaining({ code: ErrorCode.NotFound }) as Error,
    );
    const events: number[] = [];
    const watch = store.watch('/k/', (event) => events.push(event.revision), { afterRevision: 3 });
    await vi.waitFor(() => expect(events).toEqual([4, 5, 6]));
    watch.close();
    await store.close();
  });

  it('logs a listener that throws', async () => {
    const logger = captureLogger();
    const store = await openLocalMetaStore({ dir: await tempDir(), logger });
    const watch = store.watch('/', () => {
      throw new Error('listener failure');
    });
    await store.put('/k', text('v'));
    await vi.waitFor(() =>
      expect(logger.lines.some((line) => line.message === 'meta watch listener threw')).toBe(true),
    );
    watch.close();
    await store.close();
  });

  it('refuses writes after a failed log write, but keeps serving reads', async () => {
    const logger = captureLogger();
    const store = await openLocalMetaStore({ dir: await tempDir(), logger });
    await store.put('/k', text('kept'));
    vi.spyOn(WriteAheadLog.prototype, 'append').mockRejectedValueOnce(new Error('EIO: simulated'));
    await expect(store.put('/k', text('lost'))).rejects.toMatchObject({ code: ErrorCode.Unavailable });
    await expect(store.put('/other', text('x'))).rejects.toMatchObject({ code: ErrorCode.Unavailable });
    expect(decode((await store.get('/k'))!.value)).toBe('kept');
    expect(await store.list('')).toHaveLength(1);
    expect(logger.lines.some((line) => line.level === 'error')).toBe(true);
    await store.close();
  });

  it('opens nothing when the snapshot is damaged: CORRUPT rather than a wrong state', async () => {
    const dir = await tempDir();
    const store = await openLocalMetaStore({ dir, snapshotLogBytes: 1 });
    await store.put('/k', text('v'));
    await store.close();
    const path = join(dir, 'meta.snapshot');
    const bytes = await readFile(path);
    bytes[bytes.length - 2]! ^= 0x01;
    await writeFile(path, bytes);
    await expect(openLocalMetaStore({ dir })).rejects.toMatchObject({ code: ErrorCode.Corrupt });
  });

  it('refuses a zero snapshotLogBytes', async () => {
    await expect(openLocalMetaStore({ dir: await tempDir(), snapshotLogBytes: 0 })).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
  });

  it('treats a second close as done', async () => {
    const store = await openLocalMetaStore({ dir: await tempDir() });
    await store.close();
    await expect(store.close()).resolves.toBeUndefined();
  });
});
