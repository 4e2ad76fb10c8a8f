import { describe, expect, it } from 'vitest';
import {
  Compression,
  compressionReady,
  computeBatchCrc,
  decodeRecordBatch,
  decodeRecordBatches,
  encodeRecordBatch,
  readBatchHeader,
  recompressBatch,
  RecordBatchError,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
  splitBatches,
  TimestampType,
  verifyBatchCrc,
} from '../../src/codec/index.js';

const records = [
  { key: 'k1', value: 'hello', headers: [{ key: 'h', value: 'v' }], timestamp: 1_700_000_000_000 },
  { key: null, value: null, headers: [{ key: 'empty', value: null }], timestamp: 1_700_000_000_500 },
  { value: Buffer.alloc(100_000, 7), timestamp: 1_699_999_999_000 },
];

describe('record batch', () => {
  for (const [name, codec] of Object.entries(Compression)) {
    it(`round-trips records compressed with ${name}`, async () => {
      const batch = await encodeRecordBatch({ records, compression: codec, baseOffset: 42 });
      expect(verifyBatchCrc(batch)).toBe(true);
      const decoded = decodeRecordBatch(batch);
      expect(decoded.compression).toBe(codec);
      expect(decoded.baseOffset).toBe(42);
      expect(decoded.lastOffsetDelta).toBe(2);
      expect(decoded.recordCount).toBe(3);
      expect(decoded.baseTimestamp).toBe(1_700_000_000_000);
      expect(decoded.maxTimestamp).toBe(1_700_000_000_500);
      expect(decoded.producerId).toBe(-1n);
      expect(decoded.records.map((r) => r.offset)).toEqual([42, 43, 44]);
      expect(decoded.records[0]!.key!.toString()).toBe('k1');
      expect(decoded.records[0]!.value!.toString()).toBe('hello');
      expect(decoded.records[0]!.headers).toEqual([{ key: 'h', value: Buffer.from('v') }]);
      expect(decoded.records[1]!.key).toBeNull();
      expect(decoded.records[1]!.value).toBeNull();
      expect(decoded.records[1]!.headers).toEqual([{ key: 'empty', value: null }]);
      expect(decoded.records[2]!.timestamp).toBe(1_699_999_999_000);
      expect(decoded.records[2]!.value!.equals(Buffer.alloc(100_000, 7))).toBe(true);
    });
  }

  it('keeps producer, transactional and control fields', async () => {
    const batch = await encodeRecordBatch({
      records: [{ key: Buffer.from([0, 0, 0, 1]), value: Buffer.from([0, 0, 0, 0, 0, 5]) }],
      producerId: 1234n,
      producerEpoch: 3,
      baseSequence: 17,
      transactional: true,
      control: true,
    });
    const header = readBatchHeader(batch);
    expect(header).toMatchObject({
      producerId: 1234n,
      producerEpoch: 3,
      baseSequence: 17,
      transactional: true,
      control: true,
    });
  });

  it('rewrites base offset and leader epoch without breaking the CRC', async () => {
    const batch = await encodeRecordBatch({ records, compression: Compression.gzip });
    const crc = readBatchHeader(batch).crc;
    setBaseOffset(batch, 9_000_000_000);
    setPartitionLeaderEpoch(batch, 5);
    expect(readBatchHeader(batch)).toMatchObject({ baseOffset: 9_000_000_000, partitionLeaderEpoch: 5, crc });
    expect(verifyBatchCrc(batch)).toBe(true);
    setLogAppendTime(batch, 1_800_000_000_000);
    expect(verifyBatchCrc(batch)).toBe(true);
    const decoded = decodeRecordBatch(batch);
    expect(decoded.timestampType).toBe(TimestampType.logAppendTime);
    expect(decoded.records.every((r) => r.timestamp === 1_800_000_000_000)).toBe(true);
  });

  it('splits concatenated batches and reports a cut-short tail', async () => {
    const a = await encodeRecordBatch({ records: records.slice(0, 1) });
    const b = await encodeRecordBatch({ records: records.slice(1, 2), compression: Compression.lz4 });
    const all = Buffer.concat([a, b, b.subarray(0, 30)]);
    const { batches, remainder } = splitBatches(all);
    expect(batches.map((x) => x.length)).toEqual([a.length, b.length]);
    expect(remainder).toBe(30);
    expect(decodeRecordBatches(all).map((x) => x.records.length)).toEqual([1, 1]);
  });

  it('rejects a corrupt CRC, a wrong magic and truncation', async () => {
    const batch = await encodeRecordBatch({ records });
    const flipped = Buffer.from(batch);
    flipped[flipped.length - 1]! ^= 0xff;
    expect(() => decodeRecordBatch(flipped)).toThrow(RecordBatchError);
    expect(computeBatchCrc(flipped)).not.toBe(readBatchHeader(flipped).crc);
    const magic1 = Buffer.from(batch);
    magic1[16] = 1;
    expect(() => readBatchHeader(magic1)).toThrow(/magic/);
    expect(() => decodeRecordBatch(batch.subarray(0, 40))).toThrow(RecordBatchError);
    expect(() => decodeRecordBatch(batch.subarray(0, 100))).toThrow(/cut short/);
  });

  it('checks the CRC with the checksum function it is given', async () => {
    const batch = await encodeRecordBatch({ records });
    const seen: number[] = [];
    const counting = (data: Uint8Array): number => {
      seen.push(data.length);
      return computeBatchCrc(batch);
    };
    expect(verifyBatchCrc(batch, counting)).toBe(true);
    // Over the attributes to the end: everything after the first 21 bytes.
    expect(seen).toEqual([batch.length - 21]);
    expect(verifyBatchCrc(batch, () => 0)).toBe(false);
  });

  it('reads raw (unframed) snappy as librdkafka writes it', async () => {
    const { compressSync } = await import('snappy');
    const { decompress } = await import('../../src/codec/compression.js');
    const raw = Buffer.from('raw snappy block '.repeat(100));
    expect(decompress(Compression.snappy, compressSync(raw)).equals(raw)).toBe(true);
  });

  it('recompresses a batch with another codec, keeping its header fields', async () => {
    const batch = await encodeRecordBatch({
      records,
      compression: Compression.gzip,
      baseOffset: 7,
      producerId: 99n,
      producerEpoch: 2,
      baseSequence: 40,
      transactional: true,
    });
    for (const codec of Object.values(Compression)) {
      await compressionReady(codec);
      const recompressed = recompressBatch(batch, codec);
      expect(verifyBatchCrc(recompressed)).toBe(true);
      const { records: decoded, ...header } = decodeRecordBatch(recompressed);
      const { records: original, ...before } = decodeRecordBatch(batch);
      expect(header).toEqual({
        ...before,
        compression: codec,
        attributes: (before.attributes & ~7) | codec,
        batchLength: recompressed.length - 12,
        crc: header.crc,
      });
      expect(decoded).toEqual(original);
    }
  });

  it('refuses to recompress records that do not decompress or do not match the record count', async () => {
    await compressionReady(Compression.zstd);
    const garbled = await encodeRecordBatch({ records, compression: Compression.lz4 });
    garbled.fill(0x5a, 70, 90);
    garbled.writeUInt32BE(computeBatchCrc(garbled), 17);
    expect(() => recompressBatch(garbled, Compression.zstd)).toThrow(RecordBatchError);
    const miscounted = await encodeRecordBatch({ records });
    miscounted.writeInt32BE(4, 57);
    expect(() => recompressBatch(miscounted, Compression.zstd)).toThrow(/record count 4/);
  });
});
