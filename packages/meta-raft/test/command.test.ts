import { ErrorCode } from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import type { MetaCommand } from '../src/index.js';
import { checkMetaCommand, encodeMetaEntry } from '../src/command.js';
import {
  decodeMetaCommand,
  decodeMetaEntry,
  encodeMetaCommand,
  encodeMetaCommandBatch,
  MAX_COMMAND_BYTES,
} from '../src/index.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('meta command encoding', () => {
  const command: MetaCommand = {
    ops: [
      { type: 'put', key: '/topics/orders', value: text('{"partitions":3}') },
      { type: 'put', key: '/locks/ü-日本', value: new Uint8Array(0), ifRevision: 0 },
      { type: 'delete', key: '/old', ifRevision: 2 ** 40 + 7 },
      { type: 'delete', key: '/gone' },
    ],
  };

  it('round-trips every op shape', () => {
    expect(decodeMetaCommand(encodeMetaCommand(command))).toEqual(command);
    expect(decodeMetaCommand(encodeMetaCommand({ ops: [] }))).toEqual({ ops: [] });
  });

  it('encodes the same command to the same bytes', () => {
    const copy: MetaCommand = structuredClone(command);
    expect(Buffer.from(encodeMetaCommand(copy)).equals(Buffer.from(encodeMetaCommand(command)))).toBe(true);
  });

  it('decodes values as copies, independent of the encoded buffer', () => {
    const bytes = encodeMetaCommand({ ops: [{ type: 'put', key: '/k', value: text('abc') }] });
    const decoded = decodeMetaCommand(bytes);
    bytes.fill(0);
    expect(decoded.ops[0]).toEqual({ type: 'put', key: '/k', value: text('abc') });
  });

  it('refuses malformed bytes with CORRUPT', () => {
    const bytes = encodeMetaCommand(command);
    const corrupt = { code: ErrorCode.Corrupt };
    expect(() => decodeMetaCommand(bytes.subarray(0, bytes.length - 1))).toThrow(
      expect.objectContaining(corrupt) as Error,
    );
    expect(() => decodeMetaCommand(new Uint8Array([...bytes, 0]))).toThrow(
      expect.objectContaining(corrupt) as Error,
    );
    expect(() => decodeMetaCommand(new Uint8Array([9, ...bytes.subarray(1)]))).toThrow(
      expect.objectContaining(corrupt) as Error,
    );
    const badKind = new Uint8Array(bytes);
    badKind[5] = 7;
    expect(() => decodeMetaCommand(badKind)).toThrow(expect.objectContaining(corrupt) as Error);
    expect(() => decodeMetaCommand(new Uint8Array(0))).toThrow(expect.objectContaining(corrupt) as Error);
  });

  it('refuses invalid commands with INVALID_ARGUMENT before encoding', () => {
    const invalid = { code: ErrorCode.InvalidArgument };
    expect(() => encodeMetaCommand({ ops: [{ type: 'delete', key: '' }] })).toThrow(
      expect.objectContaining(invalid) as Error,
    );
    expect(() =>
      encodeMetaCommand({
        ops: [
          { type: 'delete', key: '/k' },
          { type: 'delete', key: '/k' },
        ],
      }),
    ).toThrow(expect.objectContaining(invalid) as Error);
  });

  it('refuses a command above the size limit with TOO_LARGE', () => {
    const value = new Uint8Array(MAX_COMMAND_BYTES);
    expect(() => encodeMetaCommand({ ops: [{ type: 'put', key: '/big', value }] })).toThrow(
      expect.objectContaining({ code: ErrorCode.TooLarge }) as Error,
    );
  });

  it('packs several commands into one Raft entry and reads a lone command as one', () => {
    const other: MetaCommand = { ops: [{ type: 'put', key: '/b', value: text('2') }] };
    const entry = encodeMetaCommandBatch([encodeMetaCommand(command), encodeMetaCommand(other)]);
    expect(decodeMetaEntry(entry)).toEqual([command, other]);
    expect(decodeMetaEntry(encodeMetaCommand(other))).toEqual([other]);
    expect(() => decodeMetaEntry(entry.subarray(0, entry.length - 1))).toThrow(
      expect.objectContaining({ code: ErrorCode.Corrupt }),
    );
  });

  it('encodes entries in one pass to the same bytes as command by command', () => {
    const other: MetaCommand = { ops: [{ type: 'put', key: '/b', value: text('2') }] };
    const sizes = [command, other].map(checkMetaCommand);
    expect(sizes).toEqual([encodeMetaCommand(command).length, encodeMetaCommand(other).length]);
    const batch = encodeMetaEntry([command, other], sizes);
    expect(Buffer.from(batch.data)).toEqual(
      Buffer.from(encodeMetaCommandBatch([encodeMetaCommand(command), encodeMetaCommand(other)])),
    );
    expect(batch.commands).toEqual([command, other]);
    const lone = encodeMetaEntry([other], [sizes[1]!]);
    expect(Buffer.from(lone.data)).toEqual(Buffer.from(encodeMetaCommand(other)));
    expect(decodeMetaEntry(lone.data)).toEqual(lone.commands);
  });

  it('gives back encoded commands whose values are the entry bytes, not the caller arrays', () => {
    const value = text('abc');
    const put: MetaCommand = { ops: [{ type: 'put', key: '/k', value, ifRevision: 3 }] };
    const { data, commands } = encodeMetaEntry([put, put], [checkMetaCommand(put), checkMetaCommand(put)]);
    value.fill(0);
    expect(commands[0]!.ops[0]).toEqual({ type: 'put', key: '/k', value: text('abc'), ifRevision: 3 });
    const view = (commands[1]!.ops[0] as { value: Uint8Array }).value;
    expect(view.buffer).toBe(data.buffer);
    expect(view).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(view)).toBe(false);
  });

  it('checks commands without encoding them, as encoding does', () => {
    expect(() => checkMetaCommand({ ops: [{ type: 'delete', key: '' }] })).toThrow(
      expect.objectContaining({ code: ErrorCode.InvalidArgument }),
    );
    expect(() =>
      checkMetaCommand({
        ops: [
          { type: 'delete', key: '/twice' },
          { type: 'delete', key: '/twice' },
        ],
      }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.InvalidArgument }));
    const big = new Uint8Array(MAX_COMMAND_BYTES);
    expect(() => checkMetaCommand({ ops: [{ type: 'put', key: '/big', value: big }] })).toThrow(
      expect.objectContaining({ code: ErrorCode.TooLarge }),
    );
  });

  it('decodes an entry once: its values survive changes to the bytes it was read from', () => {
    const other: MetaCommand = { ops: [{ type: 'put', key: '/日本/b', value: text('2') }] };
    const entry = encodeMetaCommandBatch([encodeMetaCommand(command), encodeMetaCommand(other)]);
    const decoded = decodeMetaEntry(entry);
    entry.fill(0);
    expect(decoded).toEqual([command, other]);
    const bad = encodeMetaCommand({ ops: [{ type: 'delete', key: '/\u00ff' }] });
    bad[bad.length - 1] = 0xff; // not UTF-8
    expect(() => decodeMetaEntry(bad)).toThrow(expect.objectContaining({ code: ErrorCode.Corrupt }));
  });
});
