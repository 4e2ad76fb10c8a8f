import { gzipSync } from 'node:zlib';
import { compressFrameSync } from 'lz4-napi';
import { describe, expect, it } from 'vitest';
import {
  compress,
  Compression,
  computeBatchCrc,
  decodeRecordBatch,
  decompress,
  DecompressionLimitError,
  encodeRecordBatch,
  RecordBatchError,
} from '../../src/codec/index.js';

/** A zstd frame without a content size: the window it declares, then `blocks` RLE blocks. */
function zstdRleFrame(windowDescriptor: number, blocks: number, blockSize: number): Buffer {
  const parts = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, windowDescriptor])];
  for (let i = 0; i < blocks; i++) {
    const header = (i === blocks - 1 ? 1 : 0) | (1 << 1) | (blockSize << 3);
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff, 0x41]));
  }
  return Buffer.concat(parts);
}

const MiB = 1024 * 1024;

describe('decompression limits', () => {
  it('refuses small inputs that claim or expand to more than allowed, before unpacking them', () => {
    const gzipBomb = Buffer.concat(Array<Buffer>(4).fill(gzipSync(Buffer.alloc(64 * MiB), { level: 9 })));
    const bombs: Array<[string, Compression, Buffer]> = [
      ['gzip members of zeros', Compression.gzip, gzipBomb],
      // Raw snappy whose length preamble says 4 GiB.
      ['snappy length', Compression.snappy, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x41])],
      ['lz4 frame of zeros', Compression.lz4, compressFrameSync(Buffer.alloc(256 * MiB))],
      // A 1.875 GiB window moved once per one-byte block: seconds per block.
      ['zstd huge window', Compression.zstd, zstdRleFrame((20 << 3) | 7, 40, 1)],
      // A 128 MiB window moved 400 times.
      ['zstd many blocks', Compression.zstd, zstdRleFrame(17 << 3, 400, 128 * 1024)],
      // A single-segment frame declaring 2 GiB of content.
      [
        'zstd content size',
        Compression.zstd,
        Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0xa0, 0, 0, 0, 0x80, 0x01, 0, 0, 0x41]),
      ],
    ];
    for (const [name, codec, data] of bombs) {
      const started = Date.now();
      expect(() => decompress(codec, data), name).toThrow(DecompressionLimitError);
      expect(Date.now() - started, name).toBeLessThan(1000);
    }
  });

  it('decompresses real data of every codec up to the limit given', async () => {
    const raw = Buffer.alloc(3 * MiB);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) % 251;
    for (const codec of [Compression.gzip, Compression.snappy, Compression.lz4, Compression.zstd]) {
      const packed = await compress(codec, raw);
      expect(decompress(codec, packed).equals(raw)).toBe(true);
      expect(() => decompress(codec, packed, MiB), `codec ${codec}`).toThrow(DecompressionLimitError);
    }
  });

  it('reports a batch whose records decompress past the limit as corrupt', async () => {
    const batch = await encodeRecordBatch({
      records: [{ value: Buffer.alloc(2 * MiB, 1) }],
      compression: Compression.zstd,
    });
    expect(decodeRecordBatch(batch).records[0]!.value!.length).toBe(2 * MiB);
    expect(() => decodeRecordBatch(batch, { maxDecompressedBytes: MiB })).toThrow(RecordBatchError);
    // The same with a bomb in place of the records, CRC made valid.
    const bomb = zstdRleFrame((20 << 3) | 7, 40, 1);
    const forged = Buffer.concat([batch.subarray(0, 61), bomb]);
    forged.writeInt32BE(forged.length - 12, 8);
    forged.writeUInt32BE(computeBatchCrc(forged), 17);
    expect(() => decodeRecordBatch(forged)).toThrow(/decompress/);
  });
});
