import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GuardedSocket } from '../src/frame-guard.js';

/** A socket stand-in that records each write it gets (a vectored write counts once). */
class RecordingSocket extends Duplex {
  readonly writes: Buffer[] = [];
  ended = false;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.writes.push(chunk);
    done();
  }

  override _writev(chunks: { chunk: Buffer }[], done: () => void): void {
    this.writes.push(Buffer.concat(chunks.map((c) => c.chunk)));
    done();
  }

  override _final(done: () => void): void {
    this.ended = true;
    done();
  }
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function guarded(): { socket: RecordingSocket; guard: GuardedSocket } {
  const socket = new RecordingSocket();
  return { socket, guard: new GuardedSocket(socket, 65_536, () => {}) };
}

describe('the guarded socket', () => {
  it('sends the frames of one turn as one write, in the order written', async () => {
    const { socket, guard } = guarded();
    guard.write(Buffer.from('one,'));
    guard.write(Buffer.from('two,'));
    guard.write(Buffer.from('three'));
    expect(socket.writes).toHaveLength(0);
    expect(guard.writableLength).toBe(13);
    await tick();
    expect(socket.writes.map(String)).toEqual(['one,two,three']);
    guard.write(Buffer.from('four'));
    await tick();
    expect(socket.writes.map(String)).toEqual(['one,two,three', 'four']);
  });

  it('does not copy large frames together, but keeps them in order', async () => {
    const { socket, guard } = guarded();
    const big = Buffer.alloc(200 * 1024, 1);
    guard.write(big);
    guard.write(big);
    guard.write(Buffer.from('tail'));
    await tick();
    const sent = Buffer.concat(socket.writes);
    expect(sent.length).toBe(2 * big.length + 4);
    expect(sent.subarray(-4).toString()).toBe('tail');
  });

  it('sends what is pending before it ends the socket, and on flush', async () => {
    const { socket, guard } = guarded();
    guard.write(Buffer.from('close frame'));
    guard.end();
    await tick();
    expect(socket.writes.map(String)).toEqual(['close frame']);
    expect(socket.ended).toBe(true);

    const other = guarded();
    other.guard.write(Buffer.from('first'));
    other.guard.flush();
    other.socket.write(Buffer.from('second'));
    await tick();
    expect(Buffer.concat(other.socket.writes).toString()).toBe('firstsecond');
  });
});
