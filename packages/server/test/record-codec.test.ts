import { Compression, readBatchHeader } from '@robustmq/protocol-kafka/codec';
import { describe, expect, it } from 'vitest';
import type { Message, RecordCompression } from '@robustmq/core';
import { kafkaRecordCodec } from '../src/records.js';

const messages: Message[] = Array.from({ length: 50 }, (_, i) => ({
  topic: 't',
  key: Buffer.from(`sensors/${i % 5}`),
  payload: Buffer.from(`reading ${i} `.repeat(20)),
  headers: [{ key: 'unit', value: Buffer.from('celsius') }],
  timestamp: 1_700_000_000_000 + i,
}));

describe('the shared record codec', () => {
  it('stores records uncompressed unless asked', async () => {
    const batch = await kafkaRecordCodec.encode(messages);
    expect(readBatchHeader(batch.data).compression).toBe(Compression.none);
  });

  it('compresses with the codec asked for, and reads each back', async () => {
    const plain = await kafkaRecordCodec.encode(messages, 'none');
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const satisfies RecordCompression[]) {
      const batch = await kafkaRecordCodec.encode(messages, codec);
      expect(readBatchHeader(batch.data).compression).toBe(Compression[codec]);
      expect(batch.data.length).toBeLessThan(plain.data.length / 2);
      expect(batch.recordCount).toBe(50);
      const read = await kafkaRecordCodec.decode({ ...batch, baseOffset: 100 }, 't');
      expect(read.map((m) => m.offset)).toEqual(messages.map((_, i) => 100 + i));
      expect(read.map((m) => Buffer.from(m.payload).toString())).toEqual(
        messages.map((m) => Buffer.from(m.payload).toString()),
      );
      expect(read[7]!.key).toEqual(Buffer.from('sensors/2'));
      expect(read[7]!.headers).toEqual([{ key: 'unit', value: Buffer.from('celsius') }]);
    }
  });
});
