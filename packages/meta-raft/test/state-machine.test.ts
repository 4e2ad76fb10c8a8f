import { ErrorCode } from '@robustmq/core';
import type { MetaEntry } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { MetaCommand, MetaOp } from '../src/index.js';
import { decodeMetaCommand, encodeMetaCommand, MetaStateMachine } from '../src/index.js';
import { pick, seededRandom } from './random.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const put = (key: string, value: string, ifRevision?: number): MetaCommand => ({
  ops: [
    ifRevision === undefined
      ? { type: 'put', key, value: text(value) }
      : { type: 'put', key, value: text(value), ifRevision },
  ],
});
const del = (key: string, ifRevision?: number): MetaCommand => ({
  ops: [ifRevision === undefined ? { type: 'delete', key } : { type: 'delete', key, ifRevision }],
});

/** A random workload of puts, deletes, compare-and-sets and transactions over a few prefixes. */
function randomCommands(seed: number, count: number): MetaCommand[] {
  const random = seededRandom(seed);
  const keyNames = Array.from(
    { length: 40 },
    (_, i) => `/${pick(random, ['a', 'b', 'ab', 'c/d'])}/${i % 13}`,
  );
  const op = (key: string): MetaOp => {
    const ifRevision = random() < 0.2 ? Math.floor(random() * count) : undefined;
    if (random() < 0.25)
      return ifRevision === undefined ? { type: 'delete', key } : { type: 'delete', key, ifRevision };
    const value = new Uint8Array(Math.floor(random() * 12)).map(() => Math.floor(random() * 256));
    return ifRevision === undefined ? { type: 'put', key, value } : { type: 'put', key, value, ifRevision };
  };
  return Array.from({ length: count }, () => {
    const keys = [
      ...new Set(Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(random, keyNames))),
    ];
    return { ops: keys.map(op) };
  });
}

