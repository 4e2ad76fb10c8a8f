import { gunzipSync, gzipSync } from 'node:zlib';
import { compress as zstdCompress, init as zstdInit } from '@bokuweb/zstd-wasm';
import { decompress as zstdDecompress } from 'fzstd';
import { compressFrameSync as lz4Compress, decompressFrameSync as lz4Decompress } from 'lz4-napi';
import { compressSync as snappyCompress, uncompressSync as snappyUncompress } from 'snappy';

/** The compression codec of a record batch: attribute bits 0-2. */
export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type Compression = (typeof Compression)[keyof typeof Compression];

/** Codec names as Kafka's `compression.type` spells them, by id. */
export const COMPRESSION_NAMES: Readonly<Record<Compression, string>> = {
  0: 'none',
  1: 'gzip',
  2: 'snappy',
  3: 'lz4',
  4: 'zstd',
};

// Java clients frame snappy the xerial way: this magic, a version and a compatible version (int32
// each), then [int32 length][raw snappy block] pairs. librdkafka writes raw snappy; both are read.
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_HEADER = 16;
const XERIAL_BLOCK = 32 * 1024;

let zstdReady: Promise<void> | null = null;
let zstdUsable = false;

/** Loads the zstd encoder's WebAssembly once; decoding needs nothing. */
function zstdLoaded(): Promise<void> {
  zstdReady ??= zstdInit().then(() => {
    zstdUsable = true;
  });
  return zstdReady;
}

function xerialCompress(data: Uint8Array): Buffer {
  const parts: Buffer[] = [XERIAL_MAGIC, Buffer.from([0, 0, 0, 1, 0, 0, 0, 1])];
  for (let at = 0; at < data.length; at += XERIAL_BLOCK) {
    const block = snappyCompress(data.subarray(at, at + XERIAL_BLOCK));
    const length = Buffer.alloc(4);
    length.writeInt32BE(block.length);
    parts.push(length, block);
  }
  return Buffer.concat(parts);
}

function snappyDecompress(data: Uint8Array): Buffer {
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (input.length < XERIAL_HEADER || !input.subarray(0, 8).equals(XERIAL_MAGIC)) {
    return snappyUncompress(input, { asBuffer: true }) as Buffer;
  }
  const blocks: Buffer[] = [];
  let at = XERIAL_HEADER;
  while (at < input.length) {
    if (at + 4 > input.length) throw new Error('truncated xerial snappy block length');
    const length = input.readInt32BE(at);
    at += 4;
    if (length < 0 || at + length > input.length) throw new Error('truncated xerial snappy block');
    blocks.push(snappyUncompress(input.subarray(at, at + length), { asBuffer: true }) as Buffer);
    at += length;
  }
  return Buffer.concat(blocks);
}

/** Readies `codec`'s encoder (zstd loads its WebAssembly once), after which {@link compressReady} may run. */
export async function compressionReady(codec: Compression): Promise<void> {
  if (codec === Compression.zstd) await zstdLoaded();
}

/** Compresses the records part of a batch with `codec`. */
export async function compress(codec: Compression, data: Uint8Array): Promise<Buffer> {
  await compressionReady(codec);
  return compressReady(codec, data);
}

/**
 * Compresses without waiting, for callers that must not yield (a broker keeping appends in order);
 * `compressionReady(codec)` must have settled first.
 */
export function compressReady(codec: Compression, data: Uint8Array): Buffer {
  switch (codec) {
    case Compression.none:
      return Buffer.from(data);
    case Compression.gzip:
      return gzipSync(data);
    case Compression.snappy:
      return xerialCompress(data);
    case Compression.lz4:
      return lz4Compress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    case Compression.zstd:
      if (!zstdUsable) throw new Error('the zstd encoder is not loaded: await compressionReady first');
      return Buffer.from(zstdCompress(data, 3));
    default:
      throw new Error(`unknown compression codec ${String(codec)}`);
  }
}

/**
 * The most bytes {@link decompress} produces unless told otherwise: a batch claiming more is refused
 * rather than unpacked, so a few compressed bytes cannot make a reader allocate gigabytes.
 */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024;

/**
 * Bytes of window that the zstd decoder may shift while it decodes frames without a content size
 * (it moves its whole window once per block): a frame whose blocks times window exceed this is
 * refused. Real producers' frames (windows of a few MiB) stay far below it up to tens of MiB.
 */
const ZSTD_WINDOW_WORK = 1024 * 1024 * 1024;

/** Compressed bytes that would decompress to more than the allowed size, or cost too much to. */
export class DecompressionLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecompressionLimitError';
  }
}

function tooLarge(codec: string, bytes: number, maxBytes: number): DecompressionLimitError {
  return new DecompressionLimitError(
    `${codec} data decompresses to ${bytes} bytes, above the ${maxBytes} allowed`,
  );
}

/** The unsigned varint at `at` (snappy's length preamble), or null if it runs past the data. */
function snappyLength(data: Uint8Array, at: number): number | null {
  let value = 0;
  for (let i = 0; i < 5 && at + i < data.length; i++) {
    const byte = data[at + i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return value;
  }
  return null;
}

/** Checks snappy data (raw, or xerial blocks) against `maxBytes` by the lengths it declares. */
function checkSnappy(input: Buffer, maxBytes: number): void {
  let total = 0;
  if (input.length < XERIAL_HEADER || !input.subarray(0, 8).equals(XERIAL_MAGIC)) {
    total = snappyLength(input, 0) ?? 0;
  } else {
    for (let at = XERIAL_HEADER; at + 4 <= input.length;) {
      const length = input.readInt32BE(at);
      if (length < 0) break;
      total += snappyLength(input, at + 4) ?? 0;
      at += 4 + length;
    }
  }
  if (total > maxBytes) throw tooLarge('snappy', total, maxBytes);
}

const LZ4_MAGIC = 0x184d2204;
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024];

