import { describe, expect, it } from 'vitest';
import { ReadBuffers } from '../src/broker/read-buffers.js';

const MiB = 1024 * 1024;

describe('buffers lent to Fetch reads', () => {
  it('lends twice the read size in whole MiB, and nothing for empty or very large reads', () => {
    const buffers = new ReadBuffers();
    expect(buffers.acquire(8 * MiB)!.length).toBe(16 * MiB);
    expect(buffers.acquire(100)!.length).toBe(MiB);
    // Shared memory, so the journal's read threads can fill it.
    expect(buffers.acquire(MiB)!.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(buffers.acquire(0)).toBeNull();
    expect(buffers.acquire(64 * MiB)).toBeNull();
  });

  it('gives back the smallest idle buffer that fits, and keeps a bounded amount idle', () => {
    const buffers = new ReadBuffers();
    const large = buffers.acquire(8 * MiB)!;
    const small = buffers.acquire(MiB)!;
    buffers.release(large);
    buffers.release(small);
    expect(buffers.idleSize).toBe(18 * MiB);
    // (Identity compared as booleans: a failing match of 16 MiB buffers would print them.)
    expect(buffers.acquire(MiB) === small).toBe(true);
    expect(buffers.acquire(4 * MiB) === large).toBe(true);
    expect(buffers.idleSize).toBe(0);
    const many = Array.from({ length: 8 }, () => buffers.acquire(8 * MiB)!);
    for (const buffer of many) buffers.release(buffer);
    expect(buffers.idleSize).toBeLessThanOrEqual(96 * MiB);
    expect(buffers.idleSize).toBeGreaterThan(0);
  });
});