describe('MetaStateMachine', () => {
  it('puts, overwrites and deletes in etcd revision style', () => {
    const machine = new MetaStateMachine();
    expect(machine.revision).toBe(0);
    expect(machine.apply(put('/k', 'a'))).toMatchObject({
      ok: true,
      revision: 1,
      results: [{ type: 'put', revision: 1 }],
    });
    machine.apply(put('/other', 'x'));
    machine.apply(put('/k', 'b'));
    expect(machine.get('/k')).toEqual({
      key: '/k',
      value: text('b'),
      createRevision: 1,
      modRevision: 3,
      version: 2,
    });
    expect(machine.apply(del('/k'))).toMatchObject({
      ok: true,
      revision: 4,
      results: [{ type: 'delete', deleted: true }],
    });
    expect(machine.get('/k')).toBeNull();
    expect(machine.size).toBe(1);
  });

  it('leaves the revision alone for a delete of an absent key', () => {
    const machine = new MetaStateMachine();
    machine.apply(put('/k', 'a'));
    const result = machine.apply(del('/absent'));
    expect(result).toEqual({
      ok: true,
      revision: 1,
      results: [{ type: 'delete', deleted: false }],
      events: [],
    });
    expect(machine.revision).toBe(1);
  });

  it('applies a transaction atomically at one revision', () => {
    const machine = new MetaStateMachine();
    machine.apply(put('/c', 'old'));
    const result = machine.apply({
      ops: [
        { type: 'put', key: '/a', value: text('1'), ifRevision: 0 },
        { type: 'put', key: '/b', value: text('2') },
        { type: 'delete', key: '/c', ifRevision: 1 },
        { type: 'delete', key: '/absent' },
      ],
    });
    expect(result).toEqual({
      ok: true,
      revision: 2,
      results: [
        { type: 'put', revision: 2 },
        { type: 'put', revision: 2 },
        { type: 'delete', deleted: true },
        { type: 'delete', deleted: false },
      ],
      events: [
        {
          type: 'put',
          revision: 2,
          entry: { key: '/a', value: text('1'), createRevision: 2, modRevision: 2, version: 1 },
        },
        {
          type: 'put',
          revision: 2,
          entry: { key: '/b', value: text('2'), createRevision: 2, modRevision: 2, version: 1 },
        },
        { type: 'delete', key: '/c', revision: 2 },
      ],
    });
  });

  it('rejects a whole transaction when one condition fails, changing nothing', () => {
    const machine = new MetaStateMachine();
    machine.apply(put('/a', '1'));
    machine.apply(put('/b', '2'));
    const before = machine.snapshot();
    const result = machine.apply({
      ops: [
        { type: 'put', key: '/a', value: text('new'), ifRevision: 1 },
        { type: 'delete', key: '/b', ifRevision: 1 },
      ],
    });
    expect(result).toEqual({
      ok: false,
      code: ErrorCode.Conflict,
      key: '/b',
      expected: 1,
      actual: 2,
      revision: 2,
    });
    expect(machine.snapshot()).toEqual(before);
    expect(machine.eventsAfter(0)).toHaveLength(2);
  });

  it('refuses malformed commands with INVALID_ARGUMENT and no change', () => {
    const machine = new MetaStateMachine();
    const invalid: MetaCommand[] = [
      { ops: [{ type: 'put', key: '', value: text('x') }] },
      {
        ops: [
          { type: 'put', key: '/dup', value: text('x') },
          { type: 'delete', key: '/dup' },
        ],
      },
      { ops: [{ type: 'put', key: '/k', value: text('x'), ifRevision: -1 }] },
      { ops: [{ type: 'put', key: '/k', value: text('x'), ifRevision: 1.5 }] },
      { ops: [{ type: 'put', key: '/\uD800', value: text('x') }] },
      { ops: [{ type: 'put', key: '/k', value: 'not bytes' as unknown as Uint8Array }] },
    ];
    for (const command of invalid) {
      expect(machine.apply(command)).toMatchObject({
        ok: false,
        code: ErrorCode.InvalidArgument,
        revision: 0,
      });
    }
    expect(machine.revision).toBe(0);
    expect(machine.size).toBe(0);
  });

  it('lists like a sorted filter of the keys, on a random workload', () => {
    const random = seededRandom(7);
    const machine = new MetaStateMachine();
    const model = new Map<string, MetaEntry>();
    for (const command of randomCommands(11, 600)) {
      machine.apply(command);
      for (const op of command.ops) {
        const entry = machine.get(op.key);
        if (entry === null) model.delete(op.key);
        else model.set(op.key, entry);
      }
    }
    const sorted = [...model.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (let i = 0; i < 300; i++) {
      const prefix = pick(random, ['', '/', '/a', '/a/', '/ab', '/c/d/1', '/z']);
      const startAfter = random() < 0.5 ? undefined : pick(random, ['/a/3', '/ab/10', '/b', '/0', '/c/d/12']);
      const limit = random() < 0.5 ? undefined : Math.floor(random() * 8);
      const expected = sorted
        .filter((key) => key.startsWith(prefix) && (startAfter === undefined || key > startAfter))
        .slice(0, limit);
      const options = {
        ...(startAfter === undefined ? {} : { startAfter }),
        ...(limit === undefined ? {} : { limit }),
      };
      expect(machine.list(prefix, options).map((entry) => entry.key)).toEqual(expected);
    }
  });

  it('refuses a negative or fractional list limit', () => {
    const machine = new MetaStateMachine();
    expect(() => machine.list('', { limit: -1 })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }) as Error,
    );
    expect(() => machine.list('', { limit: 0.5 })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }) as Error,
    );
  });

  describe('event history', () => {
    it('returns events after a revision, filtered by prefix', () => {
      const machine = new MetaStateMachine();
      machine.apply(put('/a/1', 'x'));
      machine.apply(put('/b/1', 'y'));
      machine.apply(del('/a/1'));
      expect(machine.eventsAfter(0, '/a/')).toEqual([
        {
          type: 'put',
          revision: 1,
          entry: { key: '/a/1', value: text('x'), createRevision: 1, modRevision: 1, version: 1 },
        },
        { type: 'delete', key: '/a/1', revision: 3 },
      ]);
      expect(machine.eventsAfter(1).map((event) => event.revision)).toEqual([2, 3]);
      expect(machine.eventsAfter(3)).toEqual([]);
      expect(machine.eventsAfter(99)).toEqual([]);
    });

    it('drops the oldest revisions past its limit; asking for them gives NOT_FOUND', () => {
      const machine = new MetaStateMachine({ historyLimit: 5 });
      for (let i = 0; i < 10; i++) machine.apply(put(`/k/${i}`, String(i)));
      expect(machine.compactedRevision).toBe(5);
      expect(machine.eventsAfter(5).map((event) => event.revision)).toEqual([6, 7, 8, 9, 10]);
      expect(() => machine.eventsAfter(4)).toThrow(
        expect.objectContaining({ code: ErrorCode.NotFound }) as Error,
      );
    });

    it('drops a transaction’s events together, never half of a revision', () => {
      const machine = new MetaStateMachine({ historyLimit: 3 });
      const pair = (n: number): MetaCommand => ({
        ops: [
          { type: 'put', key: `/x/${n}`, value: text('1') },
          { type: 'put', key: `/y/${n}`, value: text('2') },
        ],
      });
      machine.apply(pair(1));
      machine.apply(pair(2));
      expect(machine.compactedRevision).toBe(1);
      expect(machine.eventsAfter(1)).toHaveLength(2);
      machine.apply({
        ops: Array.from({ length: 5 }, (_, i) => ({ type: 'put', key: `/big/${i}`, value: text('z') })),
      });
      expect(machine.compactedRevision).toBe(3);
      expect(machine.eventsAfter(3)).toEqual([]);
    });

    it('keeps working through many compactions', () => {
      const machine = new MetaStateMachine({ historyLimit: 100 });
      for (let i = 1; i <= 5000; i++) machine.apply(put(`/k/${i % 50}`, String(i)));
      expect(machine.eventsAfter(4900).map((event) => event.revision)).toEqual(
        Array.from({ length: 100 }, (_, i) => 4901 + i),
      );
      expect(() => machine.eventsAfter(4899)).toThrow(
        expect.objectContaining({ code: ErrorCode.NotFound }) as Error,
      );
    });
  });

  describe('determinism and snapshots', () => {
    it('reaches byte-identical snapshots and identical results from the same commands', () => {
      const commands = randomCommands(42, 2000);
      const first = new MetaStateMachine();
      const second = new MetaStateMachine();
      const firstResults = commands.map((command) => first.apply(command));
      // The second replica applies what a log would carry: the encoded bytes, decoded.
      const secondResults = commands.map((command) =>
        second.apply(decodeMetaCommand(encodeMetaCommand(command))),
      );
      expect(secondResults).toEqual(firstResults);
      expect(Buffer.from(second.snapshot()).equals(Buffer.from(first.snapshot()))).toBe(true);
      expect(first.revision).toBeGreaterThan(100);
      expect(firstResults.some((result) => !result.ok)).toBe(true);
    });

    it('does not depend on history limits for its snapshot', () => {
      const commands = randomCommands(5, 500);
      const small = new MetaStateMachine({ historyLimit: 1 });
      const large = new MetaStateMachine({ historyLimit: 100_000 });
      for (const command of commands) {
        small.apply(command);
        large.apply(command);
      }
      expect(Buffer.from(small.snapshot()).equals(Buffer.from(large.snapshot()))).toBe(true);
    });

    it('restores a snapshot to the same state, which then evolves identically', () => {
      const commands = randomCommands(3, 1500);
      const original = new MetaStateMachine();
      for (const command of commands.slice(0, 1000)) original.apply(command);
      const bytes = original.snapshot();
      const restored = new MetaStateMachine();
      restored.apply(put('/to-be-replaced', 'x'));
      restored.restore(bytes);
      expect(restored.revision).toBe(original.revision);
      expect(restored.size).toBe(original.size);
      expect(restored.list('')).toEqual(original.list(''));
      expect(Buffer.from(restored.snapshot()).equals(Buffer.from(bytes))).toBe(true);
      for (const command of commands.slice(1000))
        expect(restored.apply(command)).toEqual(original.apply(command));
      expect(Buffer.from(restored.snapshot()).equals(Buffer.from(original.snapshot()))).toBe(true);
    });

    it('round-trips an empty machine', () => {
      const restored = new MetaStateMachine();
      restored.restore(new MetaStateMachine().snapshot());
      expect(restored.revision).toBe(0);
      expect(restored.size).toBe(0);
    });

    it('starts watch history at the restored revision', () => {
      const original = new MetaStateMachine();
      for (let i = 0; i < 5; i++) original.apply(put('/k', String(i)));
      const restored = new MetaStateMachine();
      restored.restore(original.snapshot());
      expect(restored.eventsAfter(5)).toEqual([]);
      expect(() => restored.eventsAfter(4)).toThrow(
        expect.objectContaining({ code: ErrorCode.NotFound }) as Error,
      );
      restored.apply(put('/k', 'next'));
      expect(restored.eventsAfter(5).map((event) => event.revision)).toEqual([6]);
    });

    it('refuses damaged snapshot bytes with CORRUPT and keeps its state', () => {
      const source = new MetaStateMachine();
      for (const command of randomCommands(9, 200)) source.apply(command);
      const bytes = source.snapshot();
      const target = new MetaStateMachine();
      target.apply(put('/mine', 'kept'));
      const damaged = [
        bytes.subarray(0, bytes.length - 1),
        new Uint8Array([...bytes, 0]),
        new Uint8Array(bytes).fill(0x41, 0, 4),
        new Uint8Array(0),
      ];
      for (const bad of damaged) {
        expect(() => target.restore(bad)).toThrow(
          expect.objectContaining({ code: ErrorCode.Corrupt }) as Error,
        );
      }
      expect(target.list('').map((entry) => entry.key)).toEqual(['/mine']);
      expect(target.revision).toBe(1);
    });

    it('refuses a snapshot whose keys are out of order', () => {
      const machine = new MetaStateMachine();
      machine.apply(put('/a', '1'));
      machine.apply(put('/b', '2'));
      const bytes = Buffer.from(machine.snapshot());
      // Both keys are two bytes long; swapping their text leaves a well-framed but unsorted snapshot.
      const a = bytes.indexOf('/a');
      const b = bytes.indexOf('/b');
      bytes.write('/b', a);
      bytes.write('/a', b);
      expect(() => new MetaStateMachine().restore(bytes)).toThrow(
        expect.objectContaining({ code: ErrorCode.Corrupt }) as Error,
      );
    });
  });
});
