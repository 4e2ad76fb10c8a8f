import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basesOf, localLogs, prefixFor, recordingMetrics, sha, useEngines } from './helpers.js';
import { BUCKET, LocalS3 } from './local-s3.js';
import { readAll } from '@robustmq/storage-conformance';

const FIXTURE = fileURLToPath(new URL('./fixtures/tiered-writer.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
/** Rounds of start, append, kill -9, verify. More with TIERED_CRASH_ROUNDS=n. */
const ROUNDS = Number(process.env.TIERED_CRASH_ROUNDS ?? 5);
const SHARDS = { 'crash/a': 'crash%2Fa', 'crash-b': 'crash-b' } as const;

let s3: LocalS3;
beforeAll(async () => {
  s3 = await LocalS3.start();
});
afterAll(async () => {
  await s3.stop();
});
const { tempDir, open } = useEngines(() => s3);

/** Starts the writer, lets it append for `runMs` after its first acks, kills it with SIGKILL. */
async function runAndKill(dir: string, runMs: number): Promise<{ lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, [FIXTURE, dir, s3.endpoint, BUCKET, prefixFor(dir)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const started = Date.now();
  while (stdout.split('\n').length < 3 && child.exitCode === null && Date.now() - started < 15_000) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, runMs));
  child.kill('SIGKILL');
  await exited;
  // A line cut off by the kill has no newline yet: it was not printed, so it does not count.
  return { lines: stdout.split('\n').slice(0, -1), stderr };
}

describe('tiered storage crash safety', () => {
  it(
    `keeps every acknowledged append across ${ROUNDS} kill -9s during uploads and offloads`,
    { timeout: 30_000 + ROUNDS * 15_000 },
    async () => {
      expect(existsSync(DIST), 'the crash test runs the built package: npm run build first').toBe(true);
      const dir = await tempDir();
      const acked = new Map<string, Map<number, { recordCount: number; sha: string }>>();
      let total = 0;
      let resumed = 0;
      let uploaded = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const { lines, stderr } = await runAndKill(dir, randomInt(200, 1500));
        const acks = lines.filter((l) => l !== 'ready');
        expect(acks.length, `round ${round} appended nothing; stderr: ${stderr}`).toBeGreaterThan(0);
        for (const line of acks) {
          const [shard, offset, count, digest] = line.split(' ');
          const byOffset = acked.get(shard!) ?? new Map<number, { recordCount: number; sha: string }>();
          byOffset.set(Number(offset), { recordCount: Number(count), sha: digest! });
          acked.set(shard!, byOffset);
          total++;
        }

        // Restart: every acknowledged batch reads back byte-identical, from disk or the bucket;
        // tiering picks up where the killed process left off.
        const metrics = recordingMetrics();
        const engine = await open(dir, { localRetentionMs: 0, metrics });
        await engine.tierNow();
        resumed += metrics.count('robustmq_tiering_offloaded_segments_total');
        uploaded += metrics.count('robustmq_tiering_uploaded_segments_total');
        for (const [shard, shardDir] of Object.entries(SHARDS)) {
          const stored = new Map((await readAll(engine, shard)).map((b) => [b.baseOffset, b]));
          for (const [offset, ack] of acked.get(shard) ?? []) {
            const batch = stored.get(offset);
            expect(batch, `${shard} batch at ${offset} (round ${round})`).toBeDefined();
            expect(batch!.recordCount).toBe(ack.recordCount);
            expect(sha(batch!.data), `${shard} batch at ${offset} (round ${round})`).toBe(ack.sha);
          }
          // One object per sealed segment, each offloaded; only the active segment's log is local.
          const sealed = await engine.journal.sealedSegments(shard);
          expect(sealed.every((s) => s.offloaded)).toBe(true);
          const keys = await s3.keys(`${prefixFor(dir)}shards/${shard}/`);
          expect(basesOf(keys)).toEqual(sealed.map((s) => s.baseOffset));
          expect(await localLogs(dir, shardDir)).toHaveLength(1);
        }
        await engine.close();
      }
      // The kills left tiering work behind (sealed segments not yet uploaded or offloaded).
      expect(resumed).toBeGreaterThan(0);
      console.log(
        `tiered crash test: ${ROUNDS} kill -9 rounds, ${total} acknowledged batches verified, ${resumed} segments offloaded and ${uploaded} uploaded after restarts`,
      );
    },
  );
});
