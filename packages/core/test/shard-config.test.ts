import { describe, expect, it } from 'vitest';
import { DEFAULT_SHARD_CONFIG, ErrorCode, isRobustMQError, mergeShardConfig } from '../src/index.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return isRobustMQError(error) ? error.code : 'other';
  }
  return undefined;
}

describe('mergeShardConfig', () => {
  it('keeps settings left out or undefined, and applies the rest', () => {
    expect(mergeShardConfig(DEFAULT_SHARD_CONFIG, undefined)).toEqual(DEFAULT_SHARD_CONFIG);
    const merged = mergeShardConfig(DEFAULT_SHARD_CONFIG, {
      retentionMs: null,
      segmentBytes: 4096,
      durability: 'fsync',
      maxBatchBytes: undefined,
    });
    expect(merged).toEqual({
      ...DEFAULT_SHARD_CONFIG,
      retentionMs: null,
      segmentBytes: 4096,
      durability: 'fsync',
    });
  });

  it.each([
    [{ segmentBytes: 0 }],
    [{ segmentBytes: 1.5 }],
    [{ maxBatchBytes: -1 }],
    [{ retentionMs: -1 }],
    [{ retentionBytes: 'big' }],
    [{ durability: 'sometimes' }],
    [{ colour: 'blue' }],
    [null],
    [[1]],
  ])('refuses %j with INVALID_ARGUMENT', (patch) => {
    expect(codeOf(() => mergeShardConfig(DEFAULT_SHARD_CONFIG, patch))).toBe(ErrorCode.InvalidArgument);
  });

  it("applies an engine's own limits", () => {
    expect(
      codeOf(() =>
        mergeShardConfig(DEFAULT_SHARD_CONFIG, { segmentBytes: 2 ** 32 }, { maxSegmentBytes: 2 ** 31 }),
      ),
    ).toBe(ErrorCode.InvalidArgument);
    expect(mergeShardConfig(DEFAULT_SHARD_CONFIG, { segmentBytes: 2 ** 32 }).segmentBytes).toBe(2 ** 32);
  });
});
