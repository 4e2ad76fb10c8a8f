// Small helpers over log entries.
import type { Entry } from './types.js';

/** Bytes an entry counts for in size limits: its data plus a fixed allowance for index, term and type. */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + 16;
}

/** The longest prefix of `entries` whose total size stays within `maxBytes`, but at least one entry. */
export function limitSize(entries: readonly Entry[], maxBytes: number): Entry[] {
  let size = 0;
  let count = 0;
  for (const entry of entries) {
    size += entrySize(entry);
    if (count > 0 && size > maxBytes) break;
    count++;
  }
  return entries.slice(0, count);
}
