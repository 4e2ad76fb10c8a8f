import type { Socket } from 'node:net';
import type { Logger } from '@robustmq/core';
import { FrameReader, PREAMBLE, ProtocolError, type EncodedFrame, type Frame } from './frame.js';

export interface FramedConnectionOptions {
  maxFrameBytes: number;
  logger: Logger;
  /** Called for each frame, in order. Throwing a ProtocolError closes the connection. */
  onFrame: (frame: Frame) => void;
  /** Called once when the connection is gone, with the reason when it was an error. */
  onClose: (reason: Error | undefined) => void;
  /** Called once the peer's preamble has arrived, before any of its frames. */
  onPreamble?: () => void;
}

/**
 * One socket speaking the frame format, shared by both ends. It owns the two kinds of
 * backpressure: outgoing frames go through `socket.write()`, corked so that the frames queued in one
 * tick leave in one write, and {@link writable} turns false while the socket's buffer is full;
 * incoming frames are taken one by one and stop while {@link pauseReading} holds, which also stops
 * reading the socket so that the peer's writes block instead of our memory growing.
 */
export class FramedConnection {
  private readonly reader: FrameReader;
  private corked = false;
  private readPaused = false;
  private closed = false;
  private preambleReported = false;
  private drainWaiters: (() => void)[] = [];
  readonly peer: string;

  constructor(
    readonly socket: Socket,
    private readonly options: FramedConnectionOptions,
  ) {
    this.reader = new FrameReader(options.maxFrameBytes);
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.takeFrames();
    });
    socket.on('drain', () => this.wakeDrainWaiters());
    socket.on('error', (error) => this.finish(error));
    socket.on('close', () => this.finish(undefined));
    socket.write(PREAMBLE);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** False while the socket's write buffer is over its high-water mark. */
  get writable(): boolean {
    return !this.closed && !this.socket.writableNeedDrain;
  }

  /** Bytes queued in the socket not yet handed to the kernel. */
  get bufferedWriteBytes(): number {
    return this.socket.writableLength;
  }

  /** Resolves once the socket can take more (or the connection is closed). */
  whenWritable(): Promise<void> {
    if (this.writable || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Queues a frame. Frames queued in the same tick are written together. Returns what
   * `socket.write()` returned for the last part: false means wait for {@link whenWritable}.
   */
  send(frame: EncodedFrame): boolean {
    if (this.closed) return false;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let ok = true;
    for (const part of frame.parts) ok = this.socket.write(part);
    return ok;
  }

  pauseReading(): void {
    if (this.readPaused) return;
    this.readPaused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.readPaused || this.closed) return;
    this.readPaused = false;
    this.takeFrames();
    if (!this.readPaused) this.socket.resume();
  }

  /** Closes the connection; `reason` is logged and passed to onClose. */
  close(reason?: Error): void {
    if (this.closed) return;
    this.finish(reason);
    this.socket.destroy();
  }

  private takeFrames(): void {
    try {
      while (!this.readPaused && !this.closed) {
        const frame = this.reader.next();
        if (!this.preambleReported && this.reader.preambleSeen) {
          this.preambleReported = true;
          this.options.onPreamble?.();
          if (this.closed) return;
        }
        if (!frame) return;
        this.options.onFrame(frame);
      }
    } catch (error) {
      // Whatever went wrong, it concerns this connection only: close it, keep the process up.
      const reason = error instanceof Error ? error : new Error(String(error));
      if (error instanceof ProtocolError) {
        this.options.logger.warn(
          { peer: this.peer, reason: reason.message },
          'rpc protocol error, closing the connection',
        );
      } else {
        this.options.logger.error(
          { peer: this.peer, err: reason },
          'rpc frame handling failed, closing the connection',
        );
      }
      this.close(reason);
    }
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }

  private finish(reason: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.wakeDrainWaiters();
    this.options.onClose(reason);
  }
}
