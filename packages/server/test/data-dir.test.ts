import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../src/data-dir.js';

describe('the data directory lock', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'robustmq-lock-'));
    dirs.push(dir);
    return dir;
  };

  it("takes over a lock naming this process's pid that an earlier process with that pid left", () => {
    // In a container the node is pid 1 after every restart, so a kill -9 leaves a LOCK with the
    // pid the next node gets.
    const dir = fresh();
    writeFileSync(join(dir, 'LOCK'), `${process.pid}\n`);
    const locked = lockDataDir(dir);
    expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(`${process.pid}\n`);
    locked.release();
  });

  it('refuses a second lock of a directory this process holds, and allows it once released', () => {
    const dir = fresh();
    const first = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(`data directory ${dir} is in use by process ${process.pid}`);
    first.release();
    lockDataDir(dir).release();
  });
});