/**
 * Bounds the output of the LZ4 frame at the start of `data` (the only frame the decoder reads) by
 * its declared content size and its blocks: a compressed block yields at most the frame's block
 * size. Malformed frames are left to the decoder to refuse.
 */
function checkLz4(data: Buffer, maxBytes: number): void {
  if (data.length < 7 || data.readUInt32LE(0) !== LZ4_MAGIC) return;
  const flags = data[4]!;
  const blockMax = LZ4_BLOCK_MAX[(data[5]! >> 4) & 7]!;
  let at = 6;
  if (flags & 0x08) {
    if (at + 8 > data.length) return;
    const contentSize = data.readBigUInt64LE(at);
    if (contentSize > BigInt(maxBytes)) throw tooLarge('lz4', Number(contentSize), maxBytes);
    at += 8;
  }
  if (flags & 0x01) at += 4;
  at += 1;
  const blockChecksum = (flags & 0x10) !== 0;
  let bound = 0;
  while (at + 4 <= data.length) {
    const word = data.readUInt32LE(at);
    at += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    bound += word & 0x80000000 ? size : blockMax;
    if (bound > maxBytes) throw tooLarge('lz4', bound, maxBytes);
    at += size + (blockChecksum ? 4 : 0);
  }
}

const ZSTD_MAGIC = 0xfd2fb528;
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * Bounds the output of zstd data frame by frame: a frame's declared content size, else the sum of
 * its blocks (raw and RLE blocks say their size, a compressed block yields at most 128 KiB). Frames
 * without a content size are decoded through a window the size the frame declares, moved once per
 * block, so their window and its work are bounded too. Malformed frames are left to the decoder.
 */
function checkZstd(data: Buffer, maxBytes: number): void {
  let total = 0;
  let work = 0;
  let at = 0;
  while (at + 8 <= data.length) {
    const magic = data.readUInt32LE(at);
    if (magic >>> 4 === 0x184d2a5) {
      at += 8 + data.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== ZSTD_MAGIC) return;
    const descriptor = data[at + 4]!;
    const singleSegment = (descriptor & 0x20) !== 0;
    const sizeFlag = descriptor >> 6;
    at += 5;
    let window = 0;
    if (!singleSegment) {
      const exponent = data[at]! >> 3;
      const base = 2 ** (10 + exponent);
      window = base + (base / 8) * (data[at]! & 7);
      at += 1;
    }
    at += [0, 1, 2, 4][descriptor & 3]!;
    const sizeBytes = sizeFlag === 0 ? (singleSegment ? 1 : 0) : 2 ** sizeFlag;
    if (at + sizeBytes > data.length) return;
    let contentSize: number | null = null;
    if (sizeBytes === 1) contentSize = data[at]!;
    else if (sizeBytes === 2) contentSize = data.readUInt16LE(at) + 256;
    else if (sizeBytes === 4) contentSize = data.readUInt32LE(at);
    else if (sizeBytes === 8) contentSize = Number(data.readBigUInt64LE(at));
    at += sizeBytes;
    if (singleSegment) window = contentSize ?? 0;
    let blocks = 0;
    let bound = 0;
    for (;;) {
      if (at + 3 > data.length) return;
      const header = data[at]! | (data[at + 1]! << 8) | (data[at + 2]! << 16);
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      at += 3;
      blocks++;
      // Raw and RLE blocks regenerate `size` bytes (RLE from one byte); compressed ones take `size`.
      bound += type <= 1 ? size : Math.min(ZSTD_BLOCK_MAX, window || ZSTD_BLOCK_MAX);
      at += type === 1 ? 1 : size;
      if (header & 1) break;
    }
    if (descriptor & 0x04) at += 4;
    if (contentSize !== null && contentSize > 0) total += contentSize;
    else {
      total += bound;
      if (window > maxBytes) {
        throw new DecompressionLimitError(
          `zstd frame window of ${window} bytes is above the ${maxBytes} allowed`,
        );
      }
      work += blocks * window;
      if (work > ZSTD_WINDOW_WORK) {
        throw new DecompressionLimitError(
          `zstd data of ${blocks} blocks through a ${window}-byte window is too costly to decompress`,
        );
      }
    }
    if (total > maxBytes) throw tooLarge('zstd', total, maxBytes);
  }
}

/**
 * Decompresses the records part of a batch. Accepts raw and xerial-framed snappy, LZ4 frames, and
 * zstd frames with or without a content size. Throws a {@link DecompressionLimitError}, before
 * unpacking anything, when the data would decompress to more than `maxBytes`.
 */
export function decompress(
  codec: Compression,
  data: Uint8Array,
  maxBytes: number = DEFAULT_MAX_DECOMPRESSED_BYTES,
): Buffer {
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (codec) {
    case Compression.none:
      return input;
    case Compression.gzip:
      try {
        return gunzipSync(input, { maxOutputLength: maxBytes });
      } catch (error) {
        if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
          throw new DecompressionLimitError(
            `gzip data decompresses to more than the ${maxBytes} bytes allowed`,
          );
        }
        throw error;
      }
    case Compression.snappy:
      checkSnappy(input, maxBytes);
      return snappyDecompress(input);
    case Compression.lz4:
      checkLz4(input, maxBytes);
      return lz4Decompress(input);
    case Compression.zstd: {
      checkZstd(input, maxBytes);
      const out = zstdDecompress(input);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
    default:
      throw new Error(`unknown compression codec ${String(codec)}`);
  }
}
