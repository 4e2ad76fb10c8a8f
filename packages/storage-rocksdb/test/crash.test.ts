import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expectContiguous, expectStoredBatch, makeBatch, readAll } from '@robustmq/storage-conformance';
import { beforeAll, describe, expect, it } from 'vitest';
import { RocksDbStorageEngine } from '../src/index.js';
import { seededRandom, useTempDirs } from './helpers.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const appenderScript = join(packageDir, 'test/fixtures/crash-appender.mjs');
const SHARDS = ['crash/group', 'crash/fsync', 'crash/none'];

interface Ack {
  shard: string;
  baseOffset: number;
  seed: number;
  recordCount: number;
  bytes: number;
  timestamp: number;
}

interface Run {
  acks: Ack[];
  /** The highest acknowledged log start per trimmed shard. */
  trims: Map<string, number>;
}

/** Runs the appender until it has printed `count` acknowledgements, then kills it with SIGKILL. */
function runAndKill(dir: string, run: number, count: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [appenderScript, dir, String(run)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const result: Run = { acks: [], trims: new Map() };
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [kind, shard, ...numbers] = line.split(' ');
        const values = numbers.map(Number);
        if (kind === 'trim') result.trims.set(shard!, Math.max(result.trims.get(shard!) ?? 0, values[0]!));
        if (kind !== 'ack') continue;
        const [baseOffset, seed, recordCount, bytes, timestamp] = values as [
          number,
          number,
          number,
          number,
          number,
        ];
        result.acks.push({ shard: shard!, baseOffset, seed, recordCount, bytes, timestamp });
        if (result.acks.length === count) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(result);
      else reject(new Error(`appender exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

describe('RocksDbStorageEngine under kill -9', () => {
  const tempDir = useTempDirs();

  beforeAll(() => {
    // The appender runs as plain Node on the built package, so build it (a no-op when up to date).
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-b'], { cwd: packageDir, stdio: 'inherit' });
  }, 120_000);

  it('reads back every acknowledged batch byte for byte after each kill', async () => {
    const dir = await tempDir();
    const random = seededRandom(20240611);
    const acked: Ack[] = [];
    const trimmedTo = new Map<string, number>();
    let checked = 0;
    for (let run = 0; run < 6; run++) {
      const killAfter = 100 + Math.floor(random() * 500);
      const { acks, trims } = await runAndKill(dir, run, killAfter);
      // Lines already in the pipe when the kill went out count too: they were acknowledged.
      expect(acks.length).toBeGreaterThanOrEqual(killAfter);
      acked.push(...acks);
      for (const [shard, start] of trims) trimmedTo.set(shard, Math.max(trimmedTo.get(shard) ?? 0, start));

      const engine = await RocksDbStorageEngine.open({ dataDir: dir });
      expect([...(await engine.listShards())].sort()).toEqual([...SHARDS].sort());
      for (const shard of SHARDS) {
        const info = await engine.shardInfo(shard);
        const mine = acked.filter((ack) => ack.shard === shard);
        const end = Math.max(...mine.map((ack) => ack.baseOffset + ack.recordCount));
        expect(info.nextOffset, `next offset of ${shard} after run ${run}`).toBeGreaterThanOrEqual(end);
        expect(info.logStartOffset).toBeGreaterThanOrEqual(trimmedTo.get(shard) ?? 0);
        // Everything stored reads back whole and without gaps, acknowledged or not.
        const stored = await readAll(engine, shard);
        expectContiguous(stored);
        expect(stored.at(-1)!.baseOffset + stored.at(-1)!.recordCount).toBe(info.nextOffset);
        const byOffset = new Map(stored.map((batch) => [batch.baseOffset, batch]));
        for (const ack of mine) {
          if (ack.baseOffset + ack.recordCount <= info.logStartOffset) continue;
          const expected = makeBatch(ack.recordCount, ack.bytes, ack.timestamp, ack.seed);
          expectStoredBatch(byOffset.get(ack.baseOffset), expected, ack.baseOffset);
          checked++;
        }
      }
      await engine.close();
    }
    console.log(`crash test: ${acked.length} acknowledged appends over 6 kills, ${checked} batch checks`);
  }, 180_000);
});
