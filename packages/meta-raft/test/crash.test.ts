import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { openLocalMetaStore } from '../src/index.js';
import { captureLogger, decode, useTempDirs } from './helpers.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const writerScript = join(packageDir, 'test/fixtures/crash-writer.mjs');

interface Ack {
  run: number;
  seq: number;
  revision: number;
}

/** Runs the writer until it has printed `acks` acknowledgements, then kills it with SIGKILL. */
function runAndKill(dir: string, run: number, acks: number): Promise<Map<string, Ack>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writerScript, dir, String(run)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acknowledged = new Map<string, Ack>();
    let count = 0;
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') continue;
        const [key, runText, seqText, revisionText] = line.split(' ');
        acknowledged.set(key!, {
          run: Number(runText),
          seq: Number(seqText),
          revision: Number(revisionText),
        });
        if (++count === acks) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(acknowledged);
      else reject(new Error(`writer exited with ${code ?? signal}: ${stderr}`));
    });
  });
}

describe('LocalMetaStore under kill -9', () => {
  const tempDir = useTempDirs();

  beforeAll(() => {
    // The writer runs as plain Node on the built package, so build it (a no-op when up to date).
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-b'], { cwd: packageDir, stdio: 'inherit' });
  }, 120_000);

  it('keeps every acknowledged write across repeated kills', async () => {
    const dir = await tempDir();
    const latest = new Map<string, Ack>();
    let warnings = 0;
    for (let run = 0; run < 4; run++) {
      const acks = await runAndKill(dir, run, 400 + run * 250);
      expect(acks.size).toBeGreaterThan(0);
      for (const [key, ack] of acks) latest.set(key, ack);

      const logger = captureLogger();
      const store = await openLocalMetaStore({ dir, logger });
      warnings += logger.lines.filter((line) => line.level === 'warn').length;
      let maxRevision = 0;
      for (const [key, ack] of latest) {
        const entry = await store.get(key);
        expect(entry, `acknowledged ${key} missing after run ${run}`).not.toBeNull();
        const [storedRun, storedSeq] = decode(entry!.value).split(':').map(Number);
        // The stored value is the acknowledged one or a later write to the same key, never older.
        expect(storedRun! * 1e9 + storedSeq!).toBeGreaterThanOrEqual(ack.run * 1e9 + ack.seq);
        expect(storedRun).toBeLessThanOrEqual(run);
        expect(entry!.modRevision).toBeGreaterThanOrEqual(ack.revision);
        maxRevision = Math.max(maxRevision, ack.revision);
      }
      expect(await store.revision()).toBeGreaterThanOrEqual(maxRevision);
      await store.close();
    }
    // Torn tails are likely but not certain under kill -9; the count is for the log, not a condition.
    console.log(`crash test: ${latest.size} keys checked, ${warnings} log cuts on recovery`);
  }, 120_000);
});
