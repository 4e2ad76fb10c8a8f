import { connect, type Socket } from 'node:net';
import { decodeResponse, encodeRequest } from '../../src/codec/index.js';

/** A Kafka connection speaking through the package's own codec, for protocol-level tests. */
export class RawClient {
  private buffered = Buffer.alloc(0);
  private waiters: Array<(frame: Buffer) => void> = [];
  private frames: Buffer[] = [];
  private correlationId = 1;
  closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (data: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, data]);
      while (this.buffered.length >= 4 && this.buffered.length >= 4 + this.buffered.readInt32BE(0)) {
        const size = this.buffered.readInt32BE(0);
        const frame = this.buffered.subarray(4, 4 + size);
        this.buffered = this.buffered.subarray(4 + size);
        const waiter = this.waiters.shift();
        if (waiter) waiter(frame);
        else this.frames.push(frame);
      }
    });
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** The next response frame (after the size prefix). */
  nextFrame(timeoutMs = 10_000): Promise<Buffer> {
    const ready = this.frames.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response frame')), timeoutMs);
      this.waiters.push((frame) => {
        clearTimeout(timer);
        resolve(frame);
      });
    });
  }

  /** Sends a request without waiting; returns its correlation id. */
  send(apiKey: number, apiVersion: number, body: unknown): number {
    const correlationId = this.correlationId++;
    this.socket.write(encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'raw-test' }, body));
    return correlationId;
  }

  /** Sends a request and decodes its response. */
  async request<T>(apiKey: number, apiVersion: number, body: unknown): Promise<T> {
    const correlationId = this.send(apiKey, apiVersion, body);
    const frame = await this.nextFrame();
    const decoded = decodeResponse(frame, apiKey, apiVersion);
    if (decoded.correlationId !== correlationId) throw new Error('correlation id mismatch');
    return decoded.response as T;
  }

  close(): void {
    this.socket.destroy();
  }
}
