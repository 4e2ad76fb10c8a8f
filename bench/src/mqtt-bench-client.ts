/**
 * A minimal MQTT 3.1.1 client for load generation: mqtt-packet encodes and parses, publishes are
 * written in batches from a pre-encoded frame with only the payload (and packet id) patched, and
 * PUBACKs from a subscriber go out in one write per chunk read. No reconnects, no retries.
 *
 * Incoming PUBLISH and PUBACK frames are read by a small frame scanner instead of mqtt-packet's
 * parser (about 0.5 M packets/s per core here), which would otherwise be the limit of a load
 * process before the fastest broker is; every other packet goes to mqtt-packet.
 */
import { connect, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';

export interface ConnectOptions {
  host: string;
  port: number;
  clientId: string;
  keepalive: number;
}

/** Called for each PUBLISH received, with the time (hrtime ns) its chunk was read. */
export type PublishHandler = (payload: Buffer, receivedAt: bigint) => void;

const PUBACK_BYTES = 4;

export class MqttBenchClient {
  /** Set before subscribing to receive messages. */
  onPublish: PublishHandler | null = null;
  /** PUBACKs received for this client's QoS 1 publishes. */
  acked = 0;
  /** Called when a PUBACK arrives (after `acked` is counted). */
  onAck: (() => void) | null = null;
  /** Called once when the connection ends for any reason other than {@link close}. */
  onLost: ((error: Error) => void) | null = null;

  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private waiting: { cmd: string; resolve: () => void; reject: (error: Error) => void } | null = null;
  private receivedAt = 0n;
  private pendingAcks: Buffer | null = null;
  private pendingAckBytes = 0;
  private closing = false;
  /** The start of a frame whose end has not arrived yet. */
  private leftover: Buffer | null = null;

  private constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    this.parser.on('packet', (packet: Packet) => this.handle(packet));
    this.parser.on('error', (error: Error) => socket.destroy(error));
    socket.on('data', (chunk: Buffer) => {
      this.receivedAt = process.hrtime.bigint();
      this.read(chunk);
      this.flushAcks();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const error = new Error('connection closed by the broker');
      this.waiting?.reject(error);
      this.waiting = null;
      if (!this.closing) this.onLost?.(error);
    });
  }

  static async connect(options: ConnectOptions): Promise<MqttBenchClient> {
    const socket = connect({ host: options.host, port: options.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new MqttBenchClient(socket);
    const connack = client.expect('connack');
    socket.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: options.clientId,
        keepalive: options.keepalive,
      }),
    );
    await connack;
    return client;
  }

  /** Subscribes to one filter and waits for the SUBACK. */
  async subscribe(filter: string, qos: 0 | 1): Promise<void> {
    const suback = this.expect('suback');
    this.socket.write(
      mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos }] }),
    );
    await suback;
  }

  /** Writes raw bytes (a batch of encoded frames); false when the socket buffer is full. */
  write(frames: Buffer): boolean {
    return this.socket.write(frames);
  }

  /** Resolves when the socket buffer has drained. */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('drain', resolve);
      this.socket.once('close', resolve);
    });
  }

  /** Sends DISCONNECT and closes. */
  close(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end(mqttPacket.generate({ cmd: 'disconnect' }));
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** Drops the connection without DISCONNECT. */
  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** Splits the stream into frames; PUBLISH and PUBACK are decoded here, the rest by mqtt-packet. */
  private read(chunk: Buffer): void {
    const data = this.leftover === null ? chunk : Buffer.concat([this.leftover, chunk]);
    this.leftover = null;
    let at = 0;
    while (at < data.length) {
      // Fixed header: type and flags, then the remaining length in 1-4 bytes of 7 bits.
      let length = 0;
      let multiplier = 1;
      let cursor = at + 1;
      let complete = false;
      while (cursor < data.length && cursor - at <= 4) {
        const byte = data[cursor++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || cursor + length > data.length) break;
      const first = data[at]!;
      const type = first >> 4;
      if (type === 3) {
        const qos = (first >> 1) & 3;
        const topicLength = data.readUInt16BE(cursor);
        let payloadAt = cursor + 2 + topicLength;
        if (qos > 0) {
          this.queueAck(data.readUInt16BE(payloadAt));
          payloadAt += 2;
        }
        this.onPublish?.(data.subarray(payloadAt, cursor + length), this.receivedAt);
      } else if (type === 4) {
        this.acked++;
        this.onAck?.();
      } else {
        this.parser.parse(data.subarray(at, cursor + length));
      }
      at = cursor + length;
    }
    if (at < data.length) this.leftover = Buffer.from(data.subarray(at));
  }

  private expect(cmd: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting = { cmd, resolve, reject };
    });
  }

  private handle(packet: Packet): void {
    switch (packet.cmd) {
      case 'connack':
        if (packet.returnCode !== 0) {
          this.waiting?.reject(new Error(`CONNACK return code ${packet.returnCode}`));
          this.waiting = null;
          return;
        }
        break;
      case 'suback':
        if (packet.granted.some((code) => typeof code === 'number' && code >= 0x80)) {
          this.waiting?.reject(new Error('subscription refused'));
          this.waiting = null;
          return;
        }
        break;
      default:
        return;
    }
    if (this.waiting?.cmd === packet.cmd) {
      this.waiting.resolve();
      this.waiting = null;
    }
  }

  private queueAck(messageId: number): void {
    if (this.pendingAcks === null || this.pendingAckBytes + PUBACK_BYTES > this.pendingAcks.length) {
      this.flushAcks();
      this.pendingAcks = Buffer.allocUnsafe(PUBACK_BYTES * 1024);
    }
    const at = this.pendingAckBytes;
    this.pendingAcks[at] = 0x40;
    this.pendingAcks[at + 1] = 2;
    this.pendingAcks.writeUInt16BE(messageId, at + 2);
    this.pendingAckBytes += PUBACK_BYTES;
  }

  private flushAcks(): void {
    if (this.pendingAcks === null || this.pendingAckBytes === 0) return;
    this.socket.write(this.pendingAcks.subarray(0, this.pendingAckBytes));
    this.pendingAcks = null;
    this.pendingAckBytes = 0;
  }
}
