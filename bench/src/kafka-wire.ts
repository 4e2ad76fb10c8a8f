/**
 * A small pipelined Kafka client on RobustMQ's own codec, for the kafka suite: it keeps many
 * requests in flight on one connection and costs little CPU, so the figures measure the broker
 * rather than a client library.
 */
import { connect, type Socket } from 'node:net';
import { decodeResponse, encodeRequestChunks } from '@robustmq/protocol-kafka/codec';

interface Pending {
  apiKey: number;
  apiVersion: number;
  resolve: (response: unknown) => void;
  reject: (error: Error) => void;
}

/** Bytes a read into the scratch buffer may bring: size prefixes, small frames, frame starts. */
const SCRATCH_BYTES = 64 * 1024;

export class KafkaWire {
  private readonly pending = new Map<number, Pending>();
  private nextCorrelationId = 1;
  private failure: Error | null = null;
  /** Whether requests are being gathered for one write at the end of this tick. */
  private corked = false;
  /** Where reads land when no frame is being filled. */
  private readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  /** Whether the read under way goes straight into {@link frame}. */
  private readingFrame = false;
  /** The bytes of a size prefix split between reads. */
  private prefix = Buffer.alloc(0);
  /** The frame being received (its size known), and how much of it is there. */
  private frame: Buffer | null = null;
  private filled = 0;

  /** With `reuseFrames`, the memory of the last large response, used for the next one. */
  private spare: Buffer | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly reuseFrames: boolean,
  ) {
    socket.setNoDelay(true);
    const fail = (error: Error) => {
      this.failure = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('kafka connection closed')));
  }

  /**
   * With `reuseFrames`, each response is received into the memory of the one before, as a client
   * that keeps its receive buffer does: a decoded response is then valid only until the next
   * response arrives, so it suits a wire with one request in flight whose caller is done with each
   * response before it sends the next request (the consumers).
   */
  static async open(host: string, port: number, options: { reuseFrames?: boolean } = {}): Promise<KafkaWire> {
    // Reads go straight into the frame being received, so a large Fetch response is neither
    // gathered from chunks nor copied once more by this client: it costs what reading a plain
    // loopback stream costs (the machine limit the consume phase is compared with).
    let wire: KafkaWire | null = null;
    const socket = connect({
      host,
      port,
      onread: {
        buffer: () => wire?.nextReadBuffer() ?? Buffer.allocUnsafe(SCRATCH_BYTES),
        callback: (bytes, buffer) => {
          wire?.received(bytes, buffer);
          return true;
        },
      },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    wire = new KafkaWire(socket, options.reuseFrames ?? false);
    return wire;
  }

  /** Sends one request and resolves with its decoded response body. */
  call<T>(apiKey: number, apiVersion: number, body: unknown): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelationId++;
    // Large records go out from the caller's buffer behind the header, in one vectored write, as
    // librdkafka sends them: the client does not copy each produced batch into a fresh frame.
    const chunks = encodeRequestChunks(
      { apiKey, apiVersion, correlationId, clientId: 'robustmq-bench' },
      body,
    );
    return new Promise<T>((resolve, reject) => {
      this.pending.set(correlationId, {
        apiKey,
        apiVersion,
        resolve: resolve as (response: unknown) => void,
        reject,
      });
      // Requests made in one burst (the producers answered together) leave in one system call,
      // as librdkafka sends every request queued for a broker in one vectored write.
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      for (const chunk of chunks) this.socket.write(chunk);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  /** The frame's missing bytes while one is being received, else the scratch buffer. */
  private nextReadBuffer(): Buffer {
    this.readingFrame = this.frame !== null;
    return this.frame ? this.frame.subarray(this.filled) : this.scratch;
  }

  private received(bytes: number, buffer: Uint8Array): void {
    if (this.readingFrame) {
      this.filled += bytes;
      if (this.filled === this.frame!.length) this.complete();
      return;
    }
    // Into a scratch buffer: size prefixes and small frames, copied out since the next read
    // overwrites them; a frame that goes on past this read is filled by the reads after it.
    const data = Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
    let at = 0;
    while (at < data.length) {
      if (this.frame) {
        const used = Math.min(data.length - at, this.frame.length - this.filled);
        data.copy(this.frame, this.filled, at, at + used);
        this.filled += used;
        at += used;
        if (this.filled === this.frame.length) this.complete();
        continue;
      }
      const need = 4 - this.prefix.length;
      if (data.length - at < need) {
        this.prefix = Buffer.concat([this.prefix, data.subarray(at)]);
        return;
      }
      const size = Buffer.concat([this.prefix, data.subarray(at, at + need)]).readInt32BE(0);
      this.prefix = Buffer.alloc(0);
      at += need;
      this.frame =
        this.spare !== null && this.spare.length >= size
          ? this.spare.subarray(0, size)
          : Buffer.allocUnsafe(size);
      this.filled = 0;
      if (size === 0) this.complete();
    }
  }

  private complete(): void {
    const frame = this.frame!;
    if (
      this.reuseFrames &&
      frame.buffer.byteLength >= SCRATCH_BYTES &&
      (this.spare?.length ?? 0) < frame.buffer.byteLength
    ) {
      this.spare = Buffer.from(frame.buffer, 0, frame.buffer.byteLength);
    }
    this.frame = null;
    this.filled = 0;
    const correlationId = frame.readInt32BE(0);
    const waiter = this.pending.get(correlationId);
    if (!waiter) return;
    this.pending.delete(correlationId);
    try {
      waiter.resolve(decodeResponse(frame, waiter.apiKey, waiter.apiVersion).response);
    } catch (error) {
      waiter.reject(error as Error);
    }
  }
}
