import { createRequire } from 'node:module';
import { ErrorCode, RobustMQError } from '@robustmq/core';

/** One operation of an atomic write batch. */
export type WriteOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** A key range; bounds are raw keys compared byte by byte. */
export interface KeyRange {
  gte?: Buffer;
  lt?: Buffer;
  lte?: Buffer;
}

export interface IteratorOptions extends KeyRange {
  reverse?: boolean;
  limit?: number;
  keys?: boolean;
  values?: boolean;
  /** Stop filling one `nextv` call once this many key and value bytes are in it. */
  highWaterMarkBytes?: number;
}

export interface RocksIterator {
  /** Up to `size` entries; an empty array once the range is exhausted. */
  nextv(size: number): Promise<[Buffer, Buffer][]>;
  close(): Promise<void>;
}

/** The part of `@nxtedition/rocksdb`'s RocksLevel (an abstract-level database) this engine uses. */
export interface RocksDatabase {
  open(options: { createIfMissing: boolean }): Promise<void>;
  close(): Promise<void>;
  /** Applies `ops` atomically; with `sync` the write-ahead log is fsynced before it resolves. */
  batch(ops: WriteOp[], options: { sync: boolean }): Promise<void>;
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
  iterator(options: IteratorOptions): RocksIterator;
  /** Deletes a key range with one RocksDB DeleteRange (unsynced). */
  clear(range: { gte: Buffer; lt: Buffer }): Promise<void>;
}

type RocksLevelClass = new (
  location: string,
  options: { keyEncoding: 'buffer'; valueEncoding: 'buffer' },
) => RocksDatabase;

let loaded: RocksLevelClass | undefined;

/**
 * Loads the native binding on first use, so that importing this package never fails: only
 * opening an engine needs the prebuilt binary for this platform.
 */
function rocksLevel(): RocksLevelClass {
  if (loaded !== undefined) return loaded;
  try {
    const binding = createRequire(import.meta.url)('@nxtedition/rocksdb') as { RocksLevel: RocksLevelClass };
    loaded = binding.RocksLevel;
    return loaded;
  } catch (error) {
    const platform = `${process.platform}-${process.arch}`;
    throw new RobustMQError(
      ErrorCode.Internal,
      `the RocksDB binding (@nxtedition/rocksdb) has no prebuilt binary that loads on ${platform}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** A RocksDB database at `location` whose keys and values are Buffers; not yet opened. */
export function createDatabase(location: string): RocksDatabase {
  const RocksLevel = rocksLevel();
  return new RocksLevel(location, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
}
