import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { ATTACHMENT_MIN_BYTES, decodeBody, encodeBody } from '../src/body.js';
import {
  encodeFrame,
  FrameKind,
  FrameReader,
  PREAMBLE,
  ProtocolError,
  type EncodedFrame,
} from '../src/frame.js';

const toBuffer = (frame: EncodedFrame): Buffer => Buffer.concat(frame.parts);

describe('body encoding', () => {
  it('round-trips structured values, keeping small and large byte arrays as Uint8Array', () => {
    const large = new Uint8Array(ATTACHMENT_MIN_BYTES * 3).map((_, i) => i % 251);
    const value = {
      shard: 'orders/0',
      offset: 2 ** 40,
      small: new Uint8Array([1, 2, 3]),
      batches: [large, large.subarray(5)],
    };
    const encoded = encodeBody(value);
    // The large arrays travel beside the MessagePack head, not inside it.
    expect(encoded.attachments).toHaveLength(2);
    expect(encoded.head.byteLength).toBeLessThan(100);
    const head = encoded.head.slice();
    const decoded = decodeBody(head, Buffer.concat(encoded.attachments)) as typeof value;
    expect(decoded.shard).toBe('orders/0');
    expect(decoded.offset).toBe(2 ** 40);
    expect(decoded.small).toEqual(new Uint8Array([1, 2, 3]));
    expect(Buffer.from(decoded.batches[0]!).equals(Buffer.from(large))).toBe(true);
    expect(Buffer.from(decoded.batches[1]!).equals(Buffer.from(large.subarray(5)))).toBe(true);
  });

  it('refuses attachment bytes that do not match the head', () => {
    const encoded = encodeBody({ data: new Uint8Array(ATTACHMENT_MIN_BYTES) });
    const head = encoded.head.slice();
    expect(() => decodeBody(head, new Uint8Array(10))).toThrow(/beyond the frame/);
    expect(() => decodeBody(head, new Uint8Array(ATTACHMENT_MIN_BYTES + 1))).toThrow(/left over/);
  });
});

describe('frames', () => {
  const frames = [
    encodeFrame(
      { kind: FrameKind.Request, callId: 7, aux: 1500, method: 'journal.append', body: { n: 1 } },
      1 << 20,
    ),
    encodeFrame({ kind: FrameKind.Credit, callId: 8, aux: 32 }, 1 << 20),
    encodeFrame({ kind: FrameKind.Response, callId: 7, body: new Uint8Array(100_000).fill(9) }, 1 << 20),
    encodeFrame({ kind: FrameKind.StreamEnd, callId: 9 }, 1 << 20),
  ];
  const wire = Buffer.concat([PREAMBLE, ...frames.map(toBuffer)]);

  function readAll(reader: FrameReader) {
    const out = [];
    for (let frame = reader.next(); frame; frame = reader.next()) out.push(frame);
    return out;
  }

  it('parses frames whatever the chunking, including one byte at a time', () => {
    for (const chunkSize of [1, 3, 17, 4096, 65_536, 99_999, wire.byteLength]) {
      const reader = new FrameReader(1 << 20);
      const got = [];
      for (let at = 0; at < wire.byteLength; at += chunkSize) {
        reader.push(wire.subarray(at, at + chunkSize));
        got.push(...readAll(reader));
      }
      expect(got.map((f) => [f.kind, f.callId, f.aux, f.method])).toEqual([
        [FrameKind.Request, 7, 1500, 'journal.append'],
        [FrameKind.Credit, 8, 32, ''],
        [FrameKind.Response, 7, 0, ''],
        [FrameKind.StreamEnd, 9, 0, ''],
      ]);
      expect(decodeBody(got[0]!.head!, got[0]!.attachments)).toEqual({ n: 1 });
      expect(got[1]!.head).toBeUndefined();
      const bytes = decodeBody(got[2]!.head!, got[2]!.attachments) as Uint8Array;
      expect(bytes.byteLength).toBe(100_000);
      expect(bytes.every((b) => b === 9)).toBe(true);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('refuses a bad preamble as soon as its first byte differs', () => {
    const reader = new FrameReader(1 << 20);
    reader.push(Buffer.from('GET'));
    expect(() => reader.next()).toThrow(ProtocolError);
  });

  it('refuses a length prefix above the maximum before reading the frame', () => {
    const reader = new FrameReader(1024);
    reader.push(Buffer.concat([PREAMBLE, Buffer.from([0x7f, 0xff, 0xff, 0xff])]));
    expect(() => reader.next()).toThrow(/exceeds the maximum/);
  });

  it('refuses unknown kinds and lengths that run past the frame', () => {
    const bad = toBuffer(frames[0]!);
    bad.writeUInt8(99, 4);
    const reader = new FrameReader(1 << 20);
    reader.push(Buffer.concat([PREAMBLE, bad]));
    expect(() => reader.next()).toThrow(/unknown frame kind/);

    const long = toBuffer(frames[0]!);
    long.writeUInt16BE(60_000, 14);
    const reader2 = new FrameReader(1 << 20);
    reader2.push(Buffer.concat([PREAMBLE, long]));
    expect(() => reader2.next()).toThrow(/past the frame/);
  });

  it('will not encode a frame above the maximum', () => {
    let error: unknown;
    try {
      encodeFrame({ kind: FrameKind.Response, callId: 1, body: new Uint8Array(2048) }, 1024);
    } catch (e) {
      error = e;
    }
    expect(isRobustMQError(error, ErrorCode.TooLarge)).toBe(true);
  });
});
