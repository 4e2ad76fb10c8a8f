import { randomFillSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { crc32c as reference } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { crc32c, implementation, nativeLoaded } from '../src/index.js';

/** The CPU flags the folded path needs, as Linux reports them. */
function cpuHasFolding(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  const flags = new Set(
    /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? [],
  );
  return ['sse4_2', 'avx512f', 'avx512vl', 'vpclmulqdq'].every((flag) => flags.has(flag));
}

describe('crc32c', () => {
  it('gives the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
  });

  it('equals @node-rs/crc32 for every length up to 4 KiB, at every alignment, from any start', () => {
    const pool = randomFillSync(Buffer.alloc(4096 + 64));
    for (let length = 0; length <= 4096; length++) {
      const at = length % 61;
      const data = pool.subarray(at, at + length);
      const initial = (length * 2654435761) >>> 0;
      expect(crc32c(data, initial), `length ${length}`).toBe(reference(data, initial));
    }
  });

  it('equals @node-rs/crc32 on large inputs', () => {
    for (const length of [65_536, 1_048_576 + 13, 5_000_003]) {
      const data = randomFillSync(Buffer.alloc(length));
      expect(crc32c(data)).toBe(reference(data));
    }
  });

  it('continues a checksum across pieces', () => {
    const data = randomFillSync(Buffer.alloc(100_000));
    let running = 0;
    for (let at = 0; at < data.length; at += 7_777) running = crc32c(data.subarray(at, at + 7_777), running);
    expect(running).toBe(crc32c(data));
  });

  it('reads views of shared memory', () => {
    const shared = new Uint8Array(new SharedArrayBuffer(10_000));
    randomFillSync(shared);
    const view = shared.subarray(3, 9_000);
    expect(crc32c(view)).toBe(reference(Buffer.from(view)));
  });

  it('takes an initial value left undefined as none', () => {
    const data = Buffer.from('123456789');
    expect(crc32c(data, undefined)).toBe(0xe3069283);
  });

  it('refuses what is not a Uint8Array', () => {
    expect(() => crc32c('abc' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => crc32c(new Uint16Array(4) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('uses the folded path where the CPU has it', () => {
    // In CI the addon must have been built: a silent fallback would hide a broken build.
    if (process.env.CI) expect(nativeLoaded).toBe(true);
    expect(implementation).toBe(nativeLoaded && cpuHasFolding() ? 'avx512' : 'node-rs');
  });

  it('falls back to @node-rs/crc32, with the same results, where the addon was not built', async () => {
    // The built module alone, in a folder of this package with no build/ beside it.
    const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
    const scratch = mkdtempSync(join(packageDir, 'no-addon-'));
    try {
      mkdirSync(join(scratch, 'dist'));
      copyFileSync(join(packageDir, 'dist', 'index.js'), join(scratch, 'dist', 'index.js'));
      const fallback = (await import(pathToFileURL(join(scratch, 'dist', 'index.js')).href)) as {
        crc32c: (data: Uint8Array, initial?: number) => number;
        implementation: string;
        nativeLoaded: boolean;
      };
      expect(fallback.nativeLoaded).toBe(false);
      expect(fallback.implementation).toBe('node-rs');
      const data = randomFillSync(Buffer.alloc(70_000));
      expect(fallback.crc32c(data, 7)).toBe(crc32c(data, 7));
      expect(fallback.crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
