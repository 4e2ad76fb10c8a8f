import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { Entry } from '../src/index.js';
import { scanEntries } from '../src/disk-raft-storage.js';
import { confState, DiskRaftStorage } from '../src/index.js';
import { captureLogger, useTempDirs } from './helpers.js';

const entry = (term: number, index: number, data = ''): Entry => ({
  term,
  index,
  type: index % 5 === 0 ? 'conf' : 'normal',
  data: new TextEncoder().encode(data || `e${index}`),
});

const summary = (storage: DiskRaftStorage) => ({
  hardState: storage.hardState(),
  snapshot: storage.snapshot().metadata,
  firstIndex: storage.firstIndex(),
  lastIndex: storage.lastIndex(),
  entries:
    storage.lastIndex() >= storage.firstIndex()
      ? storage.entries(storage.firstIndex(), storage.lastIndex() + 1)
      : [],
});

describe('DiskRaftStorage', () => {
  const tempDir = useTempDirs();

  const reopen = async (storage: DiskRaftStorage, dir: string) => {
    await storage.close();
    return DiskRaftStorage.open({ dir });
  };

  it('starts empty and bootstraps a founding member', async () => {
    const dir = await tempDir();
    const storage = await DiskRaftStorage.open({ dir });
    expect(storage.isEmpty()).toBe(true);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(0)]).toEqual([1, 0, 0]);
    await storage.bootstrap(confState([1, 2, 3]), new Uint8Array([9]));
    const reopened = await reopen(storage, dir);
    expect(reopened.isEmpty()).toBe(false);
    expect(reopened.snapshot()).toEqual({
      metadata: { index: 1, term: 1, conf: confState([1, 2, 3]) },
      data: new Uint8Array([9]),
    });
    expect(reopened.hardState()).toEqual({ term: 1, vote: 0, commit: 1 });
    await expect(reopened.bootstrap(confState([1]), new Uint8Array())).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await reopened.close();
  });

  it('keeps entries, suffix replacements and the latest hard state across reopen', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(1, 3), entry(1, 4), entry(1, 5)]);
    await storage.setHardState({ term: 2, vote: 1, commit: 3 });
    await storage.append([entry(2, 4, 'replaced'), entry(2, 5), entry(2, 6)]);
    await storage.setHardState({ term: 2, vote: 1, commit: 5 }, false);
    await storage.setHardState({ term: 3, vote: 0, commit: 5 });
    const before = summary(storage);
    expect(before.entries.map((e) => e.term)).toEqual([1, 1, 2, 2, 2]);
    storage = await reopen(storage, dir);
    expect(summary(storage)).toEqual(before);
    await storage.append([entry(3, 7)]);
    storage = await reopen(storage, dir);
    expect(storage.lastIndex()).toBe(7);
    expect(storage.entries(4, 5)[0]!.data).toEqual(new TextEncoder().encode('replaced'));
    await storage.close();
  });

  it('snapshots, compacts and installs snapshots from the leader durably', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(2, 3), entry(2, 4)]);
    await storage.setHardState({ term: 2, vote: 1, commit: 3 });
    await storage.createSnapshot(3, confState([1, 2]), new Uint8Array([3]));
    await storage.compact(3);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(3)]).toEqual([4, 4, 2]);
    storage = await reopen(storage, dir);
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(3)]).toEqual([4, 4, 2]);
    expect(storage.snapshot().metadata.conf).toEqual(confState([1, 2]));
    expect(storage.snapshot().data).toEqual(new Uint8Array([3]));

    await storage.applySnapshot({
      metadata: { index: 10, term: 4, conf: confState([1, 2, 3]) },
      data: new Uint8Array([10]),
    });
    await storage.append([entry(4, 11)]);
    storage = await reopen(storage, dir);
    expect(summary(storage)).toMatchObject({
      firstIndex: 11,
      lastIndex: 11,
      snapshot: { index: 10, term: 4 },
    });
    expect(storage.term(10)).toBe(4);
    await storage.close();
  });

  it('cuts a torn last write at the last whole entry, with a warning', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(1, 3)]);
    const whole = await logDataEnd(dir);
    await storage.append([entry(1, 4, 'x'.repeat(100))]);
    await storage.close();
    // The last entry's write was torn halfway.
    await truncate(join(dir, 'raft.log'), whole + 50);
    const logger = captureLogger();
    storage = await DiskRaftStorage.open({ dir, logger });
    expect([storage.firstIndex(), storage.lastIndex()]).toEqual([2, 3]);
    expect(
      logger.lines.some((line) => line.level === 'warn' && /torn tail/.test(String(line.fields.reason))),
    ).toBe(true);
    expect((await stat(join(dir, 'raft.log'))).size).toBe(whole);
    // Appending after the cut continues the log cleanly.
    await storage.append([entry(2, 4)]);
    storage = await reopen(storage, dir);
    expect(storage.entries(2, 5).map((e) => e.term)).toEqual([1, 1, 2]);
    await storage.close();
  });

  it('cuts at a damaged entry and ignores garbage after the log', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(1, 3), entry(1, 4)]);
    await storage.close();
    const path = join(dir, 'raft.log');
    const bytes = await readFile(path);
    bytes[scanEntries(bytes).end - 2]! ^= 0xff; // damage the last entry's data
    await writeFile(path, bytes);
    await appendFile(path, Buffer.from([1, 2, 3]));
    storage = await DiskRaftStorage.open({ dir, logger: captureLogger() });
    expect(storage.lastIndex()).toBe(3);
    await storage.close();
  });

  it('grows the log file ahead of its entries and reads the zeros after them as its clean end', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(1, 3)]);
    const end = await logDataEnd(dir);
    expect((await stat(join(dir, 'raft.log'))).size).toBeGreaterThan(end);
    await storage.close();
    const logger = captureLogger();
    storage = await DiskRaftStorage.open({ dir, logger });
    expect(storage.entries(2, 4).map((e) => e.index)).toEqual([2, 3]);
    expect(logger.lines.filter((line) => line.level === 'warn')).toEqual([]);
    await storage.append([entry(1, 4)]);
    storage = await reopen(storage, dir);
    expect(storage.lastIndex()).toBe(4);
    await storage.close();
  });

  it('keeps the previous hard state when the newest slot is torn', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array()); // sequence 1, slot 1
    await storage.setHardState({ term: 5, vote: 1, commit: 1 }); // sequence 2, slot 0
    await storage.close();
    const path = join(dir, 'raft.state');
    const bytes = await readFile(path);
    bytes[20]! ^= 0xff; // tear slot 0
    await writeFile(path, bytes);
    storage = await DiskRaftStorage.open({ dir });
    expect(storage.hardState()).toEqual({ term: 1, vote: 0, commit: 1 });
    await storage.close();
  });

  it('writes commit-only changes unsynced without touching the last synced term and vote', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array()); // synced, slot 1
    await storage.setHardState({ term: 2, vote: 1, commit: 1 }); // synced, slot 0
    const path = join(dir, 'raft.state');
    const synced = (await readFile(path)).subarray(0, 36);
    await storage.setHardState({ term: 2, vote: 1, commit: 2 }, false);
    await storage.setHardState({ term: 2, vote: 1, commit: 3 }, false);
    await expect(storage.setHardState({ term: 3, vote: 0, commit: 3 }, false)).rejects.toMatchObject({
      code: ErrorCode.InvalidArgument,
    });
    await storage.close();
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 36)).toEqual(synced);
    bytes[36 + 20]! ^= 0xff; // a crash tore the unsynced slot
    await writeFile(path, bytes);
    storage = await DiskRaftStorage.open({ dir });
    expect(storage.hardState()).toEqual({ term: 2, vote: 1, commit: 1 });
    await storage.setHardState({ term: 3, vote: 2, commit: 1 }); // synced, into the torn slot
    storage = await reopen(storage, dir);
    expect(storage.hardState()).toEqual({ term: 3, vote: 2, commit: 1 });
    await storage.close();
  });

  it('syncs entries appended without sync in the background, and stores no commit beyond them', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(2, 2), entry(2, 3)]);
    await storage.setHardState({ term: 2, vote: 1, commit: 1 });
    await storage.append([entry(2, 4), entry(2, 5), entry(2, 6)], false);
    // Committed by the followers while this node's own copy may still be lost in a crash.
    await storage.setHardState({ term: 2, vote: 1, commit: 6 }, false);
    expect(storage.hardState().commit).toBe(6);
    storage = await reopen(storage, dir);
    expect(storage.hardState()).toEqual({ term: 2, vote: 1, commit: 3 });
    expect(storage.lastIndex()).toBe(6);
    await storage.append([entry(2, 7)], false);
    await storage.setHardState({ term: 2, vote: 1, commit: 7 }, false);
    // The sync also stores the commit index it held back.
    await storage.syncLog();
    storage = await reopen(storage, dir);
    expect(storage.hardState().commit).toBe(7);
    // A rewrite (here on compaction) leaves the whole log durable.
    await storage.append([entry(2, 8)], false);
    await storage.createSnapshot(7, confState([1]), new Uint8Array([1]));
    await storage.compact(7);
    await storage.setHardState({ term: 2, vote: 1, commit: 8 }, false);
    storage = await reopen(storage, dir);
    expect(storage.hardState().commit).toBe(8);
    await storage.close();
  });

  it('runs background syncs and the swap to a rewritten log one after another', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(2, 2), entry(2, 3), entry(2, 4)], false);
    await storage.setHardState({ term: 2, vote: 1, commit: 4 });
    const before = storage.syncLog();
    await storage.createSnapshot(3, confState([1]), new Uint8Array([3]));
    const compacting = storage.compact(3);
    const during = storage.syncLog();
    await Promise.all([before, compacting, during]);
    await storage.append([entry(2, 5)], false);
    await storage.syncLog();
    storage = await reopen(storage, dir);
    expect(summary(storage)).toMatchObject({ firstIndex: 4, lastIndex: 5 });
    await storage.close();
  });

  it('drops log entries that do not continue an installed snapshot', async () => {
    const dir = await tempDir();
    let storage = await DiskRaftStorage.open({ dir });
    await storage.bootstrap(confState([1]), new Uint8Array());
    await storage.append([entry(1, 2), entry(1, 3), entry(1, 4)]);
    const staleLog = await readFile(join(dir, 'raft.log'));
    await storage.applySnapshot({
      metadata: { index: 3, term: 2, conf: confState([1]) },
      data: new Uint8Array(),
    });
    await storage.close();
    // A crash after the snapshot was written but before the log was rewritten.
    await writeFile(join(dir, 'raft.log'), staleLog);
    storage = await DiskRaftStorage.open({ dir, logger: captureLogger() });
    expect([storage.firstIndex(), storage.lastIndex(), storage.term(3)]).toEqual([4, 3, 2]);
    await storage.close();
  });
});

/** Where the entries in the log file end; zeros the log was grown by may follow. */
async function logDataEnd(dir: string): Promise<number> {
  return scanEntries(await readFile(join(dir, 'raft.log'))).end;
}
