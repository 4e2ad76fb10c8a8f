/**
 * A small pipelined Kafka client on RobustMQ's own codec, for the kafka suite: it keeps many
 * requests in flight on one connection and costs little CPU, so the figures measure the broker
 * rather than a client library.
 */
import { connect, type Socket } from 'node:net';
import { decodeResponse, encodeRequest } from '@robustmq/protocol-kafka/codec';

interface Pending {
  apiKey: number;
  apiVersion: number;
  resolve: (response: unknown) => void;
  reject: (error: Error) => void;
}

export class KafkaWire {
  private readonly pending = new Map<number, Pending>();
  private nextCorrelationId = 1;
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private failure: Error | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    const fail = (error: Error) => {
      this.failure = error;
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('kafka connection closed')));
  }

  static async open(host: string, port: number): Promise<KafkaWire> {
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new KafkaWire(socket);
  }

  /** Sends one request and resolves with its decoded response body. */
  call<T>(apiKey: number, apiVersion: number, body: unknown): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const correlationId = this.nextCorrelationId++;
    const frame = encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'robustmq-bench' }, body);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(correlationId, {
        apiKey,
        apiVersion,
        resolve: resolve as (response: unknown) => void,
        reject,
      });
      this.socket.write(frame);
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    // Join chunks only once a whole frame is there: a large Fetch response arrives in many chunks,
    // and joining at each one would copy it over and over.
    if (this.bufferedBytes < 4) return;
    if (this.buffered.length > 1 && this.buffered[0]!.length >= 4) {
      const size = this.buffered[0]!.readInt32BE(0);
      if (this.bufferedBytes < 4 + size) return;
    }
    let data = this.buffered.length === 1 ? chunk : Buffer.concat(this.buffered, this.bufferedBytes);
    let offset = 0;
    while (data.length - offset >= 4) {
      const size = data.readInt32BE(offset);
      if (data.length - offset - 4 < size) break;
      const frame = data.subarray(offset + 4, offset + 4 + size);
      offset += 4 + size;
      const correlationId = frame.readInt32BE(0);
      const waiter = this.pending.get(correlationId);
      if (!waiter) continue;
      this.pending.delete(correlationId);
      try {
        waiter.resolve(decodeResponse(frame, waiter.apiKey, waiter.apiVersion).response);
      } catch (error) {
        waiter.reject(error as Error);
      }
    }
    data = data.subarray(offset);
    this.buffered = data.length > 0 ? [data] : [];
    this.bufferedBytes = data.length;
  }
}
