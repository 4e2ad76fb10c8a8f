import { ErrorCode, RobustMQError } from '@robustmq/core';
import { encodeBody } from './body.js';

/**
 * The wire format. Each side first sends the 8-byte {@link PREAMBLE}, then frames:
 *
 * ```
 * u32 length of the rest of the frame (big-endian, like every integer here)
 * u8  kind            FrameKind
 * u8  flags           FrameFlag bits
 * u32 call id         chosen by the client, unique among its calls in flight
 * u32 aux             request: deadline in ms from receipt (0 = none); credit: items granted
 *                     (a stream request is followed at once by a Credit frame for its window)
 * u16 method length   then the method name, UTF-8 (requests only; 0 otherwise)
 * u32 head length     then the MessagePack head of the body (0 = no body)
 * ...                 the body's attachments, back to back (see body.ts)
 * ```
 */
export const PREAMBLE = Buffer.from('RMQRPC\x00\x01', 'latin1');

export const FrameKind = {
  Request: 1,
  Response: 2,
  Error: 3,
  StreamItem: 4,
  StreamEnd: 5,
  Cancel: 6,
  Credit: 7,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export const FrameFlag = {
  /** On a request: the call opens a server-to-client stream. */
  Stream: 1,
} as const;

/** Bytes before the method name, length prefix included. */
const FIXED_BYTES = 16;
/** Smallest frame: fixed part plus the head length. */
const MIN_FRAME_BYTES = FIXED_BYTES + 4;
const MAX_METHOD_BYTES = 0xffff;
/** Frames above this size that arrive in pieces are reassembled into one buffer as they come. */
const REASSEMBLE_IN_PLACE_BYTES = 64 * 1024;

/** A received frame. `head` and `attachments` are views of the received bytes. */
export interface Frame {
  kind: FrameKind;
  flags: number;
  callId: number;
  aux: number;
  method: string;
  /** The body's MessagePack head, or undefined when the frame carries no body. */
  head: Uint8Array | undefined;
  attachments: Uint8Array;
}

/** A frame to send, as the buffers to hand to the socket in order. */
export interface EncodedFrame {
  parts: Uint8Array[];
  byteLength: number;
}

export interface FrameFields {
  kind: FrameKind;
  flags?: number;
  callId: number;
  aux?: number;
  method?: string;
  /** Omit (or pass `hasBody: false`) for frames without a body. */
  body?: unknown;
  hasBody?: boolean;
}

/** The peer broke the protocol; the connection it came on must be closed. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/**
 * Encodes one frame. Throws TOO_LARGE when it would exceed `maxFrameBytes`, so that nothing the
 * peer would refuse is ever sent.
 */
export function encodeFrame(fields: FrameFields, maxFrameBytes: number): EncodedFrame {
  const method = fields.method === undefined ? undefined : Buffer.from(fields.method, 'utf8');
  const methodBytes = method?.byteLength ?? 0;
  if (methodBytes > MAX_METHOD_BYTES) {
    throw new RobustMQError(ErrorCode.InvalidArgument, `method name of ${methodBytes} bytes is too long`);
  }
  const hasBody = fields.hasBody ?? fields.body !== undefined;
  const body = hasBody ? encodeBody(fields.body) : undefined;
  const headBytes = body?.head.byteLength ?? 0;
  const byteLength = FIXED_BYTES + methodBytes + 4 + (body?.byteLength ?? 0);
  if (byteLength > maxFrameBytes) {
    throw new RobustMQError(
      ErrorCode.TooLarge,
      `frame of ${byteLength} bytes exceeds the maximum of ${maxFrameBytes}`,
    );
  }
  const first = Buffer.allocUnsafe(FIXED_BYTES + methodBytes + 4 + headBytes);
  first.writeUInt32BE(byteLength - 4, 0);
  first.writeUInt8(fields.kind, 4);
  first.writeUInt8(fields.flags ?? 0, 5);
  first.writeUInt32BE(fields.callId >>> 0, 6);
  first.writeUInt32BE((fields.aux ?? 0) >>> 0, 10);
  first.writeUInt16BE(methodBytes, 14);
  if (method) method.copy(first, FIXED_BYTES);
  first.writeUInt32BE(headBytes, FIXED_BYTES + methodBytes);
  if (body) first.set(body.head, FIXED_BYTES + methodBytes + 4);
  return { parts: body ? [first, ...body.attachments] : [first], byteLength };
}

/** Sets the call id and aux of an encoded frame, for requests encoded before they are sent. */
export function stampFrame(frame: EncodedFrame, callId: number, aux: number): void {
  const first = frame.parts[0] as Buffer;
  first.writeUInt32BE(callId >>> 0, 6);
  first.writeUInt32BE(aux >>> 0, 10);
}

const KINDS = new Set<number>(Object.values(FrameKind));

function parseFrame(buf: Buffer): Frame {
  const kind = buf.readUInt8(4);
  if (!KINDS.has(kind)) throw new ProtocolError(`unknown frame kind ${kind}`);
  const methodBytes = buf.readUInt16BE(14);
  const headAt = FIXED_BYTES + methodBytes + 4;
  if (headAt > buf.byteLength) throw new ProtocolError('method name runs past the frame');
  const headBytes = buf.readUInt32BE(FIXED_BYTES + methodBytes);
  if (headAt + headBytes > buf.byteLength) throw new ProtocolError('body runs past the frame');
  if (headBytes === 0 && headAt !== buf.byteLength) throw new ProtocolError('attachments without a body');
  return {
    kind: kind as FrameKind,
    flags: buf.readUInt8(5),
    callId: buf.readUInt32BE(6),
    aux: buf.readUInt32BE(10),
    method: methodBytes === 0 ? '' : buf.toString('utf8', FIXED_BYTES, FIXED_BYTES + methodBytes),
    head: headBytes === 0 ? undefined : buf.subarray(headAt, headAt + headBytes),
    attachments: buf.subarray(headAt + headBytes),
  };
}

/**
 * Cuts the incoming byte stream into frames. Bytes go in with {@link push}; complete frames come
 * out with {@link next}, one at a time, so that a connection can stop taking frames (and stop
 * reading its socket) while it is busy, holding no more than what already arrived.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  #preambleSeen = false;
  /** A large frame being filled in place as its bytes arrive. */
  private partial: { buf: Buffer; filled: number } | undefined;

  constructor(private readonly maxFrameBytes: number) {}

  /** Whether the peer's preamble has been read. */
  get preambleSeen(): boolean {
    return this.#preambleSeen;
  }

  push(chunk: Buffer): void {
    const partial = this.partial;
    if (partial) {
      const take = Math.min(chunk.byteLength, partial.buf.byteLength - partial.filled);
      chunk.copy(partial.buf, partial.filled, 0, take);
      partial.filled += take;
      if (take === chunk.byteLength) return;
      chunk = chunk.subarray(take);
    }
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws ProtocolError. */
  next(): Frame | undefined {
    const partial = this.partial;
    if (partial) {
      if (partial.filled < partial.buf.byteLength) return undefined;
      this.partial = undefined;
      return parseFrame(partial.buf);
    }
    if (!this.#preambleSeen) {
      const seen = Math.min(this.buffered, PREAMBLE.byteLength);
      if (seen > 0 && !this.peek(seen).equals(PREAMBLE.subarray(0, seen))) {
        throw new ProtocolError('bad preamble: the peer does not speak RobustMQ RPC');
      }
      if (seen < PREAMBLE.byteLength) return undefined;
      this.take(PREAMBLE.byteLength);
      this.#preambleSeen = true;
    }
    if (this.buffered < 4) return undefined;
    const total = this.peek(4).readUInt32BE(0) + 4;
    if (total > this.maxFrameBytes) {
      throw new ProtocolError(`frame of ${total} bytes exceeds the maximum of ${this.maxFrameBytes}`);
    }
    if (total < MIN_FRAME_BYTES) throw new ProtocolError(`frame of ${total} bytes is too short`);
    if (this.buffered >= total) return parseFrame(this.take(total));
    if (total >= REASSEMBLE_IN_PLACE_BYTES) {
      const buf = Buffer.allocUnsafe(total);
      let filled = 0;
      for (const chunk of this.chunks) {
        chunk.copy(buf, filled);
        filled += chunk.byteLength;
      }
      this.chunks = [];
      this.buffered = 0;
      this.partial = { buf, filled };
    }
    return undefined;
  }

  /** Bytes received and not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.buffered + (this.partial?.filled ?? 0);
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    for (const chunk of this.chunks) {
      if (at >= n) break;
      at += chunk.copy(out, at, 0, Math.min(chunk.byteLength, n - at));
    }
    return out;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.byteLength >= n) {
      out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const chunk = this.chunks[0] as Buffer;
        const want = n - at;
        if (chunk.byteLength <= want) {
          chunk.copy(out, at);
          at += chunk.byteLength;
          this.chunks.shift();
        } else {
          chunk.copy(out, at, 0, want);
          at += want;
          this.chunks[0] = chunk.subarray(want);
        }
      }
    }
    this.buffered -= n;
    return out;
  }
}
