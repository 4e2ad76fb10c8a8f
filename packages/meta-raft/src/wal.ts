import type { FileHandle } from 'node:fs/promises';
import { constants, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import type { Logger } from '@robustmq/core';
import { MAX_COMMAND_BYTES } from './command.js';
import { syncDirectory, writeAll } from './fs-util.js';

/** One logged entry: its position in the sequence of commands and the command's bytes. */
export interface WalRecord {
  index: number;
  data: Uint8Array;
  /** Byte offset of the record in the file, where the log is cut if the record is refused. */
  offset: number;
}

// Each record: u32 payload length, u32 CRC32C over (length bytes ‖ payload), then the payload:
// u64 index ‖ command bytes. The CRC covers the length so a damaged length is caught too.
const HEADER_BYTES = 8;
const INDEX_BYTES = 8;
const MAX_PAYLOAD_BYTES = INDEX_BYTES + MAX_COMMAND_BYTES;

/**
 * The write-ahead log of meta commands in one file. Appends are written and fdatasync'ed before
 * they resolve; one append carries a whole group of commands so they share an fsync.
 */
export class WriteAheadLog {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    private end: number,
  ) {}

  /**
   * Opens (creating) the log at `path` and reads its records. A torn or damaged record ends the
   * log: it and everything after it are cut off, with a warning.
   */
  static async open(path: string, logger: Logger): Promise<{ log: WriteAheadLog; records: WalRecord[] }> {
    let handle: FileHandle;
    let created = false;
    try {
      handle = await open(path, constants.O_RDWR);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o644);
      created = true;
    }
    try {
      if (created) await syncDirectory(dirname(path));
      const bytes = await handle.readFile();
      const { records, end, problem } = scanRecords(bytes);
      const log = new WriteAheadLog(handle, path, bytes.length);
      if (problem !== null) {
        logger.warn(
          { file: path, offset: end, droppedBytes: bytes.length - end, reason: problem },
          'meta log cut at its last good record',
        );
        await log.truncate(end);
      }
      return { log, records };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Bytes in the log file. */
  get size(): number {
    return this.end;
  }

  /** Appends records `firstIndex`, `firstIndex + 1`, … and resolves once they are on disk. */
  async append(firstIndex: number, entries: readonly Uint8Array[]): Promise<void> {
    let total = 0;
    for (const data of entries) total += HEADER_BYTES + INDEX_BYTES + data.length;
    const buffer = Buffer.allocUnsafe(total);
    let position = 0;
    entries.forEach((data, i) => {
      position = writeRecord(buffer, position, firstIndex + i, data);
    });
    await writeAll(this.handle, buffer, this.end);
    await this.handle.datasync();
    this.end += total;
  }

  /** Cuts the log to its first `offset` bytes, durably. */
  async truncate(offset: number): Promise<void> {
    await this.handle.truncate(offset);
    await this.handle.datasync();
    this.end = offset;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function writeRecord(buffer: Buffer, position: number, index: number, data: Uint8Array): number {
  const payloadLength = INDEX_BYTES + data.length;
  buffer.writeUInt32BE(payloadLength, position);
  const payloadStart = position + HEADER_BYTES;
  buffer.writeUInt32BE(Math.floor(index / 2 ** 32), payloadStart);
  buffer.writeUInt32BE(index % 2 ** 32, payloadStart + 4);
  buffer.set(data, payloadStart + INDEX_BYTES);
  const crc = crc32c(
    buffer.subarray(payloadStart, payloadStart + payloadLength),
    crc32c(buffer.subarray(position, position + 4)),
  );
  buffer.writeUInt32BE(crc, position + 4);
  return payloadStart + payloadLength;
}

/** The well-framed records from the start of `bytes`, where they end, and why scanning stopped early. */
export function scanRecords(bytes: Buffer): { records: WalRecord[]; end: number; problem: string | null } {
  const records: WalRecord[] = [];
  let position = 0;
  let previousIndex: number | undefined;
  while (position < bytes.length) {
    if (bytes.length - position < HEADER_BYTES) return stop('torn tail: incomplete record header');
    const payloadLength = bytes.readUInt32BE(position);
    if (payloadLength < INDEX_BYTES || payloadLength > MAX_PAYLOAD_BYTES)
      return stop(`bad record length ${payloadLength}`);
    const payloadStart = position + HEADER_BYTES;
    const payloadEnd = payloadStart + payloadLength;
    if (payloadEnd > bytes.length) return stop('torn tail: record runs past the end of the file');
    const payload = bytes.subarray(payloadStart, payloadEnd);
    const expected = bytes.readUInt32BE(position + 4);
    if (crc32c(payload, crc32c(bytes.subarray(position, position + 4))) !== expected)
      return stop('checksum mismatch');
    const high = payload.readUInt32BE(0);
    const index = high * 2 ** 32 + payload.readUInt32BE(4);
    if (high >= 2 ** 21 || (previousIndex !== undefined && index !== previousIndex + 1)) {
      return stop(`record index ${index} does not follow ${previousIndex ?? 'the start'}`);
    }
    records.push({ index, data: payload.subarray(INDEX_BYTES), offset: position });
    previousIndex = index;
    position = payloadEnd;
  }
  return { records, end: position, problem: null };

  function stop(problem: string): { records: WalRecord[]; end: number; problem: string } {
    return { records, end: position, problem };
  }
}
