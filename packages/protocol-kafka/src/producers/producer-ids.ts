import { ErrorCode, isRobustMQError, type MetaStore } from '@robustmq/core';

/** The next unallocated producer id, shared by every broker: `{ "next": <number> }`. */
export const PRODUCER_ID_KEY = '/kafka/producer-ids';

/** Ids taken from the meta store at a time, so InitProducerId rarely writes to it. */
const DEFAULT_BLOCK_SIZE = 1000;

/**
 * Hands out producer ids that are never reused, even across restarts and brokers: each broker
 * reserves a block of ids in the meta store with compare-and-set, then allocates from it in memory.
 * Ids of a block not used before a restart are skipped.
 */
export class ProducerIdAllocator {
  private next = 0;
  private end = 0;
  private reserving: Promise<void> | null = null;

  constructor(
    private readonly meta: MetaStore,
    private readonly blockSize = DEFAULT_BLOCK_SIZE,
  ) {}

  async allocate(): Promise<number> {
    while (this.next >= this.end) {
      this.reserving ??= this.reserveBlock().finally(() => (this.reserving = null));
      await this.reserving;
    }
    return this.next++;
  }

  private async reserveBlock(): Promise<void> {
    for (;;) {
      const entry = await this.meta.get(PRODUCER_ID_KEY);
      const start = entry ? (JSON.parse(new TextDecoder().decode(entry.value)) as { next: number }).next : 0;
      const end = start + this.blockSize;
      try {
        await this.meta.put(PRODUCER_ID_KEY, new TextEncoder().encode(JSON.stringify({ next: end })), {
          ifRevision: entry?.modRevision ?? 0,
        });
      } catch (error) {
        if (isRobustMQError(error, ErrorCode.Conflict)) continue; // another broker took this block
        throw error;
      }
      this.next = start;
      this.end = end;
      return;
    }
  }
}
