import { describe, expect, it } from 'vitest';
import type { RegisterOp } from './simulation/linearizability.js';
import { checkLinearizable, checkRegister } from './simulation/linearizability.js';

const w = (value: string, call: number, ret: number): RegisterOp => ({
  kind: 'write',
  key: 'k',
  value,
  call,
  ret,
  label: `w ${value}`,
});
const r = (value: string | null, call: number, ret: number, key = 'k'): RegisterOp => ({
  kind: 'read',
  key,
  value,
  call,
  ret,
  label: `r ${value}`,
});

describe('linearizability checker', () => {
  it('accepts sequential histories that follow the register', () => {
    expect(checkRegister([r(null, 0, 1), w('a', 2, 3), r('a', 4, 5), w('b', 6, 7), r('b', 8, 9)])).toBe(true);
  });

  it('rejects a stale read after a completed write', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 3), r('a', 4, 5)])).toBe(false);
  });

  it('rejects a read of a value never written', () => {
    expect(checkRegister([w('a', 0, 1), r('z', 2, 3)])).toBe(false);
  });

  it('lets a read overlapping a write see either value', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, 10), r('a', 3, 4), r('b', 5, 6)])).toBe(true);
    // ...but not go back once it saw the new one.
    expect(checkRegister([w('a', 0, 1), w('b', 2, 10), r('b', 3, 4), r('a', 5, 6)])).toBe(false);
  });

  it('treats a write with an unknown outcome as happening at any point after its call, or never', () => {
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('a', 5, 6), r('b', 7, 8)])).toBe(true);
    expect(checkRegister([w('a', 0, 1), w('b', 2, Infinity), r('a', 5, 6)])).toBe(true);
    expect(checkRegister([r('b', 0, 1), w('b', 2, Infinity)])).toBe(false);
  });

  it('finds the order among concurrent writes that explains the reads', () => {
    const ops = [w('a', 0, 10), w('b', 0, 10), w('c', 0, 10), r('b', 11, 12), r('b', 13, 14)];
    expect(checkRegister(ops)).toBe(true);
    expect(checkRegister([...ops, r('a', 15, 16)])).toBe(false);
  });

  it('checks each key on its own and names the one that fails', () => {
    const ops = [w('a', 0, 1), r('a', 2, 3), r(null, 2, 3, 'other'), r('x', 4, 5, 'other')];
    expect(checkLinearizable(ops)).toMatchObject({ ok: false, key: 'other' });
    expect(checkLinearizable(ops.slice(0, 3))).toEqual({ ok: true });
  });

  it('handles a long history quickly enough to run after every simulation', () => {
    const ops: RegisterOp[] = [];
    for (let i = 0; i < 400; i++) {
      ops.push(w(`v${i}`, i * 10, i * 10 + 15));
      ops.push(r(`v${i}`, i * 10 + 16, i * 10 + 18));
    }
    expect(checkRegister(ops)).toBe(true);
  });
});
