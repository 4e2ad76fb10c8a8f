import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { syncDirectory, writeAll } from './fs-util.js';

// Layout: 8-byte magic, u32 CRC32C of the rest, u64 index of the last command it includes, then the
// state machine's snapshot bytes.
const MAGIC = Buffer.from('RMQMSNAP', 'latin1');
const HEADER_BYTES = MAGIC.length + 4 + 8;

/** A state machine snapshot on disk and the index of the last logged command it includes. */
export interface SnapshotFile {
  index: number;
  data: Uint8Array;
}

/**
 * Writes the snapshot atomically: a temporary file, fsync'ed, renamed over the old one, then the
 * directory fsync'ed, so a crash leaves either the old snapshot or the new one, whole.
 */
export async function writeSnapshotFile(path: string, snapshot: SnapshotFile): Promise<void> {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(Math.floor(snapshot.index / 2 ** 32), MAGIC.length + 4);
  header.writeUInt32BE(snapshot.index % 2 ** 32, MAGIC.length + 8);
  const crc = crc32c(snapshot.data, crc32c(header.subarray(MAGIC.length + 4)));
  header.writeUInt32BE(crc, MAGIC.length);

  const temporary = `${path}.tmp`;
  const handle = await open(temporary, 'w', 0o644);
  try {
    await writeAll(handle, header, 0);
    await writeAll(handle, snapshot.data, header.length);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
}

/**
 * Reads the snapshot at `path`, or null if there is none. A damaged snapshot throws `CORRUPT`:
 * there is nothing older to fall back on, and serving a wrong state is worse than not starting.
 * A temporary file left by a crash mid-write is removed.
 */
export async function readSnapshotFile(path: string): Promise<SnapshotFile | null> {
  await rm(`${path}.tmp`, { force: true });
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const corrupt = (reason: string): RobustMQError =>
    new RobustMQError(ErrorCode.Corrupt, `meta snapshot ${path}: ${reason}`);
  if (bytes.length < HEADER_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC))
    throw corrupt('not a snapshot file');
  const expected = bytes.readUInt32BE(MAGIC.length);
  if (crc32c(bytes.subarray(MAGIC.length + 4)) !== expected) throw corrupt('checksum mismatch');
  const high = bytes.readUInt32BE(MAGIC.length + 4);
  if (high >= 2 ** 21) throw corrupt('index above 2^53');
  const index = high * 2 ** 32 + bytes.readUInt32BE(MAGIC.length + 8);
  return { index, data: bytes.subarray(HEADER_BYTES) };
}
