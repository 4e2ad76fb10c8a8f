import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { encodeTransferFrame, transferFields, type TransferFields } from '../src/transfer-frame.js';

// rhea's own frame reader checks the encoding independently of this package's code.
const require = createRequire(import.meta.url);
const frames = require('rhea/lib/frames.js') as {
  transfer(fields: Record<string, unknown>): unknown;
  disposition(fields: Record<string, unknown>): unknown;
  read_frame(buffer: Buffer): {
    size: number;
    type: number;
    channel: number;
    performative: Record<string, unknown> & { constructor: { toString(): string } };
    payload?: Buffer;
  };
};

const base: TransferFields = {
  handle: 0,
  deliveryId: 0,
  deliveryTag: Buffer.from('0'),
  messageFormat: 0,
  settled: false,
  more: false,
};

describe('transfer frames', () => {
  it.each([
    ['small numbers', base, 0],
    ['one-byte numbers', { ...base, handle: 7, deliveryId: 255, deliveryTag: Buffer.from('1234') }, 3],
    [
      'four-byte numbers, settled, more',
      {
        ...base,
        handle: 70_000,
        deliveryId: 0xffff_ffff,
        messageFormat: 0x1234_5678,
        settled: true,
        more: true,
      },
      65_535,
    ],
    ['an empty tag', { ...base, deliveryId: 256, deliveryTag: Buffer.alloc(0) }, 1],
    ['a 32-byte tag', { ...base, deliveryTag: Buffer.alloc(32, 7) }, 2],
  ])('reads back as written: %s', (_name, fields, channel) => {
    const payload = Buffer.from([0x00, 0x53, 0x75, 0xa0, 0x03, 1, 2, 3]);
    const frame = encodeTransferFrame(channel, fields, payload)!;
    const read = frames.read_frame(frame);
    expect(read.size).toBe(frame.length);
    expect(read.type).toBe(0);
    expect(read.channel).toBe(channel);
    expect(read.performative.constructor.toString()).toBe('transfer#14');
    expect(read.performative.handle).toBe(fields.handle);
    expect(read.performative.delivery_id).toBe(fields.deliveryId);
    expect(Buffer.from(read.performative.delivery_tag as Buffer)).toEqual(fields.deliveryTag);
    expect(read.performative.message_format).toBe(fields.messageFormat);
    expect(read.performative.settled).toBe(fields.settled);
    expect(read.performative.more).toBe(fields.more);
    expect(read.payload).toEqual(payload);
  });

  it('writes a numeric tag as its four big-endian bytes', () => {
    const frame = encodeTransferFrame(0, { ...base, deliveryTag: 0x0102_0304 }, Buffer.alloc(0))!;
    const read = frames.read_frame(frame);
    expect(Buffer.from(read.performative.delivery_tag as Buffer)).toEqual(Buffer.from([1, 2, 3, 4]));
    expect(encodeTransferFrame(0, { ...base, deliveryTag: -1 }, Buffer.alloc(0))).toBeNull();
  });

  it('takes the fields from the transfer rhea builds for a delivery, and nothing else', () => {
    const tag = Buffer.from('17');
    const built = frames.transfer({
      handle: 1,
      message_format: 0,
      delivery_id: 300,
      delivery_tag: tag,
      settled: false,
      more: false,
    });
    expect(transferFields(built)).toEqual({ ...base, handle: 1, deliveryId: 300, deliveryTag: tag });
    expect(
      transferFields(frames.transfer({ handle: 1, delivery_id: 2, state: null, resume: true })),
    ).toBeNull();
    expect(transferFields(frames.disposition({ role: true, first: 1 }))).toBeNull();
    expect(transferFields(undefined)).toBeNull();
  });

  it('leaves to rhea what it does not write', () => {
    const payload = Buffer.alloc(1);
    expect(encodeTransferFrame(0, { ...base, deliveryTag: Buffer.alloc(33) }, payload)).toBeNull();
    expect(encodeTransferFrame(0, { ...base, deliveryId: null as unknown as number }, payload)).toBeNull();
    expect(encodeTransferFrame(0, { ...base, handle: -1 }, payload)).toBeNull();
    expect(encodeTransferFrame(0, { ...base, messageFormat: 2 ** 32 }, payload)).toBeNull();
    expect(encodeTransferFrame(70_000, base, payload)).toBeNull();
  });
});
