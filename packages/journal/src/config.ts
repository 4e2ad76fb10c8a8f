import { availableParallelism } from 'node:os';
import { ConfigError, isDurabilityPolicy, type DurabilityPolicy } from '@robustmq/core';
import { MAX_SEGMENT_BYTES } from './shard-config.js';

/** Settings of the `[storage]` config section the journal understands. */
export interface JournalSettings {
  /**
   * Group commit: the least time between the starts of two fsyncs of one shard. 0 starts the next
   * fsync as soon as the previous one ends (appends written meanwhile share it); a few ms trades
   * latency for fewer fsyncs on disks where they are expensive.
   */
  groupCommitMs: number;
  /** Group commit: unsynced bytes that start an fsync without waiting out `groupCommitMs`. */
  groupCommitBytes: number;
  /** Durability of shards created without one. */
  defaultDurability: DurabilityPolicy;
  /** Segment size of shards created without one. */
  defaultSegmentBytes: number;
  /** Bytes of log between two entries of the sparse indexes. */
  indexIntervalBytes: number;
  /** Memory for the indexes of sealed segments, shared by all shards. */
  indexCacheBytes: number;
  /**
   * Threads that copy and check long reads into shared memory (`ReadOptions.into` over a
   * `SharedArrayBuffer`) off the engine's thread; 0 keeps every read on it.
   */
  readThreads: number;
  /**
   * Log handles the active segments of all shards may keep open together (the appending handle,
   * and those of durable writes); past it, those of the least recently used idle shards are
   * closed and opened again on their next use. 0: half the process's open-file limit.
   */
  maxOpenFiles: number;
}

export const DEFAULT_SETTINGS: Readonly<JournalSettings> = Object.freeze({
  groupCommitMs: 0,
  groupCommitBytes: 1024 * 1024,
  defaultDurability: 'group-commit',
  defaultSegmentBytes: 128 * 1024 * 1024,
  indexIntervalBytes: 4096,
  indexCacheBytes: 64 * 1024 * 1024,
  readThreads: Math.min(4, availableParallelism()),
  maxOpenFiles: 0,
});

type Setting = {
  key: keyof JournalSettings;
  parse: (value: unknown, name: string) => JournalSettings[keyof JournalSettings];
};

function integer(min: number, max: number) {
  return (value: unknown, name: string): number => {
    const n = typeof value === 'bigint' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${String(value)}`);
    }
    return n;
  };
}

const SETTINGS: Record<string, Setting> = {
  group_commit_ms: { key: 'groupCommitMs', parse: integer(0, 60_000) },
  group_commit_bytes: { key: 'groupCommitBytes', parse: integer(0, 2 ** 31) },
  default_durability: {
    key: 'defaultDurability',
    parse: (value, name) => {
      if (!isDurabilityPolicy(value))
        throw new ConfigError(
          name,
          `must be "fsync", "group-commit" or "none", got ${JSON.stringify(value)}`,
        );
      return value;
    },
  },
  default_segment_bytes: { key: 'defaultSegmentBytes', parse: integer(1, MAX_SEGMENT_BYTES) },
  index_interval_bytes: { key: 'indexIntervalBytes', parse: integer(0, 2 ** 30) },
  index_cache_bytes: { key: 'indexCacheBytes', parse: integer(0, Number.MAX_SAFE_INTEGER) },
  read_threads: { key: 'readThreads', parse: integer(0, 64) },
  max_open_files: { key: 'maxOpenFiles', parse: integer(0, 2 ** 30) },
};

/** The snake_case keys of the `[storage]` section the journal understands. */
export const JOURNAL_SETTING_NAMES: readonly string[] = Object.freeze(Object.keys(SETTINGS));

/**
 * Reads the journal's settings from its `[storage]` config section (snake_case keys, as in the
 * TOML file). An unknown key or a bad value is a {@link ConfigError} naming the setting.
 */
export function parseJournalConfig(section: Readonly<Record<string, unknown>>): JournalSettings {
  const settings: JournalSettings = { ...DEFAULT_SETTINGS };
  for (const [name, value] of Object.entries(section)) {
    const setting = SETTINGS[name];
    if (setting === undefined) {
      throw new ConfigError(
        name,
        `unknown setting; the journal understands ${Object.keys(SETTINGS).join(', ')}`,
      );
    }
    (settings as unknown as Record<string, unknown>)[setting.key] = setting.parse(value, name);
  }
  return settings;
}
