import type { MetaEntry } from '@robustmq/core';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import { ByteReader, ByteWriter } from './bytes.js';

// "RMQM": marks the bytes as a meta state machine snapshot before anything else is trusted.
const MAGIC = 0x524d514d;
const FORMAT_VERSION = 1;

/**
 * Encodes the revision and the `count` entries, which must come in key order, as deterministic
 * bytes.
 */
export function encodeMetaSnapshot(
  revision: number,
  count: number,
  entries: Iterable<MetaEntry>,
): Uint8Array {
  const writer = new ByteWriter(64 * 1024);
  writer.u32(MAGIC);
  writer.u8(FORMAT_VERSION);
  writer.u53(revision);
  writer.u32(count);
  let written = 0;
  for (const entry of entries) {
    writer.string(entry.key);
    writer.u53(entry.createRevision);
    writer.u53(entry.modRevision);
    writer.u53(entry.version);
    writer.bytes(entry.value);
    written++;
  }
  if (written !== count)
    throw new RobustMQError(ErrorCode.Internal, `snapshot of ${count} entries got ${written}`);
  return writer.finish();
}

/** Decodes and checks a snapshot: keys strictly ascending, revisions consistent. Throws `CORRUPT`. */
export function decodeMetaSnapshot(bytes: Uint8Array): { revision: number; entries: MetaEntry[] } {
  const reader = new ByteReader(bytes, 'meta snapshot');
  if (reader.u32() !== MAGIC) reader.fail('not a meta snapshot');
  const version = reader.u8();
  if (version !== FORMAT_VERSION) reader.fail(`unknown format version ${version}`);
  const revision = reader.u53();
  const count = reader.u32();
  const entries: MetaEntry[] = [];
  let previous: string | undefined;
  for (let i = 0; i < count; i++) {
    const key = reader.string();
    const createRevision = reader.u53();
    const modRevision = reader.u53();
    const version = reader.u53();
    const value = reader.bytes();
    if (key.length === 0 || (previous !== undefined && key <= previous)) reader.fail('keys out of order');
    if (!(createRevision >= 1 && createRevision <= modRevision && modRevision <= revision && version >= 1)) {
      reader.fail(`inconsistent revisions for ${key}`);
    }
    entries.push({ key, value, createRevision, modRevision, version });
    previous = key;
  }
  reader.end();
  return { revision, entries };
}
