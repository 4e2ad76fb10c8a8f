import { Decoder, Encoder, ExtensionCodec } from '@msgpack/msgpack';

/**
 * Message bodies are MessagePack with one twist: a `Uint8Array` of at least
 * {@link ATTACHMENT_MIN_BYTES} is not copied into the MessagePack bytes. It is replaced by an
 * extension value holding its length, and the bytes themselves follow the MessagePack part of the
 * frame as an "attachment", written to the socket as they are. On the way in, an attachment comes
 * back as a view of the received frame. Large record batches thus cross without a copy on send and
 * without one on receive beyond reassembling the frame.
 */
export const ATTACHMENT_MIN_BYTES = 2048;

/** MessagePack extension type of an attachment reference. */
const ATTACHMENT_EXT = 0x52;

/** A body ready to write: the MessagePack part and the attachments to send after it. */
export interface EncodedBody {
  head: Uint8Array;
  attachments: Uint8Array[];
  /** head plus every attachment. */
  byteLength: number;
}

interface EncodeContext {
  attachments: Uint8Array[];
  attachmentBytes: number;
}

interface DecodeContext {
  region: Uint8Array;
  cursor: number;
}

const encodeCodec = new ExtensionCodec<EncodeContext>();
encodeCodec.register({
  type: ATTACHMENT_EXT,
  encode: (input, context) => {
    if (!(input instanceof Uint8Array) || input.byteLength < ATTACHMENT_MIN_BYTES) return null;
    context.attachments.push(input);
    context.attachmentBytes += input.byteLength;
    const ref = new Uint8Array(4);
    new DataView(ref.buffer).setUint32(0, input.byteLength);
    return ref;
  },
  decode: () => {
    throw new Error('encode-only codec');
  },
});

const decodeCodec = new ExtensionCodec<DecodeContext>();
decodeCodec.register({
  type: ATTACHMENT_EXT,
  encode: () => null,
  decode: (data, _type, context) => {
    if (data.byteLength !== 4) throw new Error('attachment reference of wrong size');
    const length = new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
    const start = context.cursor;
    if (start + length > context.region.byteLength) throw new Error('attachment beyond the frame');
    context.cursor = start + length;
    const region = context.region;
    return new Uint8Array(region.buffer, region.byteOffset + start, length);
  },
});

const encodeContext: EncodeContext = { attachments: [], attachmentBytes: 0 };
const encoder = new Encoder<EncodeContext>({
  extensionCodec: encodeCodec,
  context: encodeContext,
  ignoreUndefined: true,
});

const decodeContext: DecodeContext = { region: new Uint8Array(0), cursor: 0 };
const decoder = new Decoder<DecodeContext>({ extensionCodec: decodeCodec, context: decodeContext });

/**
 * Encodes `value`. The returned head is a view of the encoder's shared buffer, valid only until
 * the next call: the caller copies it into the frame straight away.
 */
export function encodeBody(value: unknown): EncodedBody {
  encodeContext.attachments = [];
  encodeContext.attachmentBytes = 0;
  const head = encoder.encodeSharedRef(value);
  const attachments = encodeContext.attachments;
  const byteLength = head.byteLength + encodeContext.attachmentBytes;
  encodeContext.attachments = [];
  return { head, attachments, byteLength };
}

/** Decodes a body from its MessagePack part and the attachment bytes that followed it. */
export function decodeBody(head: Uint8Array, attachments: Uint8Array): unknown {
  decodeContext.region = attachments;
  decodeContext.cursor = 0;
  try {
    // A plain Uint8Array view, so that byte strings decode as Uint8Array and not as Buffer.
    const value = decoder.decode(new Uint8Array(head.buffer, head.byteOffset, head.byteLength));
    if (decodeContext.cursor !== attachments.byteLength) {
      throw new Error('attachment bytes left over after the body');
    }
    return value;
  } finally {
    decodeContext.region = new Uint8Array(0);
  }
}
