import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/** A frame the guard refuses before it reaches the AMQP engine. */
export interface FrameViolation {
  condition: 'amqp:connection:framing-error' | 'amqp:not-implemented';
  description: string;
  reason:
    | 'frame_too_large'
    | 'bad_frame_header'
    | 'channel_out_of_range'
    | 'bad_protocol_header'
    | 'unsupported_protocol'
    | 'unknown_performative';
  /** The protocol header to send before closing: one the peer could connect with (AMQP 1.0, section 2.2). */
  answer?: Buffer;
}

/** Protocol ids of the AMQP 1.0 protocol headers: AMQP itself and the SASL layer before it. */
export const AMQP_PROTOCOL = 0;
export const SASL_PROTOCOL = 3;

/** The AMQP 1.0 protocol header for a protocol id. */
export function protocolHeader(id: number): Buffer {
  return Buffer.from([0x41, 0x4d, 0x51, 0x50, id, 1, 0, 0]);
}

const AMQP = 0x414d5150;
const NO_BYTES = Buffer.alloc(0);
/** Up to this many bytes of frames are copied into one buffer per socket write. */
const COPY_LIMIT = 256 * 1024;
/** Performative codes: AMQP frames 0x10-0x18 (open .. close), SASL frames 0x40-0x44. */
const KNOWN = [
  [0x10, 0x18],
  [0x40, 0x44],
] as const;

/**
 * Stands between the client's socket and rhea: it follows frame boundaries in the byte stream and
 * stops a frame over the advertised max-frame-size, a frame header that cannot be valid, or an
 * unknown performative before the engine sees it. rhea reads and writes through it as if it were
 * the socket.
 */
export class GuardedSocket extends EventEmitter {
  private remaining = 0;
  private boundary: Buffer = NO_BYTES;
  private stopped = false;
  /** Frames written in this turn, sent together at its end. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Whether the first protocol header has been seen. */
  private started = false;
  /** Protocol ids the next protocol header may have; none once AMQP itself has begun. */
  private protocols: readonly number[] = [];
  /**
   * From the SASL protocol header until rhea writes the sasl-outcome (after which it reads the
   * AMQP layer): only then are written frames looked at for the outcome.
   */
  private awaitingSaslOutcome = false;

  constructor(
    readonly socket: Duplex,
    private readonly maxFrameSize: number,
    private readonly onViolation: (violation: FrameViolation) => void,
    /** The highest channel the broker advertised; AMQP frames on a higher one are refused. */
    private readonly channelMax = 0xffff,
  ) {
    super();
    socket.on('error', (error: Error) => this.emit('error', error));
    socket.on('end', () => this.emit('end'));
  }

  /**
   * Starts reading the socket, once the engine listens; until then its bytes wait in the socket.
   * `protocols` are the ids the first protocol header may have, the preferred first.
   */
  start(protocols: readonly number[]): void {
    this.protocols = protocols;
    this.socket.on('data', (chunk: Buffer) => this.scan(chunk));
  }

  get encrypted(): boolean {
    return (this.socket as { encrypted?: boolean }).encrypted === true;
  }

  get authorized(): boolean {
    return (this.socket as { authorized?: boolean }).authorized === true;
  }

  get remoteAddress(): string | undefined {
    return (this.socket as { remoteAddress?: string }).remoteAddress;
  }

  get remotePort(): number | undefined {
    return (this.socket as { remotePort?: number }).remotePort;
  }

  /**
   * rhea writes each frame on its own; they are gathered until the end of the tick and go out as
   * one buffer, so the frames of one turn (transfers, dispositions, flows) cost one socket write
   * and one system call.
   */
  write(data: Buffer): boolean {
    if (!this.socket.writable) return false;
    if (this.awaitingSaslOutcome && isSaslOutcome(data)) {
      this.awaitingSaslOutcome = false;
      // rhea turns to the AMQP layer right after writing it, in the same turn.
      process.nextTick(() => this.emit('sasl-outcome'));
    }
    if (this.pending.length === 0) process.nextTick(this.flush);
    this.pending.push(data);
    this.pendingBytes += data.length;
    return true;
  }

