import { spawn } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, stat, truncate } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RecordingLogger, open, readAll, segmentLogs, sha, tempDir } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/crash-writer.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../dist/index.js', import.meta.url));
/** Rounds of start, append, kill -9, verify. More with JOURNAL_CRASH_ROUNDS=n. */
const ROUNDS = Number(process.env.JOURNAL_CRASH_ROUNDS ?? 6);

interface Ack {
  recordCount: number;
  sha: string;
}

/** Starts the writer, lets it append for a random while, kills it with SIGKILL; returns its acks. */
async function runAndKill(
  dir: string,
  runMs: number,
  options: Record<string, number>,
): Promise<{ lines: string[]; stderr: string }> {
  const child = spawn(process.execPath, [FIXTURE, dir, JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // Wait for the first acknowledged appends, then a random while longer.
  const started = Date.now();
  while (stdout.split('\n').length < 3 && child.exitCode === null && Date.now() - started < 15_000) {
    await new Promise((r) => setTimeout(r, 5));
  }
  await new Promise((r) => setTimeout(r, runMs));
  child.kill('SIGKILL');
  await exited;
  // A line cut off by the kill has no newline yet; it was not printed, so it does not count.
  const lines = stdout.split('\n').slice(0, -1);
  return { lines, stderr };
}

/** Damages the end of a shard's last segment as a failing disk might: cut short, or junk after it. */
async function damageTail(dir: string, shard: string, round: number): Promise<'cut' | 'junk'> {
  const last = (await segmentLogs(dir, shard)).at(-1)!;
  const size = (await stat(last)).size;
  if (round % 4 === 1 && size > 0) {
    await truncate(last, randomInt(0, size));
    return 'cut';
  }
  await appendFile(last, randomBytes(randomInt(1, 5000)));
  return 'junk';
}

describe('journal crash safety', () => {
  // Besides the defaults: with one log handle for both shards, the handles are closed and opened
  // again all the time, while durable writes (O_DSYNC) or group syncs (group_commit_ms > 0) run.
  it.each<{ name: string; options: Record<string, number> }>([
    { name: 'defaults', options: {} },
    { name: 'max_open_files = 1', options: { maxOpenFiles: 1 } },
    { name: 'max_open_files = 1, group_commit_ms = 1', options: { maxOpenFiles: 1, groupCommitMs: 1 } },
  ])(
    `keeps every acknowledged append across ${ROUNDS} kill -9s ($name)`,
    { timeout: 20_000 + ROUNDS * 10_000 },
    async ({ options }) => {
      expect(existsSync(DIST), 'the crash test runs the built package: npm run build first').toBe(true);
      const dir = await tempDir();
      const acked = new Map<string, Map<number, Ack>>();
      let total = 0;
      const logger = new RecordingLogger();

      for (let round = 0; round < ROUNDS; round++) {
        const runMs = 50 + Math.floor(Math.random() * 400);
        const { lines, stderr } = await runAndKill(dir, runMs, options);
        expect(lines[0], `writer failed to start: ${stderr}`).toBe('ready');
        expect(stderr).toBe('');
        for (const line of lines.slice(1)) {
          const [shard, offset, count, hash] = line.split(' ');
          const byOffset = acked.get(shard!) ?? new Map<number, Ack>();
          acked.set(shard!, byOffset);
          expect(byOffset.has(Number(offset)), `offset ${offset} of ${shard} acknowledged twice`).toBe(false);
          byOffset.set(Number(offset), { recordCount: Number(count), sha: hash! });
          total++;
        }

        // Every other round the tail of one shard is also cut short or has junk appended.
        const damaged = round % 2 === 1 ? 'crash-b' : null;
        const cut = damaged !== null && (await damageTail(dir, damaged, round)) === 'cut';

        const engine = await open(dir, { logger, ...options });
        for (const [shard, byOffset] of acked) {
          if (cut && shard === damaged) {
            // A cut loses what was cut and no more: batches from the new end on are forgotten.
            const { nextOffset } = await engine.shardInfo(shard);
            for (const offset of byOffset.keys()) if (offset >= nextOffset) byOffset.delete(offset);
          }
          // Reads check every checksum: a corrupt batch would fail here, never be returned.
          const stored = new Map((await readAll(engine, shard)).map((b) => [b.baseOffset, b]));
          for (const [offset, ack] of byOffset) {
            const batch = stored.get(offset);
            expect(
              batch,
              `round ${round} (killed after ${runMs} ms): ${shard} offset ${offset} lost`,
            ).toBeDefined();
            expect(batch!.recordCount).toBe(ack.recordCount);
            expect(sha(batch!.data), `${shard} offset ${offset} changed`).toBe(ack.sha);
          }
        }
        await engine.close();
      }
      expect(total).toBeGreaterThan(ROUNDS);
      const torn = logger.count('truncating torn or corrupt tail');
      console.log(
        `crash test: ${ROUNDS} kill -9 rounds, ${total} acknowledged batches verified, ${torn} torn tails cut`,
      );
    },
  );
});
