import { ConfigError } from '@robustmq/core';
import { JOURNAL_SETTING_NAMES, parseJournalConfig, type JournalSettings } from '@robustmq/journal';

/** Access keys for the bucket; without them the AWS SDK's default credential chain is used. */
export interface BucketCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Where segments go and when they leave the local disk. */
export interface TieringSettings {
  /** The bucket segments are uploaded to; it must exist. */
  bucket: string;
  /** An S3-compatible endpoint URL; AWS's own for the region when undefined. */
  endpoint: string | undefined;
  region: string;
  /** Prepended to every object key, e.g. `cluster-a/` (a `/` is added when missing). */
  prefix: string;
  credentials: BucketCredentials | undefined;
  /** Address buckets as `endpoint/bucket` rather than `bucket.endpoint` (most non-AWS servers). */
  forcePathStyle: boolean;
  /**
   * A sealed segment whose newest record is older than this is dropped locally once uploaded;
   * null: no time bound.
   */
  localRetentionMs: number | null;
  /** The oldest uploaded segments are dropped locally while a shard holds more; null: no bound. */
  localRetentionBytes: number | null;
  /** Segment uploads in flight at once, all shards together. */
  uploadConcurrency: number;
  /** How often every shard is checked for segments to upload or to drop locally. */
  tieringIntervalMs: number;
  /** Wait before retrying a shard whose tiering failed; doubled per failure up to the interval. */
  retryBackoffMs: number;
  /** A request to the bucket that sees no progress for this long fails (and may be retried). */
  requestTimeoutMs: number;
}

export const DEFAULT_TIERING_SETTINGS: Readonly<Omit<TieringSettings, 'bucket'>> = Object.freeze({
  endpoint: undefined,
  region: 'us-east-1',
  prefix: '',
  credentials: undefined,
  forcePathStyle: false,
  localRetentionMs: 60 * 60 * 1000,
  localRetentionBytes: null,
  uploadConcurrency: 4,
  tieringIntervalMs: 30_000,
  retryBackoffMs: 1000,
  requestTimeoutMs: 30_000,
});

/** The `[storage]` section of the tiered engine: its own settings and the journal's. */
export interface TieredConfig {
  tiering: TieringSettings;
  journal: JournalSettings;
}

function string(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ConfigError(name, `must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integer(value: unknown, name: string, min: number, max: number): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return n;
}

/** A bound that -1 switches off. */
function bound(value: unknown, name: string): number | null {
  const n = integer(value, name, -1, Number.MAX_SAFE_INTEGER);
  return n === -1 ? null : n;
}

function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new ConfigError(name, `must be true or false, got ${String(value)}`);
  return value;
}

type Parsed = Partial<Omit<TieringSettings, 'credentials'>> & {
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
};

const SETTINGS: Record<string, (value: unknown, name: string, into: Parsed) => void> = {
  bucket: (v, n, into) => (into.bucket = string(v, n)),
  endpoint: (v, n, into) => {
    const url = string(v, n);
    if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
      throw new ConfigError(n, `must be an http:// or https:// URL, got ${JSON.stringify(url)}`);
    }
    into.endpoint = url;
  },
  region: (v, n, into) => (into.region = string(v, n)),
  prefix: (v, n, into) => {
    if (typeof v !== 'string') throw new ConfigError(n, `must be a string, got ${String(v)}`);
    into.prefix = v;
  },
  access_key_id: (v, n, into) => (into.accessKeyId = string(v, n)),
  secret_access_key: (v, n, into) => (into.secretAccessKey = string(v, n)),
  session_token: (v, n, into) => (into.sessionToken = string(v, n)),
  force_path_style: (v, n, into) => (into.forcePathStyle = boolean(v, n)),
  local_retention_ms: (v, n, into) => (into.localRetentionMs = bound(v, n)),
  local_retention_bytes: (v, n, into) => (into.localRetentionBytes = bound(v, n)),
  upload_concurrency: (v, n, into) => (into.uploadConcurrency = integer(v, n, 1, 64)),
  tiering_interval_ms: (v, n, into) => (into.tieringIntervalMs = integer(v, n, 10, 24 * 60 * 60 * 1000)),
  retry_backoff_ms: (v, n, into) => (into.retryBackoffMs = integer(v, n, 1, 60 * 60 * 1000)),
  request_timeout_ms: (v, n, into) => (into.requestTimeoutMs = integer(v, n, 100, 60 * 60 * 1000)),
};

