import { ConfigError } from '@robustmq/core';

/** Engine-wide settings: the server's `[storage]` section, less `engine`. */
export interface RocksDbSettings {
  /**
   * How long a group-commit append may wait for others to join its synced write. 0 (the default)
   * writes at the end of the current event-loop turn, which already gathers every append that
   * arrived in it.
   */
  groupCommitMs: number;
  /** Pending group-commit bytes at which the synced write starts without waiting further. */
  groupCommitBytes: number;
}

export const DEFAULT_SETTINGS: Readonly<RocksDbSettings> = Object.freeze({
  groupCommitMs: 0,
  groupCommitBytes: 4 * 1024 * 1024,
});

const SETTINGS: Record<string, { field: keyof RocksDbSettings; min: number; max: number }> = {
  group_commit_ms: { field: 'groupCommitMs', min: 0, max: 10_000 },
  group_commit_bytes: { field: 'groupCommitBytes', min: 1, max: 2 ** 30 },
};

/**
 * Reads the `[storage]` section; a key set to `undefined` keeps its default. Throws a ConfigError
 * naming the setting (`storage.<key>`) for an unknown key or a bad value.
 */
export function parseSettings(section: Readonly<Record<string, unknown>>): RocksDbSettings {
  const settings: RocksDbSettings = { ...DEFAULT_SETTINGS };
  for (const [key, value] of Object.entries(section)) {
    if (value === undefined) continue;
    const setting = SETTINGS[key];
    if (setting === undefined) {
      const known = Object.keys(SETTINGS).join(', ');
      throw new ConfigError(`storage.${key}`, `unknown setting for the rocksdb engine (known: ${known})`);
    }
    if (
      typeof value !== 'number' ||
      !Number.isSafeInteger(value) ||
      value < setting.min ||
      value > setting.max
    ) {
      throw new ConfigError(
        `storage.${key}`,
        `must be an integer from ${setting.min} to ${setting.max}, got ${JSON.stringify(value)}`,
      );
    }
    settings[setting.field] = value;
  }
  return settings;
}
