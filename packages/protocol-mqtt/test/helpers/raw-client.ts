import { connect, type Socket } from 'node:net';
import { encodePacket, PacketParser, type Packet, type ProtocolVersion } from '../../src/codec/index.js';

/** A bare TCP client for sending exact bytes and reading the broker's packets. */
export class RawClient {
  private readonly packets: Array<[Packet, Buffer]> = [];
  private waiters: Array<() => void> = [];
  private readonly parser: PacketParser;
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(
    readonly socket: Socket,
    readonly version: ProtocolVersion,
  ) {
    this.parser = new PacketParser({
      protocolVersion: version,
      onPacket: (packet, frame) => {
        this.packets.push([packet, Buffer.from(frame)]);
        this.wake();
      },
      onError: (error) => {
        throw error;
      },
    });
    socket.on('data', (chunk: Buffer) => this.parser.parse(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number, version: ProtocolVersion = 4): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket, version)));
      socket.once('error', reject);
    });
  }

  /** Opens a connection and completes CONNECT/CONNACK. */
  static async connected(
    port: number,
    version: ProtocolVersion,
    clientId: string,
    extra: Partial<Extract<Packet, { cmd: 'connect' }>> = {},
  ): Promise<RawClient> {
    const client = await RawClient.open(port, version);
    client.send({
      cmd: 'connect',
      protocolId: version === 3 ? 'MQIsdp' : 'MQTT',
      protocolVersion: version,
      clientId,
      clean: true,
      keepalive: 60,
      ...extra,
    });
    const connack = await client.next();
    if (connack.cmd !== 'connack') throw new Error(`expected CONNACK, got ${connack.cmd}`);
    return client;
  }

  send(packet: Packet): void {
    this.socket.write(encodePacket(packet, this.version));
  }

  write(bytes: Buffer | number[]): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes));
  }

  /** The next packet from the broker; rejects if the connection closes first or on timeout. */
  async next(timeoutMs = 5000): Promise<Packet> {
    return (await this.nextWithBytes(timeoutMs))[0];
  }

  /** The next packet from the broker, as the bytes it came in. */
  async nextBytes(timeoutMs = 5000): Promise<Buffer> {
    return (await this.nextWithBytes(timeoutMs))[1];
  }

  /** The next packet from the broker and the bytes it came in. */
  async nextWithBytes(timeoutMs = 5000): Promise<[Packet, Buffer]> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length === 0) {
      if (this.isClosed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no packet in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.packets.shift()!;
  }

  /** Resolves true if the broker closes the connection within `timeoutMs`. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs));
    return Promise.race([this.closed.then(() => true), timeout]);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
