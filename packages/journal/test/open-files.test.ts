import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { DurabilityPolicy } from '@robustmq/core';
import { batch, open, readAll, sha, tempDir } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/many-shards.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
const POLICIES: DurabilityPolicy[] = ['fsync', 'group-commit', 'none'];

/**
 * Handles of log files under `dir` this process holds open now (Linux): all of them, or only
 * those open for writing (the appending and durable-write handles, not the kept read handles).
 */
async function openLogs(dir: string, which: 'all' | 'writing' = 'writing'): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (!link.startsWith(dir) || !link.endsWith('.log')) continue;
    if (which === 'all') {
      count++;
      continue;
    }
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    const flags = Number.parseInt(/^flags:\s+(\d+)/m.exec(info)?.[1] ?? '0', 8);
    // The access mode: O_WRONLY (1) or O_RDWR (2).
    if ((flags & 3) !== 0) count++;
  }
  return count;
}

describe('open files with many shards', () => {
  it(
    'keeps at most max_open_files handles of active segments open, and serves every shard',
    { timeout: 120_000 },
    async () => {
      const dir = await tempDir();
      const shards = Array.from({ length: 300 }, (_, i) => `many/${i}`);
      let engine = await open(dir, { maxOpenFiles: 16, readThreads: 0 });
      for (const [i, shard] of shards.entries()) {
        await engine.createShard(shard, { durability: POLICIES[i % 3]!, retentionMs: null });
      }
      const written = new Map<string, string[]>(shards.map((s) => [s, []]));
      const appendToAll = async (together: boolean) => {
        const one = async (shard: string) => {
          const b = batch(200);
          await engine.append(shard, [b]);
          written.get(shard)!.push(sha(b.data));
        };
        if (together) await Promise.all(shards.map(one));
        else for (const shard of shards) await one(shard);
      };

      // One after the other, then all at once: every shard has an append waiting for a handle.
      // (Counted between the calls: while handles are opened and closed, a count taken one file at a
      // time may see a closed handle's successor too.)
      await appendToAll(false);
      expect(await openLogs(dir)).toBeLessThanOrEqual(16);
      await appendToAll(true);
      expect(await openLogs(dir)).toBeLessThanOrEqual(16);
      const readBack = async () => {
        for (const shard of shards) {
          expect((await readAll(engine, shard)).map((b) => sha(b.data))).toEqual(written.get(shard));
        }
      };
      await readBack();
      expect(await openLogs(dir)).toBeLessThanOrEqual(16);
      await engine.close();
      expect(await openLogs(dir, 'all')).toBe(0);

      // Opening reads each shard's last segment (through the kept read handles, at most 64) but
      // opens no handle for writing until a shard is used.
      engine = await open(dir, { maxOpenFiles: 16, readThreads: 0 });
      expect(await openLogs(dir)).toBe(0);
      expect(await openLogs(dir, 'all')).toBeLessThanOrEqual(64);
      await appendToAll(true);
      await readBack();
      expect(await openLogs(dir)).toBeLessThanOrEqual(16);
      expect(await openLogs(dir, 'all')).toBeLessThanOrEqual(16 + 64);
    },
  );

  it('creates, fills and reopens 1,500 shards in a process allowed 256 open files', async () => {
    expect(existsSync(DIST), 'the test runs the built package: npm run build first').toBe(true);
    const dir = await tempDir();
    const run = async () => {
      // `ulimit -n` lowers the hard limit too, so node cannot raise it again at start-up.
      const { stdout } = await promisify(execFile)(
        'sh',
        ['-c', 'ulimit -n 256 && exec "$@"', 'sh', process.execPath, FIXTURE, dir, '1500'],
        { timeout: 120_000 },
      );
      return JSON.parse(stdout.trim()) as { shards: number; records: number };
    };
    expect(await run()).toEqual({ shards: 1500, records: 1500 });
    // Every shard is opened at start now, and gets a second record.
    expect(await run()).toEqual({ shards: 1500, records: 3000 });
  }, 300_000);
});
