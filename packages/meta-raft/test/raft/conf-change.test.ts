import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { ConfChange } from '../../src/index.js';
import {
  applyConfChange,
  confState,
  decodeConfChange,
  encodeConfChange,
  invalidConfChangeReason,
} from '../../src/index.js';

describe('membership changes', () => {
  const conf = confState([1, 2, 3], [4]);

  it('round-trips every kind through its entry encoding', () => {
    const changes: ConfChange[] = [
      { type: 'addVoter', nodeId: 5 },
      { type: 'addLearner', nodeId: 2 ** 40 },
      { type: 'removeNode', nodeId: 1 },
    ];
    for (const change of changes) expect(decodeConfChange(encodeConfChange(change))).toEqual(change);
  });

  it('refuses malformed bytes with CORRUPT and malformed changes with INVALID_ARGUMENT', () => {
    const bytes = encodeConfChange({ type: 'addVoter', nodeId: 5 });
    expect(() => decodeConfChange(bytes.subarray(0, 5))).toThrow(
      expect.objectContaining({ code: ErrorCode.Corrupt }),
    );
    const unknownKind = bytes.slice();
    unknownKind[1] = 9;
    expect(() => decodeConfChange(unknownKind)).toThrow(expect.objectContaining({ code: ErrorCode.Corrupt }));
    expect(() => encodeConfChange({ type: 'addVoter', nodeId: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
  });

  it('adds, promotes, demotes and removes one member at a time', () => {
    expect(applyConfChange(conf, { type: 'addVoter', nodeId: 4 })).toEqual(confState([1, 2, 3, 4]));
    expect(applyConfChange(conf, { type: 'addLearner', nodeId: 3 })).toEqual(confState([1, 2], [3, 4]));
    expect(applyConfChange(conf, { type: 'removeNode', nodeId: 4 })).toEqual(confState([1, 2, 3]));
    expect(applyConfChange(conf, { type: 'addVoter', nodeId: 9 })).toEqual(confState([1, 2, 3, 9], [4]));
  });

  it('says why a change is refused, and applying it changes nothing', () => {
    const cases: [ConfChange, string][] = [
      [{ type: 'addVoter', nodeId: 2 }, 'already a voter'],
      [{ type: 'addLearner', nodeId: 4 }, 'already a learner'],
      [{ type: 'removeNode', nodeId: 7 }, 'not a member'],
    ];
    for (const [change, reason] of cases) {
      expect(invalidConfChangeReason(conf, change)).toContain(reason);
      expect(applyConfChange(conf, change)).toBe(conf);
    }
    const alone = confState([1]);
    expect(invalidConfChangeReason(alone, { type: 'removeNode', nodeId: 1 })).toContain('last voter');
    expect(invalidConfChangeReason(alone, { type: 'addLearner', nodeId: 1 })).toContain('last voter');
  });
});
