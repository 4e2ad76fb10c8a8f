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
  /** The tag's bytes, or a number standing for its four big-endian bytes (the broker's own tags). */
  deliveryTag: Buffer | number;
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
  const numericTag = typeof deliveryTag === 'number';
  if (numericTag ? !isUint(deliveryTag) : !Buffer.isBuffer(deliveryTag) || deliveryTag.length > 32)
    return null;
  const tagLength = numericTag ? 4 : deliveryTag.length;
  if (!Number.isInteger(channel) || channel < 0 || channel > 0xffff) return null;
  // list8: count, handle, delivery-id, delivery-tag (vbin8), message-format, settled, more.
  const listBytes =
    1 + uintBytes(handle) + uintBytes(deliveryId) + 2 + tagLength + uintBytes(messageFormat) + 2;
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
  frame[pos + 1] = tagLength;
  if (numericTag) frame.writeUInt32BE(deliveryTag, pos + 2);
  else deliveryTag.copy(frame, pos + 2);
  pos = writeUint(frame, pos + 2 + tagLength, messageFormat);
  frame[pos] = settled ? 0x41 : 0x42;
  frame[pos + 1] = more ? 0x41 : 0x42;
  payload.copy(frame, pos + 2);
  return frame;
}

/** The bytes of a numeric delivery tag, for rhea, which takes tags as bytes. */
export function tagBytes(tag: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(tag);
  return bytes;
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

/**
 * The fields of an incoming transfer the broker reads itself. One object per connection is filled
 * again for each frame, so reading a transfer allocates nothing but the payload's view.
 */
export class IncomingTransfer {
  channel = 0;
  handle = 0;
  deliveryId = 0;
  messageFormat = 0;
  settled = false;
  /** Where the payload starts within the frame's buffer. */
  payloadStart = 0;
}

/** Reads a uint (0x43 uint0, 0x52 smalluint, 0x70 uint) at `pos`; -1 when it is something else. */
function readUint(buffer: Buffer, pos: number, end: number): number {
  if (pos >= end) return -1;
  switch (buffer[pos]) {
    case 0x43:
      return 0;
    case 0x52:
      return pos + 1 < end ? buffer[pos + 1]! : -1;
    case 0x70:
      return pos + 5 <= end ? buffer.readUInt32BE(pos + 1) : -1;
    default:
      return -1;
  }
}

function uintWidth(code: number | undefined): number {
  return code === 0x43 ? 1 : code === 0x52 ? 2 : 5;
}

/** A boolean (0x41, 0x42, 0x56 xx) or null at `pos`: 1 true, 0 false or null, -1 anything else. */
function readFlag(buffer: Buffer, pos: number, end: number): number {
  switch (buffer[pos]) {
    case 0x41:
      return 1;
    case 0x40:
    case 0x42:
      return 0;
    case 0x56:
      return pos + 1 < end && buffer[pos + 1]! <= 1 ? buffer[pos + 1]! : -1;
    default:
      return -1;
  }
}

function flagWidth(code: number | undefined): number {
  return code === 0x56 ? 2 : 1;
}

/**
 * Reads the frame at `start`..`end` into `out` when it is a transfer the broker takes itself: one
 * whole message (not `more`, not aborted, no resume or state), with handle, delivery-id and
 * delivery-tag given, rcv-settle-mode left to the link, the performative in its usual encoding.
 * Anything else, valid or not, gives false and goes to rhea, which answers it as before.
 */
export function readIncomingTransfer(
  buffer: Buffer,
  start: number,
  end: number,
  out: IncomingTransfer,
): boolean {
  const doff = buffer[start + 4]!;
  let pos = start + doff * 4;
  // Described by the small ulong 0x14, then a list8 or list32.
  if (buffer[start + 5] !== 0 || pos + 5 > end) return false;
  if (buffer[pos] !== 0x00 || buffer[pos + 1] !== 0x53 || buffer[pos + 2] !== TRANSFER) return false;
  pos += 3;
  let listEnd: number;
  let count: number;
  if (buffer[pos] === 0xc0) {
    if (pos + 3 > end) return false;
    listEnd = pos + 2 + buffer[pos + 1]!;
    count = buffer[pos + 2]!;
    pos += 3;
  } else if (buffer[pos] === 0xd0) {
    if (pos + 9 > end) return false;
    listEnd = pos + 5 + buffer.readUInt32BE(pos + 1);
    count = buffer.readUInt32BE(pos + 5);
    pos += 9;
  } else {
    return false;
  }
  if (listEnd > end || count < 3 || count > 11) return false;
  const handle = readUint(buffer, pos, listEnd);
  if (handle < 0) return false;
  pos += uintWidth(buffer[pos]);
  const deliveryId = readUint(buffer, pos, listEnd);
  if (deliveryId < 0) return false;
  pos += uintWidth(buffer[pos]);
  // delivery-tag: binary of up to 32 bytes; the broker does not keep it.
  if (buffer[pos] !== 0xa0 || pos + 2 > listEnd || buffer[pos + 1]! > 32) return false;
  pos += 2 + buffer[pos + 1]!;
  let messageFormat = 0;
  let settled = 0;
  for (let field = 3; field < count; field++) {
    if (pos >= listEnd) return false;
    const code = buffer[pos];
    switch (field) {
      case 3:
        if (code === 0x40) {
          pos += 1;
        } else {
          messageFormat = readUint(buffer, pos, listEnd);
          if (messageFormat < 0) return false;
          pos += uintWidth(code);
        }
        break;
      case 4:
        settled = readFlag(buffer, pos, listEnd);
        if (settled < 0) return false;
        pos += flagWidth(code);
        break;
      case 6:
      case 7:
        // rcv-settle-mode and state: only when absent.
        if (code !== 0x40) return false;
        pos += 1;
        break;
      case 10: {
        // batchable: a hint, either way.
        if (readFlag(buffer, pos, listEnd) < 0) return false;
        pos += flagWidth(code);
        break;
      }
      default: {
        // more, resume, aborted: only when false or absent.
        if (readFlag(buffer, pos, listEnd) !== 0) return false;
        pos += flagWidth(code);
      }
    }
  }
  if (pos !== listEnd) return false;
  out.handle = handle;
  out.deliveryId = deliveryId;
  out.messageFormat = messageFormat;
  out.settled = settled === 1;
  out.channel = buffer.readUInt16BE(start + 6);
  out.payloadStart = listEnd;
  return true;
}