/** The snake_case keys of the tiered engine's own settings. */
export const TIERING_SETTING_NAMES: readonly string[] = Object.freeze(Object.keys(SETTINGS));

/** Normalises a key prefix: empty, or ending in one `/`. */
export function normalisePrefix(prefix: string): string {
  return prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
}

/** S3 refuses object keys longer than this, counted in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The longest shard name `validateShardName` of `@robustmq/core` lets through (ASCII only). */
export const MAX_SHARD_NAME_LENGTH = 255;
/** The longest key after the prefix: `shards/<shard name>/<base offset, 20 digits>.log`. */
const LONGEST_KEY_AFTER_PREFIX = 'shards/'.length + MAX_SHARD_NAME_LENGTH + '/'.length + 20 + '.log'.length;
/** The longest (normalised) prefix whose every key fits in S3's limit. */
export const MAX_PREFIX_BYTES = MAX_KEY_BYTES - LONGEST_KEY_AFTER_PREFIX;

/**
 * Normalises a key prefix and refuses one so long that the key of a segment of a shard with a long
 * name would exceed S3's limit: better at start than as a failing upload months later.
 */
export function checkedPrefix(prefix: string): string {
  const normalised = normalisePrefix(prefix);
  const bytes = Buffer.byteLength(normalised, 'utf8');
  if (bytes > MAX_PREFIX_BYTES) {
    throw new ConfigError(
      'prefix',
      `is ${bytes} bytes (UTF-8, with its trailing /); at most ${MAX_PREFIX_BYTES} fit, as object keys ` +
        `add up to ${LONGEST_KEY_AFTER_PREFIX} bytes to it and S3 allows ${MAX_KEY_BYTES}: choose a shorter prefix`,
    );
  }
  return normalised;
}

/**
 * Reads the tiered engine's `[storage]` section (snake_case keys, as in the TOML file): its own
 * settings plus the journal's, which are passed through. `bucket` is required; access keys come
 * as a pair or not at all. An unknown key or a bad value is a {@link ConfigError} naming it.
 */
export function parseTieredConfig(section: Readonly<Record<string, unknown>>): TieredConfig {
  const parsed: Parsed = {};
  const journalSection: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(section)) {
    const setting = SETTINGS[name];
    if (setting !== undefined) {
      setting(value, name, parsed);
    } else if (JOURNAL_SETTING_NAMES.includes(name)) {
      journalSection[name] = value;
    } else {
      throw new ConfigError(
        name,
        `unknown setting; the tiered engine understands ${TIERING_SETTING_NAMES.join(', ')}, ` +
          `and the journal's ${JOURNAL_SETTING_NAMES.join(', ')}`,
      );
    }
  }
  const { accessKeyId, secretAccessKey, sessionToken, bucket, ...rest } = parsed;
  if (bucket === undefined)
    throw new ConfigError('bucket', 'is required: the bucket segments are uploaded to');
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    const missing = accessKeyId === undefined ? 'access_key_id' : 'secret_access_key';
    throw new ConfigError(
      missing,
      'is required with the other access key (or leave both out for the default chain)',
    );
  }
  if (sessionToken !== undefined && accessKeyId === undefined) {
    throw new ConfigError('session_token', 'needs access_key_id and secret_access_key');
  }
  const credentials =
    accessKeyId !== undefined && secretAccessKey !== undefined
      ? { accessKeyId, secretAccessKey, ...(sessionToken === undefined ? {} : { sessionToken }) }
      : undefined;
  return {
    tiering: {
      ...DEFAULT_TIERING_SETTINGS,
      ...rest,
      bucket,
      credentials,
      prefix: checkedPrefix(rest.prefix ?? ''),
    },
    journal: parseJournalConfig(journalSection),
  };
}
