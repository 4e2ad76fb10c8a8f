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
      segmentMs: 60_000,
      durability: 'fsync',
      maxBatchBytes: undefined,
    });
    expect(merged).toEqual({
      ...DEFAULT_SHARD_CONFIG,
      retentionMs: null,
      segmentBytes: 4096,
      segmentMs: 60_000,
      durability: 'fsync',
    });
    expect(mergeShardConfig(merged, { segmentMs: null }).segmentMs).toBeNull();
  });

  it('rolls segments weekly by default, as Kafka does (log.roll.ms)', () => {
    expect(DEFAULT_SHARD_CONFIG.segmentMs).toBe(604_800_000);
    // A config stored before segmentMs existed gets the default.
    const { segmentMs: _left, ...stored } = DEFAULT_SHARD_CONFIG;
    expect(mergeShardConfig(DEFAULT_SHARD_CONFIG, { ...stored, segmentBytes: 4096 }).segmentMs).toBe(
      604_800_000,
    );
  });

  it.each([
    [{ segmentBytes: 0 }],
    [{ segmentBytes: 1.5 }],
    [{ segmentMs: 0 }],
    [{ segmentMs: 1.5 }],
    [{ segmentMs: '60000' }],
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
