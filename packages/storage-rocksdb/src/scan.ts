import type { IteratorOptions, RocksDatabase } from './binding.js';

/** Entries fetched per round trip to the native iterator. */
const CHUNK = 256;
/** Bytes after which one round trip stops filling, so a scan holds little in memory at once. */
const CHUNK_BYTES = 1024 * 1024;

/** Key-value pairs of a key range in key order (reverse when asked); the iterator is always closed. */
export async function* entries(
  db: RocksDatabase,
  options: IteratorOptions,
): AsyncGenerator<[Buffer, Buffer]> {
  const iterator = db.iterator({ highWaterMarkBytes: CHUNK_BYTES, ...options });
  try {
    for (;;) {
      const rows = await iterator.nextv(CHUNK);
      if (rows.length === 0) return;
      yield* rows;
    }
  } finally {
    await iterator.close();
  }
}

/** The first key of a range (the last with `reverse`), without reading its value; undefined when empty. */
export async function firstKey(db: RocksDatabase, options: IteratorOptions): Promise<Buffer | undefined> {
  const iterator = db.iterator({ ...options, limit: 1, values: false });
  try {
    const rows = await iterator.nextv(1);
    return rows[0]?.[0];
  } finally {
    await iterator.close();
  }
}
