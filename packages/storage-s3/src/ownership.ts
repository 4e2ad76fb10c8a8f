import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '@robustmq/journal';
import { ConfigError, ErrorCode, RobustMQError, type Logger } from '@robustmq/core';
import type { SegmentBucket } from './bucket.js';

/** The file in the data directory that holds the engine's identity, made at first start. */
export const ENGINE_ID_FILE = 'tiered-engine-id';

const ENGINE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the ownership object of a prefix holds. */
export interface PrefixOwner {
  /** The identity of the engine (its data directory's), the one thing compared. */
  engine: string;
  /** Where that engine ran when it claimed the prefix, for the operator. */
  host: string;
  dir: string;
  claimedAt: string;
}

/**
 * The identity of the engine over `dir`: read from the data directory, or made and stored there
 * at first start. It stays with the data, so a restart (or a move to another host with the data)
 * is the same engine, and a new data directory a new one.
 */
export async function engineIdentity(dir: string): Promise<string> {
  const path = join(dir, ENGINE_ID_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const id = randomUUID();
    await mkdir(dir, { recursive: true });
    // Written whole or not at all: a torn file would make this engine a stranger to its prefix.
    await writeFileAtomic(path, Buffer.from(`${id}\n`));
    return id;
  }
  const id = text.trim();
  if (!ENGINE_ID.test(id)) {
    throw new RobustMQError(
      ErrorCode.Corrupt,
      `${path} is damaged (${JSON.stringify(text.slice(0, 64))}): it names the engine that owns its ` +
        'bucket prefix; restore it from the ownership object of the prefix (its "engine")',
    );
  }
  return id;
}

/** The owner an ownership object names; fields it lacks (or holds no JSON object) undefined. */
function parseOwner(text: string): Partial<Record<keyof PrefixOwner, string>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null) return {};
  const record = parsed as Record<string, unknown>;
  const field = (name: keyof PrefixOwner) => (typeof record[name] === 'string' ? record[name] : undefined);
  return { engine: field('engine'), host: field('host'), dir: field('dir') };
}

/**
 * The claim of this engine on its key prefix: two engines writing under one prefix would upload
 * over each other's segments (shard names repeat across nodes) and delete each other's objects.
 *
 * The prefix belongs to the engine its ownership object names. When there is none (a new prefix,
 * or one written before ownership existed, which is adopted), this engine writes one naming
 * itself, conditionally where the server supports `If-None-Match`, then reads it back: of two
 * engines starting at once, the one whose write did not land sees the other's name and refuses.
 * On a server that ignores the condition, two engines whose writes and read-backs interleave
 * exactly (both read back before either's write is replaced) can both start; the window is one
 * request long, and only at the first start on a new prefix.
 */
export class PrefixOwnership {
  readonly #bucket: SegmentBucket;
  readonly #me: PrefixOwner;
  readonly #logger: Logger;
  #claimed = false;
  #claiming: Promise<void> | null = null;

  constructor(bucket: SegmentBucket, identity: string, dir: string, logger: Logger) {
    this.#bucket = bucket;
    this.#me = { engine: identity, host: hostname(), dir: resolve(dir), claimedAt: '' };
    this.#logger = logger;
  }

  get claimed(): boolean {
    return this.#claimed;
  }

  /**
   * Resolves once the prefix is this engine's; rejects with a ConfigError naming the prefix when
   * it is another's, UNAVAILABLE while the bucket cannot be asked (a later call asks again).
   */
  claim(): Promise<void> {
    if (this.#claimed) return Promise.resolve();
    this.#claiming ??= this.#claim()
      .then(() => {
        this.#claimed = true;
      })
      .finally(() => {
        this.#claiming = null;
      });
    return this.#claiming;
  }

  async #claim(): Promise<void> {
    const key = this.#bucket.ownerKey;
    let text = await this.#bucket.getText(key);
    if (text === null) {
      const record = { ...this.#me, claimedAt: new Date().toISOString() };
      await this.#bucket.putIfAbsent(key, `${JSON.stringify(record, null, 2)}\n`);
      text = await this.#bucket.getText(key);
      if (text === null) {
        throw new RobustMQError(ErrorCode.Unavailable, `${key} was written but cannot be read back yet`);
      }
      if (parseOwner(text).engine === this.#me.engine) {
        this.#logger.info(
          { bucket: this.#bucket.name, prefix: this.#bucket.prefix, key },
          'claimed the prefix',
        );
      }
    }
    const owner = parseOwner(text);
    if (owner.engine === this.#me.engine) return;
    const who =
      owner.engine === undefined
        ? 'no engine this one can read'
        : `engine ${owner.engine} (host ${owner.host ?? '?'}, data directory ${owner.dir ?? '?'})`;
    throw new ConfigError(
      'prefix',
      `${JSON.stringify(this.#bucket.prefix)} of bucket ${this.#bucket.name} belongs to another engine: ` +
        `${key} names ${who}, not this one (${this.#me.engine}, data directory ${this.#me.dir}). Two engines ` +
        "under one prefix overwrite and delete each other's segments. Give each engine a prefix of its own; " +
        `or, if that engine's data directory is gone for good, delete ${key} and this engine takes the prefix ` +
        'over (deleting the objects of shards it does not have)',
    );
  }
}
