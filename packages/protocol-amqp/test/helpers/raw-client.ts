import { connect, type Socket } from 'node:net';

/** The AMQP protocol header without SASL. */
export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 1, 0, 0]);

/** The protocol header of the SASL layer. */
export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 3, 1, 0, 0]);

/** The performative codes of the frames in `bytes`, which start at a frame boundary. */
export function performatives(bytes: Buffer): number[] {
  const codes: number[] = [];
  let pos = 0;
  while (pos + 8 <= bytes.length) {
    const size = bytes.readUInt32BE(pos);
    if (size < 8) break;
    const body = pos + bytes[pos + 4]! * 4;
    // An empty frame (a heartbeat) has no performative.
    if (pos + size > body) codes.push(bytes[body + 2]!);
    pos += size;
  }
  return codes;
}

/** One AMQP frame on channel 0 around `body` (a performative's encoding). */
export function frame(body: Buffer, type = 0): Buffer {
  const head = Buffer.from([0, 0, 0, 0, 2, type, 0, 0]);
  head.writeUInt32BE(8 + body.length, 0);
  return Buffer.concat([head, body]);
}

/** An `open` performative with container-id "raw". */
export const OPEN = frame(Buffer.from([0x00, 0x53, 0x10, 0xc0, 0x06, 0x01, 0xa1, 0x03, 0x72, 0x61, 0x77]));

/** A socket that collects everything the broker writes until it closes the connection. */
export class RawClient {
  received = Buffer.alloc(0);
  closed: Promise<void>;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for the broker to close; returns what it sent as latin1 text (conditions are ASCII). */
  async closedText(timeoutMs = 5000): Promise<string> {
    await Promise.race([
      this.closed,
      new Promise((_, reject) => setTimeout(() => reject(new Error('not closed')), timeoutMs)),
    ]);
    return this.received.toString('latin1');
  }

  async waitFor(bytes: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < bytes) {
      if (Date.now() > deadline) throw new Error(`got ${this.received.length} of ${bytes} bytes`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
