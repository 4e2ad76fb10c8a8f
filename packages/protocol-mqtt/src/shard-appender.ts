import type { Message, RecordBatch, RecordCodec, RecordCompression, StorageEngine } from '@robustmq/core';

/** Bytes of payload gathered into one record batch at most (one message may exceed it alone). */
const BATCH_BYTES = 1_048_576;
/** Record batches of one shard written at once, so group commit lets them share an fsync. */
const MAX_WRITES = 4;
/** Room for a record's framing, key and headers when sizing a batch. */
const RECORD_OVERHEAD = 64;

interface Pending {
  message: Message;
  done: { resolve: () => void; reject: (error: unknown) => void } | null;
}

/**
 * Appends messages to one storage shard in the shared record encoding. Messages given in the same
 * turn of the event loop (and while earlier batches are being written) go out together as one
 * record batch; batches reach the engine in the order their messages were given, so the order of
 * each MQTT topic is kept.
 */
export class ShardAppender {
  private pending: Pending[] = [];
  private writing = 0;
  private scheduled = false;
  /** Resolves once the previous batch has been handed to the engine. */
  private handedOver: Promise<unknown> = Promise.resolve();
  private readonly idle = new Set<() => void>();
  /** The codec batches are written with from now on (the stored topic's `compression.type`). */
  compression: RecordCompression = 'none';

  constructor(
    private readonly storage: StorageEngine,
    private readonly codec: RecordCodec,
    readonly shard: string,
  ) {}

  /** Appends and resolves once the message is durable by the shard's policy. */
  append(message: Message): Promise<void> {
    return new Promise((resolve, reject) => this.add({ message, done: { resolve, reject } }));
  }

  /** Appends without waiting (QoS 0); a failure is the caller's `onError`. */
  appendLater(message: Message): void {
    this.add({ message, done: null });
  }

  /** Resolves once nothing is pending or being written. */
  settled(): Promise<void> {
    if (this.pending.length === 0 && this.writing === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Called with the error of a failed batch that had QoS 0 messages in it. */
  onError: (error: unknown, shard: string) => void = () => {};

  private add(pending: Pending): void {
    this.pending.push(pending);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.pending.length > 0 && this.writing < MAX_WRITES) {
      let bytes = 0;
      let count = 0;
      while (count < this.pending.length && (count === 0 || bytes < BATCH_BYTES)) {
        bytes += this.pending[count]!.message.payload.length + RECORD_OVERHEAD;
        count++;
      }
      this.write(this.pending.splice(0, count));
    }
    if (this.pending.length === 0 && this.writing === 0) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
  }

  private write(taken: Pending[]): void {
    this.writing++;
    const encoded = this.codec.encode(
      taken.map((p) => p.message),
      this.compression,
    );
    // The append call waits for the previous batch's call (not its fsync), keeping shard order.
    const handed = Promise.all([encoded, this.handedOver]).then(([batch]: [RecordBatch, unknown]) => ({
      stored: this.storage.append(this.shard, [batch]),
    }));
    this.handedOver = handed.catch(() => {});
    void handed
      .then(({ stored }) => stored)
      .then(
        () => {
          for (const p of taken) p.done?.resolve();
        },
        (error: unknown) => {
          let unawaited = false;
          for (const p of taken) {
            if (p.done) p.done.reject(error);
            else unawaited = true;
          }
          if (unawaited) this.onError(error, this.shard);
        },
      )
      .finally(() => {
        this.writing--;
        this.flush();
      });
  }
}
