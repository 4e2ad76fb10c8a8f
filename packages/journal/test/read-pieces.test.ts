import { describe, expect, it } from 'vitest';
import { pieceEnds } from '../src/read-span.js';

const MiB = 1024 * 1024;

describe('pieces of a read', () => {
  it('reads short and remote spans in one piece', () => {
    expect(pieceEnds(100, true)).toEqual([100]);
    expect(pieceEnds(2 * MiB - 1, true)).toEqual([2 * MiB - 1]);
    expect(pieceEnds(64 * MiB, false)).toEqual([64 * MiB]);
  });

  it('starts a long local read with a short piece, then pieces of about 1 MiB that cover it all', () => {
    for (const length of [2 * MiB, 4 * MiB, 4 * MiB + 12_345, 8 * MiB, 33 * MiB - 7]) {
      const ends = pieceEnds(length, true);
      expect(ends[0]).toBe(128 * 1024);
      expect(ends.at(-1)).toBe(length);
      const sizes = ends.map((end, i) => end - (i === 0 ? 0 : (ends[i - 1] as number)));
      for (const size of sizes.slice(1)) {
        expect(size).toBeGreaterThanOrEqual(MiB - 1);
        expect(size).toBeLessThanOrEqual(2 * MiB);
      }
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(length);
    }
  });
});
