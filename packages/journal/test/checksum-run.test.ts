import { randomBytes, randomInt } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { describe, expect, it } from 'vitest';
import { checkedRunEnd } from '../src/checksum-run.js';
import { frameBytes, sealFrame, writeFrame } from '../src/frame.js';

/** Frames of the given data lengths, one after the other, each sealed with its own checksum. */
function framesOf(lengths: number[]): { bytes: Buffer; starts: number[]; end: number } {
  const bytes = Buffer.alloc(lengths.reduce((sum, n) => sum + frameBytes(n), 0) + 100);
  const starts: number[] = [];
  let at = 0;
  let offset = 0;
  for (const length of lengths) {
    starts.push(at);
    const next = writeFrame(bytes, at, 2, 1_000, randomBytes(length));
    sealFrame(bytes, at, offset);
    offset += 2;
    at = next;
  }
  return { bytes, starts, end: at };
}

function eachFrameChecks(bytes: Buffer, starts: number[]): boolean {
  return starts.every((at) => {
    const end = at + frameBytes(bytes.readUInt32BE(at));
    return crc32c(bytes.subarray(at + 8, end)) === bytes.readUInt32BE(at + 4);
  });
}

describe('checking a run of frames at once', () => {
  it('vouches for every whole frame of an intact run, of any lengths', () => {
    const lengths = [0, 1, 7, 8, 31, 1000, 16_384, 65_537, 3, 200_000];
    const { bytes, starts, end } = framesOf(lengths);
    expect(eachFrameChecks(bytes, starts)).toBe(true);
    expect(checkedRunEnd(bytes, 0, end)).toBe(end);
    // From any frame on, too.
    for (const at of starts) expect(checkedRunEnd(bytes, at, end)).toBe(end);
  });

  it('stops at the last whole frame when the bytes end inside one', () => {
    const { bytes, starts, end } = framesOf([500, 600, 700]);
    expect(checkedRunEnd(bytes, 0, end - 1)).toBe(starts[2]);
    expect(checkedRunEnd(bytes, 0, (starts[1] as number) + 10)).toBe(starts[1]);
    // Not even one whole frame: nothing is vouched for.
    expect(checkedRunEnd(bytes, 0, 40)).toBe(0);
  });

  it('never vouches for a frame with a flipped bit, wherever in the run the bit is', () => {
    const { bytes, starts, end } = framesOf(Array.from({ length: 40 }, () => randomInt(0, 3000)));
    for (let trial = 0; trial < 2000; trial++) {
      const at = trial < 40 * 8 ? (starts[trial >> 3] as number) + (trial & 7) : randomInt(0, end);
      const bit = 1 << randomInt(0, 8);
      bytes[at] = (bytes[at] as number) ^ bit;
      const damagedFrame = starts.filter((start) => start <= at).at(-1) as number;
      // Whatever prefix it vouches for ends at or before the damaged frame.
      expect(checkedRunEnd(bytes, 0, end)).toBeLessThanOrEqual(damagedFrame);
      bytes[at] = bytes[at] ^ bit;
    }
    expect(checkedRunEnd(bytes, 0, end)).toBe(end);
  });

  it('vouches for nothing when two frames are damaged in the same run', () => {
    const { bytes, starts, end } = framesOf(Array.from({ length: 10 }, () => 1024));
    for (const frame of [2, 7]) {
      const at = (starts[frame] as number) + 100;
      bytes[at] = (bytes[at] as number) ^ 0x10;
    }
    expect(checkedRunEnd(bytes, 0, end)).toBe(0);
    expect(checkedRunEnd(bytes, starts[3] as number, end)).toBe(starts[3]);
    expect(checkedRunEnd(bytes, starts[3] as number, starts[7] as number)).toBe(starts[7]);
  });

  it('stops the run at bytes that are not a frame header', () => {
    const { bytes, starts, end } = framesOf([100, 100, 100]);
    bytes[(starts[2] as number) + 8] = 0x7f;
    expect(checkedRunEnd(bytes, 0, end)).toBe(starts[2]);
  });
});
