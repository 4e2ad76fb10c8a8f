/*
 * AMQP 1.0 `transfer` frames written directly (part 2.3.1 frame layout, 2.7.5 transfer, 1.6 type
 * encodings). rhea encodes every frame through its generic type writer, which allocates a 1 KiB
 * buffer per frame; transfers are one frame per delivered message, so the broker writes those
 * itself and leaves every other frame to rhea.
 */

/** The fields of a transfer as rhea builds it for an outgoing delivery. */
export interface TransferFields {
  handle: number;
  deliveryId: number;
  deliveryTag: Buffer;
  messageFormat: number;
  settled: boolean;
  more: boolean;
}

const UINT_MAX = 0xffff_ffff;

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= UINT_MAX;
}

function uintBytes(value: number): number {
  return value === 0 ? 1 : value < 256 ? 2 : 5;
}

function writeUint(buffer: Buffer, pos: number, value: number): number {
  if (value === 0) {
    buffer[pos] = 0x43;
    return pos + 1;
  }
  if (value < 256) {
    buffer[pos] = 0x52;
    buffer[pos + 1] = value;
    return pos + 2;
  }
  buffer[pos] = 0x70;
  buffer.writeUInt32BE(value, pos + 1);
  return pos + 5;
}

/**
 * The whole frame (header, performative, payload) for a transfer on `channel`, or null when the
 * fields are outside what this writes (then rhea writes the frame).
 */
export function encodeTransferFrame(channel: number, fields: TransferFields, payload: Buffer): Buffer | null {
  const { handle, deliveryId, deliveryTag, messageFormat, settled, more } = fields;
  if (!isUint(handle) || !isUint(deliveryId) || !isUint(messageFormat)) return null;
  if (!Buffer.isBuffer(deliveryTag) || deliveryTag.length > 32) return null;
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) return null;
  // list8: count, handle, delivery-id, delivery-tag (vbin8), message-format, settled, more.
  const listBytes =
    1 + uintBytes(handle) + uintBytes(deliveryId) + 2 + deliveryTag.length + uintBytes(messageFormat) + 2;
  const size = 8 + 3 + 2 + listBytes + payload.length;
  const frame = Buffer.allocUnsafe(size);
  frame.writeUInt32BE(size, 0);
  frame[4] = 2;
  frame[5] = 0;
  frame.writeUInt16BE(channel, 6);
  frame[8] = 0x00;
  frame[9] = 0x53;
  frame[10] = 0x14;
  frame[11] = 0xc0;
  frame[12] = listBytes;
  frame[13] = 6;
  let pos = writeUint(frame, 14, handle);
  pos = writeUint(frame, pos, deliveryId);
  frame[pos] = 0xa0;
  frame[pos + 1] = deliveryTag.length;
  deliveryTag.copy(frame, pos + 2);
  pos = writeUint(frame, pos + 2 + deliveryTag.length, messageFormat);
  frame[pos] = settled ? 0x41 : 0x42;
  frame[pos + 1] = more ? 0x41 : 0x42;
  payload.copy(frame, pos + 2);
  return frame;
}

/** rhea's transfer performative: a composite whose constructor carries its descriptor code. */
interface RheaPerformative {
  constructor: { descriptor?: { numeric?: number } };
  value: unknown[];
  handle: unknown;
  delivery_id: unknown;
  delivery_tag: unknown;
  message_format: unknown;
  settled: unknown;
  more: unknown;
}

const TRANSFER = 0x14;
/** handle, delivery-id, delivery-tag, message-format, settled, more: what rhea sets on a delivery's transfer. */
const TRANSFER_FIELDS = 6;

/** The fields of a transfer rhea built for an outgoing delivery, or null for any other frame. */
export function transferFields(performative: unknown): TransferFields | null {
  const p = performative as RheaPerformative | null;
  if (p?.constructor?.descriptor?.numeric !== TRANSFER || p.value.length > TRANSFER_FIELDS) return null;
  return {
    handle: p.handle as number,
    deliveryId: p.delivery_id as number,
    deliveryTag: p.delivery_tag as Buffer,
    messageFormat: p.message_format as number,
    settled: p.settled === true,
    more: p.more === true,
  };
}
