import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ErrorCode, isRobustMQError, silentLogger, type RecordBatch } from '@robustmq/core';
import journal from '../src/index.js';
import {
  CountingMetrics,
  RecordingLogger,
  batch,
  open,
  readAll,
  segmentLogs,
  sha,
  shardDir,
  tempDir,
} from './helpers.js';

describe('journal engine', () => {
  it('appends and reads back byte for byte, from the middle of a batch too', async () => {
    const engine = await open(await tempDir());
    await engine.createShard('orders');
    const first = [batch(100, 10, 3), batch(200, 20, 2)];
    const second = [batch(50, 30, 1)];
    expect(await engine.append('orders', first)).toEqual({ baseOffset: 0, lastOffset: 4, logStartOffset: 0 });
    expect(await engine.append('orders', second)).toEqual({
      baseOffset: 5,
      lastOffset: 5,
      logStartOffset: 0,
    });

    const all = await engine.read('orders', 0, { maxBytes: 1 << 20 });
    expect(all.nextOffset).toBe(6);
    expect(all.batches.map((b) => [b.baseOffset, b.recordCount, b.maxTimestamp, sha(b.data)])).toEqual([
      [0, 3, 10, sha(first[0]!.data)],
      [3, 2, 20, sha(first[1]!.data)],
      [5, 1, 30, sha(second[0]!.data)],
    ]);
    const middle = await engine.read('orders', 4, { maxBytes: 1 });
    expect(middle.batches.map((b) => b.baseOffset)).toEqual([3]);
    expect((await engine.read('orders', 6, { maxBytes: 100 })).batches).toEqual([]);
  });

  it('answers ALREADY_EXISTS to a creation racing another only once the shard can be used', async () => {
    const engine = await open(await tempDir());
    const first = engine.createShard('racing');
    // The second creation comes while the first is still making the shard's files.
    const second = engine.createShard('racing').then(
      () => 'created',
      async (error: unknown) => {
        expect(isRobustMQError(error, ErrorCode.AlreadyExists)).toBe(true);
        return (await engine.shardInfo('racing')).name;
      },
    );
    await first;
    expect(await second).toBe('racing');
    expect(await engine.append('racing', [batch(10, 1, 1)])).toEqual({
      baseOffset: 0,
      lastOffset: 0,
      logStartOffset: 0,
    });

    // A creation while the name is being deleted makes a new, empty shard once the deletion is done.
    const deleting = engine.deleteShard('racing');
    const again = await engine.createShard('racing');
    await deleting;
    expect(again.nextOffset).toBe(0);
    expect((await engine.shardInfo('racing')).nextOffset).toBe(0);
    await engine.close();
  });

  it('rolls segments at segmentBytes and reads across them, also after reopening', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    await engine.createShard('a/b', { segmentBytes: 4096 });
    const written: RecordBatch[] = [];
    for (let i = 0; i < 60; i++) {
      const b = batch(300 + i, 1_000 + i, 1 + (i % 3));
      written.push(b);
      await engine.append('a/b', [b]);
    }
    const logs = await segmentLogs(dir, 'a/b');
    expect(logs.length).toBeGreaterThan(4);
    for (const log of logs.slice(0, -1)) expect((await stat(log)).size).toBeLessThanOrEqual(4096);

    const check = async () => {
      const back = await readAll(engine, 'a/b');
      expect(back.map((b) => sha(b.data))).toEqual(written.map((b) => sha(b.data)));
      let offset = 0;
      for (const b of back) {
        expect(b.baseOffset).toBe(offset);
        offset += b.recordCount;
      }
    };
    await check();
    await engine.close();
    engine = await open(dir);
    await check();
    expect(await engine.listShards()).toEqual(['a/b']);
  });

  it('keeps shard names apart that differ only in case or slashes', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    const names = ['Topic', 'topic', 'a/b', 'a%2Fb', 'a.b', '...x'].filter((n) => n !== 'a%2Fb');
    for (const name of names) {
      await engine.createShard(name);
      await engine.append(name, [{ recordCount: 1, maxTimestamp: 1, data: Buffer.from(name) }]);
    }
    expect(new Set(names.map((n) => shardDir(dir, n))).size).toBe(names.length);
    await engine.close();
    engine = await open(dir);
    expect(await engine.listShards()).toEqual([...names].sort());
    for (const name of names) {
      const { batches } = await engine.read(name, 0, { maxBytes: 100 });
      expect(Buffer.from(batches[0]!.data).toString()).toBe(name);
    }
  });

  it('persists shard config and updates to it', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    await engine.createShard('s', { retentionMs: null, retentionBytes: 1000, durability: 'fsync' });
    await engine.updateShardConfig('s', { maxBatchBytes: 2048 });
    await engine.close();
    engine = await open(dir);
    const info = await engine.shardInfo('s');
    expect(info.config).toMatchObject({
      retentionMs: null,
      retentionBytes: 1000,
      durability: 'fsync',
      maxBatchBytes: 2048,
    });
  });

  it('finds offsets by timestamp across segments with timestamps out of order', async () => {
    const dir = await tempDir();
    const engine = await open(dir, { indexIntervalBytes: 256 });
    await engine.createShard('t', { segmentBytes: 2048 });
    const stamps: number[] = [];
    for (let i = 0; i < 80; i++) stamps.push(1_000 + i * 10 + (i % 4 === 0 ? -25 : 0));
    for (const ts of stamps) await engine.append('t', [batch(60, ts, 2)]);
    const expected = (t: number) => {
      const i = stamps.findIndex((s) => s >= t);
      return i < 0 ? null : i * 2;
    };
    for (const t of [0, 990, 1_000, 1_005, 1_234, 1_400, 1_785, 1_790, 1_791, 5_000]) {
      expect(await engine.offsetForTimestamp('t', t)).toBe(expected(t));
    }
    await engine.deleteBefore('t', 21);
    expect(await engine.offsetForTimestamp('t', 0)).toBe(21);
  });

  it('deletes before an offset, drops whole segments and keeps the start across reopen', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    await engine.createShard('d', { segmentBytes: 1024 });
    for (let i = 0; i < 30; i++) await engine.append('d', [batch(200)]);
    const before = (await segmentLogs(dir, 'd')).length;
    expect(await engine.deleteBefore('d', 17)).toBe(17);
    expect((await segmentLogs(dir, 'd')).length).toBeLessThan(before);
    await expect(engine.read('d', 16, { maxBytes: 10 })).rejects.toMatchObject({
      code: ErrorCode.OffsetOutOfRange,
    });
    expect((await engine.read('d', 17, { maxBytes: 10 })).batches[0]!.baseOffset).toBe(17);
    expect(await engine.deleteBefore('d', 3)).toBe(17);
    await expect(engine.deleteBefore('d', 31)).rejects.toMatchObject({ code: ErrorCode.OffsetOutOfRange });
    await engine.close();
    engine = await open(dir);
    expect((await engine.shardInfo('d')).logStartOffset).toBe(17);
    expect(await engine.deleteBefore('d', 30)).toBe(30);
    expect((await engine.shardInfo('d')).nextOffset).toBe(30);
    expect((await engine.append('d', [batch(10)])).baseOffset).toBe(30);
  });

  it('drops sealed segments by time and by size', async () => {
    const dir = await tempDir();
    const engine = await open(dir);
    await engine.createShard('r', { segmentBytes: 1024, retentionMs: 1_000, retentionBytes: null });
    for (let i = 0; i < 20; i++) await engine.append('r', [batch(300, i < 10 ? 1_000 : 5_000)]);
    await engine.enforceRetention(1_500);
    expect((await engine.shardInfo('r')).logStartOffset).toBe(0);
    await engine.enforceRetention(5_000);
    // Whole segments only: the one holding batches 9..11 has a newer batch and stays.
    const afterTime = await engine.shardInfo('r');
    expect(afterTime.logStartOffset).toBeGreaterThan(0);
    expect(afterTime.logStartOffset).toBeLessThanOrEqual(10);
    expect((await readAll(engine, 'r')).length).toBe(20 - afterTime.logStartOffset);
    await engine.enforceRetention(10_000);
    const expired = await engine.shardInfo('r');
    expect(expired).toMatchObject({ logStartOffset: 20, nextOffset: 20, sizeBytes: 0 });

    await engine.createShard('s', { segmentBytes: 1024, retentionMs: null, retentionBytes: 2_000 });
    for (let i = 0; i < 20; i++) await engine.append('s', [batch(300)]);
    const full = (await engine.shardInfo('s')).sizeBytes;
    await engine.enforceRetention(Date.now());
    const trimmed = await engine.shardInfo('s');
    expect(trimmed.sizeBytes).toBeLessThan(full);
    expect(trimmed.sizeBytes).toBeLessThanOrEqual(2_000 + 1024);
    expect(trimmed.logStartOffset).toBeGreaterThan(0);
    expect((await readAll(engine, 's')).length).toBe(20 - trimmed.logStartOffset);
  });

  it('wakes waiters on data and lets them time out', async () => {
    const engine = await open(await tempDir());
    await engine.createShard('w');
    const waiting = engine.waitForData('w', 0, 60_000);
    await engine.append('w', [batch(10)]);
    await waiting;
    await engine.waitForData('w', 0, 60_000);
    await engine.waitForData('w', 5, 5);
    expect((await engine.shardInfo('w')).nextOffset).toBe(1);
  });

  it('shares one fsync among concurrent group-commit appends and fsyncs each append under fsync', async () => {
    const metrics = new CountingMetrics();
    const engine = await open(await tempDir(), { metrics, groupCommitMs: 5 });
    await engine.createShard('g');
    await Promise.all(Array.from({ length: 50 }, () => engine.append('g', [batch(100)])));
    const groupSyncs = metrics.total('robustmq_journal_fsyncs_total');
    // Appends made together are written together and share one fsync.
    expect(groupSyncs).toBeGreaterThan(0);
    expect(groupSyncs).toBeLessThanOrEqual(2);

    await engine.createShard('f', { durability: 'fsync' });
    for (let i = 0; i < 5; i++) await engine.append('f', [batch(100)]);
    expect(metrics.total('robustmq_journal_fsyncs_total') - groupSyncs).toBe(5);

    await engine.createShard('n', { durability: 'none' });
    const before = metrics.total('robustmq_journal_fsyncs_total');
    for (let i = 0; i < 5; i++) await engine.append('n', [batch(100)]);
    expect(metrics.total('robustmq_journal_fsyncs_total')).toBe(before);
    expect((await readAll(engine, 'n')).length).toBe(5);
  });

  it('starts a group fsync early once group_commit_bytes are waiting', async () => {
    const metrics = new CountingMetrics();
    const engine = await open(await tempDir(), { metrics, groupCommitMs: 60_000, groupCommitBytes: 100 });
    await engine.createShard('g');
    // Syncs are a minute apart unless 100 bytes wait: these appends would hang without the byte limit.
    for (let i = 0; i < 3; i++) await engine.append('g', [batch(200)]);
    expect(metrics.total('robustmq_journal_fsyncs_total')).toBe(3);
  });

  it('acknowledges a group-commit append only with its fsync, and hides it until then', async () => {
    const metrics = new CountingMetrics();
    const engine = await open(await tempDir(), { metrics, groupCommitMs: 60_000, groupCommitBytes: 1 << 30 });
    await engine.createShard('g');
    await engine.append('g', [batch(10)]);
    // The next fsync may not start for a minute: this append is written but not yet durable.
    let acknowledged = false;
    const pending = engine.append('g', [batch(10)]).then((r) => {
      acknowledged = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(acknowledged).toBe(false);
    expect((await engine.shardInfo('g')).nextOffset).toBe(1);
    expect((await engine.read('g', 1, { maxBytes: 100 })).batches).toEqual([]);
    // close() flushes: the fsync happens and the append is acknowledged.
    await engine.close();
    expect(await pending).toEqual({ baseOffset: 1, lastOffset: 1, logStartOffset: 0 });
    expect(metrics.total('robustmq_journal_fsyncs_total')).toBe(2);
  });

  it('counts an append written and waiting for its group fsync when checking an expected offset', async () => {
    const engine = await open(await tempDir(), { groupCommitMs: 60_000, groupCommitBytes: 1 << 30 });
    await engine.createShard('g');
    await engine.append('g', [batch(10)]);
    // The next fsync may not start for a minute: this append is written but not yet durable.
    const waiting = engine.append('g', [batch(10, 1_000, 2)]);
    await new Promise((r) => setTimeout(r, 50));
    expect((await engine.shardInfo('g')).nextOffset).toBe(1);
    await expect(engine.append('g', [batch(10)], { expectedOffset: 1 })).rejects.toMatchObject({
      code: ErrorCode.Conflict,
    });
    const following = engine.append('g', [batch(10)], { expectedOffset: 3 });
    await engine.close();
    expect((await waiting).baseOffset).toBe(1);
    expect((await following).baseOffset).toBe(3);
  });

  it.each([
    ['none', { durability: 'none' }, {}],
    ['fsync', { durability: 'fsync' }, {}],
    ['group-commit, durable writes', { durability: 'group-commit' }, {}],
    ['group-commit, group fsyncs', { durability: 'group-commit' }, { groupCommitMs: 5 }],
  ] as const)(
    'refuses only the conditional appends that miss their offset, across runs and rolls (%s)',
    async (_name, config, options) => {
      const dir = await tempDir();
      const engine = await open(dir, options);
      await engine.createShard('c', { ...config, segmentBytes: 2048 });
      const appends: { data: RecordBatch; expectedOffset?: number; baseOffset: number | null }[] = [];
      let next = 0;
      for (let i = 0; i < 90; i++) {
        const data = batch(60 + (i % 5) * 40, i, 1 + (i % 3));
        if (i % 7 === 0) {
          appends.push({ data, expectedOffset: next + 1, baseOffset: null });
        } else {
          appends.push({ data, ...(i % 2 === 0 ? { expectedOffset: next } : {}), baseOffset: next });
          next += data.recordCount;
        }
      }
      const outcomes = await Promise.allSettled(
        appends.map(({ data, expectedOffset }) =>
          engine.append('c', [data], expectedOffset === undefined ? undefined : { expectedOffset }),
        ),
      );
      outcomes.forEach((outcome, i) => {
        const { baseOffset } = appends[i]!;
        if (baseOffset === null) {
          expect(outcome.status, `append ${i}`).toBe('rejected');
          if (outcome.status === 'rejected') {
            expect(isRobustMQError(outcome.reason, ErrorCode.Conflict), `append ${i}`).toBe(true);
          }
        } else {
          expect(
            outcome.status === 'fulfilled' ? outcome.value.baseOffset : outcome.reason,
            `append ${i}`,
          ).toBe(baseOffset);
        }
      });
      const stored = appends.filter((a) => a.baseOffset !== null);
      expect((await readAll(engine, 'c')).map((b) => [b.baseOffset, sha(b.data)])).toEqual(
        stored.map((a) => [a.baseOffset, sha(a.data.data)]),
      );
      // Small segments, so that runs were cut by rolls as well as by refused appends.
      expect((await segmentLogs(dir, 'c')).length).toBeGreaterThan(1);
    },
  );

  it('keeps appends to one shard in order under concurrency', async () => {
    const engine = await open(await tempDir());
    await engine.createShard('c', { segmentBytes: 8192 });
    const data = Array.from({ length: 200 }, (_, i) => batch(50 + (i % 70), i, 1 + (i % 2)));
    const results = await Promise.all(data.map((b) => engine.append('c', [b])));
    const back = await readAll(engine, 'c');
    expect(back.length).toBe(200);
    for (const [i, r] of results.entries()) {
      const stored = back.find((b) => b.baseOffset === r.baseOffset)!;
      expect(sha(stored.data)).toBe(sha(data[i]!.data));
    }
  });

  it('rebuilds missing and stale indexes of sealed segments', async () => {
    const dir = await tempDir();
    let engine = await open(dir, { indexIntervalBytes: 512 });
    await engine.createShard('i', { segmentBytes: 4096 });
    for (let i = 0; i < 100; i++) await engine.append('i', [batch(200, 100 + i)]);
    const before = await readAll(engine, 'i');
    await engine.close();

    const files = (await readdir(shardDir(dir, 'i'))).sort();
    const indexes = files.filter((f) => f.endsWith('.index'));
    const times = files.filter((f) => f.endsWith('.timeindex'));
    await rm(join(shardDir(dir, 'i'), indexes[0]!));
    await writeFile(join(shardDir(dir, 'i'), indexes[1]!), Buffer.alloc(16));
    await writeFile(join(shardDir(dir, 'i'), times[2]!), Buffer.alloc(5));
    await writeFile(join(shardDir(dir, 'i'), indexes[3]!), Buffer.from([0, 0, 0, 9, 0, 0, 1, 0]));

    const logger = new RecordingLogger();
    engine = await open(dir, { indexIntervalBytes: 512, logger });
    expect(logger.count('rebuilt missing or stale segment indexes')).toBeGreaterThanOrEqual(3);
    expect((await readAll(engine, 'i')).map((b) => sha(b.data))).toEqual(before.map((b) => sha(b.data)));
    expect(await engine.offsetForTimestamp('i', 150)).toBe(50);
    expect((await engine.read('i', 77, { maxBytes: 1 })).batches[0]!.baseOffset).toBe(77);
    expect((await stat(join(shardDir(dir, 'i'), indexes[0]!))).size).toBeGreaterThan(0);
  });

  it('opens as the default export with the [storage] section and rejects bad settings by name', async () => {
    const dir = await tempDir();
    const options = { dataDir: dir, logger: silentLogger, metrics: new CountingMetrics() };
    const engine = await journal.open({
      ...options,
      config: { group_commit_ms: 0, group_commit_bytes: 4096, default_durability: 'fsync' },
    });
    expect(journal.name).toBe('journal');
    expect((await engine.createShard('x')).config.durability).toBe('fsync');
    await engine.close();

    for (const [config, setting] of [
      [{ group_commit_msec: 1 }, 'group_commit_msec'],
      [{ group_commit_ms: -1 }, 'group_commit_ms'],
      [{ group_commit_bytes: 'lots' }, 'group_commit_bytes'],
      [{ default_durability: 'sometimes' }, 'default_durability'],
      [{ default_segment_bytes: 0 }, 'default_segment_bytes'],
      [{ read_threads: -1 }, 'read_threads'],
      [{ max_open_files: -1 }, 'max_open_files'],
      [{ max_open_files: 1.5 }, 'max_open_files'],
    ] as const) {
      const error: unknown = await journal.open({ ...options, config }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).setting).toBe(setting);
    }
  });

  it('fails calls after close with CLOSED', async () => {
    const engine = await open(await tempDir());
    await engine.createShard('z');
    await engine.close();
    await engine.close();
    for (const call of [
      () => engine.append('z', [batch(1)]),
      () => engine.read('z', 0, { maxBytes: 1 }),
      () => engine.listShards(),
    ]) {
      const error = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(isRobustMQError(error, ErrorCode.Closed)).toBe(true);
    }
  });
});
