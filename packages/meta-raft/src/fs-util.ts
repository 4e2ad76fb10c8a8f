import type { FileHandle } from 'node:fs/promises';
import { writeSync } from 'node:fs';
import { open } from 'node:fs/promises';

/** Makes a directory's entries (a created, renamed or removed file) durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `bytes` at `position`: a single write(2) may write less than asked. */
export async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

/** {@link writeAll} with blocking calls, for a file descriptor no asynchronous call is using. */
export function writeAllSync(fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  while (written < bytes.length) {
    written += writeSync(fd, bytes, written, bytes.length - written, position + written);
  }
}