  /** Sends the frames gathered so far; called at the end of the tick, and before anything written past rhea. */
  readonly flush = (): void => {
    const frames = this.pending;
    if (frames.length === 0) return;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.socket.writable) return;
    if (frames.length === 1) {
      this.socket.write(frames[0]!, this.written);
    } else if (bytes <= COPY_LIMIT) {
      this.socket.write(Buffer.concat(frames, bytes), this.written);
    } else {
      // Large frames are not worth copying: one vectored write instead.
      this.socket.cork();
      const last = frames.length - 1;
      for (let i = 0; i < last; i++) this.socket.write(frames[i]!);
      this.socket.write(frames[last]!, this.written);
      this.socket.uncork();
    }
  };

  /**
   * Emits 'written' as each write leaves the socket's buffer. Node emits 'drain' only once a write
   * took the buffer past its high-water mark (16 KiB), so a smaller limit on what waits there would
   * wait for it in vain.
   */
  private readonly written = (): void => {
    this.emit('written');
  };

  /** Bytes accepted but not yet handed to the socket, plus what the socket still buffers. */
  get writableLength(): number {
    return this.pendingBytes + this.socket.writableLength;
  }

  end(): void {
    this.flush();
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  setNoDelay(noDelay: boolean): void {
    (this.socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(noDelay);
  }

  /** Stops passing input on (the connection is being closed). */
  stop(): void {
    this.stopped = true;
  }

  private scan(chunk: Buffer): void {
    if (this.stopped) return;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - pos);
        pos += take;
        this.remaining -= take;
        continue;
      }
      if (this.boundary.length === 0 && this.plainFrameAt(chunk, pos)) {
        this.remaining = chunk.readUInt32BE(pos);
        continue;
      }
      // At a frame boundary: gather the frame header (and the performative code after it), as a
      // view of this chunk when it starts here, else copied together.
      const start = this.boundary.length === 0 ? pos : -1;
      while (this.boundary.length < this.wanted() && pos < chunk.length) {
        const take = Math.min(this.wanted() - this.boundary.length, chunk.length - pos);
        pos += take;
        this.boundary =
          start >= 0
            ? chunk.subarray(start, pos)
            : Buffer.concat([this.boundary, chunk.subarray(pos - take, pos)]);
      }
      if (this.boundary.length < this.wanted()) break;
      const header = this.boundary;
      const size = this.isProtocolHeader(header) ? 8 : header.readUInt32BE(0);
      const violation = this.check(header);
      if (violation) {
        const frameStart = pos - header.length;
        if (frameStart > 0) this.emit('data', chunk.subarray(0, frameStart));
        this.stopped = true;
        this.onViolation(violation);
        return;
      }
      this.boundary = NO_BYTES;
      this.remaining = size - header.length;
    }
    this.emit('data', chunk);
  }

  /**
   * Whether a frame starts at `pos` whose header and performative code are all in `chunk` and
   * pass every check (the usual case), read in place. Anything else takes the general path.
   */
  private plainFrameAt(chunk: Buffer, pos: number): boolean {
    if (!this.started || chunk.length - pos < 11) return false;
    const size = chunk.readUInt32BE(pos);
    const type = chunk[pos + 5]!;
    if (size < 11 || size > this.maxFrameSize || chunk[pos + 4] !== 2 || (type !== 0 && type !== 1))
      return false;
    if (type === 0 && chunk.readUInt16BE(pos + 6) > this.channelMax) return false;
    if (chunk[pos + 8] !== 0x00 || chunk[pos + 9] !== 0x53) return true;
    const code = chunk[pos + 10]!;
    const [low, high] = KNOWN[type];
    return code >= low && code <= high;
  }

  /** Bytes needed at a boundary: 8 for a protocol header or frame header, 11 to see a performative code. */
  private wanted(): number {
    if (this.boundary.length < 8) return 8;
    const size = this.boundary.readUInt32BE(0);
    if (this.isProtocolHeader(this.boundary) || this.headerViolation(this.boundary)) return 8;
    return size >= 11 && this.boundary[4] === 2 ? 11 : 8;
  }

  /** A protocol header where one may come: first, and after the SASL layer's. */
  private isProtocolHeader(header: Buffer): boolean {
    return this.protocols.length > 0 && header.readUInt32BE(0) === AMQP;
  }

  private check(header: Buffer): FrameViolation | null {
    if (this.isProtocolHeader(header)) return this.protocolViolation(header);
    const violation = this.headerViolation(header);
    if (violation) return violation;
    if (header.length >= 11 && header[8] === 0x00 && header[9] === 0x53) {
      const type = header[5]!;
      const code = header[10]!;
      const [low, high] = KNOWN[type]!;
      if (code < low || code > high) {
        return {
          condition: 'amqp:not-implemented',
          description: `unknown performative 0x${code.toString(16)}`,
          reason: 'unknown_performative',
        };
      }
    }
    return null;
  }

  /**
   * Takes a protocol header for AMQP 1.0 with an id expected here; after the SASL layer's, the
   * AMQP header follows. Any other is answered with the header the peer could use instead: the
   * same protocol in version 1.0 where this listener takes it, else the one it prefers.
   */
  private protocolViolation(header: Buffer): FrameViolation | null {
    const [id, major, minor, revision] = [header[4]!, header[5]!, header[6]!, header[7]!];
    const known = this.protocols.includes(id);
    if (known && major === 1 && minor === 0) {
      this.started = true;
      this.protocols = id === SASL_PROTOCOL ? [AMQP_PROTOCOL] : [];
      // The AMQP header may come in the same read, before rhea has answered the SASL layer.
      if (id === SASL_PROTOCOL) this.awaitingSaslOutcome = true;
      return null;
    }
    return {
      condition: 'amqp:connection:framing-error',
      description: `unsupported protocol header: protocol id ${id}, version ${major}.${minor}.${revision}`,
      reason: 'unsupported_protocol',
      answer: protocolHeader(known ? id : this.protocols[0]!),
    };
  }

  private headerViolation(header: Buffer): FrameViolation | null {
    const size = header.readUInt32BE(0);
    if (!this.started) {
      return {
        condition: 'amqp:connection:framing-error',
        description: 'the stream does not start with an AMQP protocol header',
        reason: 'bad_protocol_header',
        answer: protocolHeader(this.protocols[0] ?? AMQP_PROTOCOL),
      };
    }
    const doff = header[4]!;
    const type = header[5]!;
    if (size < 8 || doff < 2 || doff * 4 > size || (type !== 0 && type !== 1)) {
      return {
        condition: 'amqp:connection:framing-error',
        description: `invalid frame header (size ${size}, data offset ${doff}, type ${type})`,
        reason: 'bad_frame_header',
      };
    }
    // AMQP 1.0 section 2.7.1: a channel outside the range advertised is a framing error.
    const channel = header.readUInt16BE(6);
    if (type === 0 && channel > this.channelMax) {
      return {
        condition: 'amqp:connection:framing-error',
        description: `channel ${channel} exceeds channel-max ${this.channelMax}`,
        reason: 'channel_out_of_range',
      };
    }
    if (size > this.maxFrameSize) {
      return {
        condition: 'amqp:connection:framing-error',
        description: `frame of ${size} bytes exceeds max-frame-size ${this.maxFrameSize}`,
        reason: 'frame_too_large',
      };
    }
    return null;
  }
}

/** Whether `data` is a SASL frame (type 1) holding a sasl-outcome (descriptor 0x44). */
function isSaslOutcome(data: Buffer): boolean {
  return data.length >= 11 && data[5] === 1 && data[8] === 0x00 && data[9] === 0x53 && data[10] === 0x44;
}

/** An AMQP `close` frame carrying an error, written when rhea cannot be asked to (bad input). */
export function encodeCloseFrame(condition: string, description: string): Buffer {
  const symbol = Buffer.from(condition, 'ascii');
  const text = Buffer.from(description.slice(0, 120), 'utf8');
  const error = Buffer.concat([
    Buffer.from([0x00, 0x53, 0x1d, 0xc0, 0, 2, 0xa3, symbol.length]),
    symbol,
    Buffer.from([0xa1, text.length]),
    text,
  ]);
  error[4] = error.length - 5;
  const close = Buffer.concat([Buffer.from([0x00, 0x53, 0x18, 0xc0, 0, 1]), error]);
  close[4] = close.length - 5;
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 2, 0, 0, 0]), close]);
  frame.writeUInt32BE(frame.length, 0);
  return frame;
}
