import { ErrorCode, isRobustMQError, type Message, type StorageEngine } from '@robustmq/core';
import type { RecordCodec, RecordCompression, StoredMessage } from '@robustmq/core';

export interface ReadMessages {
  messages: StoredMessage[];
  /** The offset after the last message read (where the next read starts). */
  nextOffset: number;
  /** Offsets passed over because what is stored there does not read back (corrupt), and why. */
  damaged?: { from: number; to: number; error: unknown };
}

/** Called after messages were appended through this log, with the offset of the first. */
export type AppendListener = (baseOffset: number, messages: readonly Message[]) => void;

/** An error as thrown, or one carrying its text when something else was thrown. */
export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Told once an append is durable (`error` null, with the message's offset) or has failed (with the error). */
export type AppendCallback = (error: unknown, offset: number) => void;

/** The ordered, offset-addressed messages behind an address. */
export interface MessageLog {
  /** Resolves with the message's offset once it is durable by the shard's policy. */
  append(message: Message): Promise<number>;
  /** {@link append} without a promise per message, for the producer hot path. */
  appendThen(message: Message, done: AppendCallback): void;
  /**
   * Messages from `offset` on (at least one when any exist); below the log start reads from the
   * start. Stored batches that are corrupt are passed over (`damaged`), so the messages after them
   * can be read.
   */
  read(offset: number): Promise<ReadMessages>;
  /** The offset the next message will get. */
  end(): Promise<number>;
  /** Resolves once a message at `offset` or later exists, or after `timeoutMs`. */
  waitForData(offset: number, timeoutMs: number): Promise<void>;
  /** Drops messages before `offset` where the log may (in-memory logs); stored shards keep theirs. */
  trim(offset: number): void;
  readonly listeners: Set<AppendListener>;
}

/**
 * A message read from storage, with bytes of its own: as decoded, its payload and header values
 * are views of the whole read (up to a megabyte, or a slab of Node's shared pool), which a queue
 * holding the message would keep alive with it.
 */
function ownBytes(message: StoredMessage): StoredMessage {
  let size = message.payload.length + (message.key?.length ?? 0);
  for (const header of message.headers) size += header.value.length;
  const bytes = Buffer.allocUnsafeSlow(size);
  let at = 0;
  const own = (view: Uint8Array): Buffer => {
    bytes.set(view, at);
    at += view.length;
    return bytes.subarray(at - view.length, at);
  };
  return {
    ...message,
    key: message.key === null ? null : own(message.key),
    payload: own(message.payload),
    headers: message.headers.map((header) => ({ key: header.key, value: own(header.value) })),
  };
}

const READ_BYTES = 1_048_576;
const BATCH_BYTES = 1_048_576;
/** What a record adds to its payload in a batch, roughly (lengths, offsets, AMQP section headers). */
const RECORD_OVERHEAD = 64;
/**
 * Record batches of one shard being written at once: as many as the journal writes durably at
 * once. More would only wait in the journal's queue as separate batches, each with its own
 * encoding and completion; held here, they join the next batch instead.
 */
const MAX_WRITES = 2;

/**
 * A log on one storage shard (`<topic>/0`), encoded with the shared record codec. Appends made
 * in one turn of the event loop (from every link and connection) go out as one record batch, and
 * appends arriving while batches are being written wait to form the next one.
 */
export class ShardLog implements MessageLog {
  readonly listeners = new Set<AppendListener>();
  private pending: Message[] = [];
  private callbacks: AppendCallback[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private scheduled = false;
  private compression: RecordCompression = 'none';

  constructor(
    protected readonly storage: StorageEngine,
    private readonly codec: RecordCodec,
    readonly topic: string,
    readonly shard: string,
    /** The codec the topic's `compression.type` asks batches to be written with; none without it. */
    private readonly compressionOf?: (topic: string) => Promise<RecordCompression>,
  ) {}

  append(message: Message): Promise<number> {
    return new Promise((resolve, reject) => {
      this.appendThen(message, (error, offset) =>
        error === null ? resolve(offset) : reject(asError(error)),
      );
    });
  }

  appendThen(message: Message, done: AppendCallback): void {
    this.pending.push(message);
    this.callbacks.push(done);
    this.pendingBytes += message.payload.length + RECORD_OVERHEAD;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  /**
   * Writes what is pending as record batches. Two may be in flight at once, so a batch does not
   * wait for the previous one's sync before it is even written. Past that, pending appends wait
   * and go out together, as one batch, once a write returns.
   */
  private readonly flush = (): void => {
    this.scheduled = false;
    while (this.pending.length > 0 && this.writing < MAX_WRITES) {
      let messages: Message[];
      let callbacks: AppendCallback[];
      if (this.pendingBytes <= BATCH_BYTES) {
        messages = this.pending;
        callbacks = this.callbacks;
        this.pending = [];
        this.callbacks = [];
        this.pendingBytes = 0;
      } else {
        let bytes = 0;
        let count = 0;
        while (count < this.pending.length && (count === 0 || bytes < BATCH_BYTES)) {
          bytes += this.pending[count]!.payload.length + RECORD_OVERHEAD;
          count++;
        }
        messages = this.pending.splice(0, count);
        callbacks = this.callbacks.splice(0, count);
        this.pendingBytes -= bytes;
      }
      void this.write(messages, callbacks);
    }
  };

  private async write(messages: Message[], callbacks: AppendCallback[]): Promise<void> {
    this.writing++;
    let baseOffset: number;
    try {
      if (this.compressionOf) {
        try {
          this.compression = await this.compressionOf(this.topic);
        } catch {
          // The topic catalog is out of reach: the last codec known does, rather than no append.
        }
      }
      const batch = await this.codec.encode(messages, this.compression);
      baseOffset = (await this.storage.append(this.shard, [batch])).baseOffset;
    } catch (error) {
      this.writing--;
      for (const done of callbacks) done(error, -1);
      this.flush();
      return;
    }
    this.writing--;
    for (const listener of this.listeners) listener(baseOffset, messages);
    // The producers' outcomes wait one microtask, behind the deliveries the listeners scheduled:
    // consumers get the messages first, which keeps end-to-end latency down.
    queueMicrotask(() => {
      for (let i = 0; i < callbacks.length; i++) callbacks[i]!(null, baseOffset + i);
    });
    this.flush();
  }

  async read(offset: number): Promise<ReadMessages> {
    let from = offset;
    for (;;) {
      let result;
      try {
        result = await this.storage.read(this.shard, from, { maxBytes: READ_BYTES });
      } catch (error) {
        if (isRobustMQError(error, ErrorCode.Corrupt)) {
          const to = await this.readableAfter(from);
          return { messages: [], nextOffset: to, damaged: { from, to, error } };
        }
        if (!isRobustMQError(error, ErrorCode.OffsetOutOfRange)) throw error;
        const info = await this.storage.shardInfo(this.shard);
        if (from < info.logStartOffset) from = info.logStartOffset;
        else return { messages: [], nextOffset: info.nextOffset };
        continue;
      }
      const messages: StoredMessage[] = [];
      let nextOffset = from;
      for (const batch of result.batches) {
        let decoded: StoredMessage[];
        try {
          decoded = await this.codec.decode(batch, this.topic);
        } catch (error) {
          if (!isRobustMQError(error, ErrorCode.Corrupt)) throw error;
          // Stored whole but unreadable: the batch says which offsets it held.
          const to = batch.baseOffset + batch.recordCount;
          return { messages, nextOffset: to, damaged: { from: Math.max(from, batch.baseOffset), to, error } };
        }
        for (const message of decoded) if (message.offset >= from) messages.push(ownBytes(message));
        nextOffset = Math.max(nextOffset, batch.baseOffset + batch.recordCount);
      }
      return { messages, nextOffset };
    }
  }

  /**
   * The first offset after `from` that storage serves, when it refuses `from` as corrupt (without
   * saying how far the damage goes): probed at from+1, +2, +4, ... up to the shard's end, then
   * narrowed down between the last refused and the first served. The shard's end when none is.
   */
  private async readableAfter(from: number): Promise<number> {
    const end = (await this.storage.shardInfo(this.shard)).nextOffset;
    let refused = from;
    let served = end;
    for (let step = 1; from + step < end; step *= 2) {
      if (await this.serves(from + step)) {
        served = from + step;
        break;
      }
      refused = from + step;
    }
    while (served - refused > 1) {
      const middle = Math.floor((refused + served) / 2);
      if (await this.serves(middle)) served = middle;
      else refused = middle;
    }
    return served;
  }

  private async serves(offset: number): Promise<boolean> {
    try {
      await this.storage.read(this.shard, offset, { maxBytes: 1 });
      return true;
    } catch (error) {
      if (isRobustMQError(error, ErrorCode.Corrupt)) return false;
      if (isRobustMQError(error, ErrorCode.OffsetOutOfRange)) return true;
      throw error;
    }
  }

  async end(): Promise<number> {
    return (await this.storage.shardInfo(this.shard)).nextOffset;
  }

  waitForData(offset: number, timeoutMs: number): Promise<void> {
    return this.storage.waitForData(this.shard, offset, timeoutMs);
  }

  /** A topic's shard is read by others too (Kafka consumers, other queues): it keeps its messages. */
  trim(_offset: number): void {}
}
