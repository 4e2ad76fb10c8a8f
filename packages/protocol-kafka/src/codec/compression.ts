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

/** Loads the zstd encoder's WebAssembly once; decoding needs nothing. */
function zstdLoaded(): Promise<void> {
  zstdReady ??= zstdInit();
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

/** Compresses the records part of a batch with `codec`. */
export async function compress(codec: Compression, data: Uint8Array): Promise<Buffer> {
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
      await zstdLoaded();
      return Buffer.from(zstdCompress(data, 3));
    default:
      throw new Error(`unknown compression codec ${String(codec)}`);
  }
}

/**
 * Decompresses the records part of a batch. Accepts raw and xerial-framed snappy, LZ4 frames, and
 * zstd frames with or without a content size.
 */
export function decompress(codec: Compression, data: Uint8Array): Buffer {
  switch (codec) {
    case Compression.none:
      return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    case Compression.gzip:
      return gunzipSync(data);
    case Compression.snappy:
      return snappyDecompress(data);
    case Compression.lz4:
      return lz4Decompress(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    case Compression.zstd: {
      const out = zstdDecompress(data);
      return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
    default:
      throw new Error(`unknown compression codec ${String(codec)}`);
  }
}
