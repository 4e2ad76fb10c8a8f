import { afterEach, describe, expect, it } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { AMQP_HEADER, frame, OPEN, performatives, RawClient, SASL_HEADER } from './helpers/raw-client.js';
import { TestClient } from './helpers/rhea-client.js';

type Broker = Awaited<ReturnType<typeof startInProcess>>;

const brokers: Broker[] = [];

async function broker(settings: Record<string, unknown> = {}): Promise<Broker> {
  const started = await startInProcess(settings);
  brokers.push(started);
  return started;
}

afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.stop()));
});

/** `begin` on channel 0: no remote channel, next-outgoing-id 0, windows of 100. */
const BEGIN = frame(Buffer.from([0x00, 0x53, 0x11, 0xc0, 0x07, 0x04, 0x40, 0x43, 0x52, 0x64, 0x52, 0x64]));
/** `detach` of handle 7, which was never attached. */
const DETACH_UNKNOWN = frame(Buffer.from([0x00, 0x53, 0x16, 0xc0, 0x03, 0x01, 0x52, 0x07]));
/** `detach` of a handle that is a string ("x"): a frame that does not decode as AMQP. */
const DETACH_MALFORMED = frame(Buffer.from([0x00, 0x53, 0x16, 0xc0, 0x04, 0x01, 0xa1, 0x01, 0x78]));

const header = (...bytes: number[]) => Buffer.from([0x41, 0x4d, 0x51, 0x50, ...bytes]);

/** Sends `bytes` on a new connection; resolves with all the broker sent once it has closed. */
async function answer(port: number, bytes: Buffer): Promise<Buffer> {
  const raw = await RawClient.open(port);
  raw.send(bytes);
  await raw.closedText();
  return raw.received;
}

const bad = (b: Broker, reason: string) => b.metrics.get('robustmq_amqp_bad_input_total', { reason });

describe('an error in a pipelined handshake', () => {
  it('is sent after the broker header and open (AMQP 1.0, sections 2.2 and 2.4)', async () => {
    const b = await broker();
    const received = await answer(b.port, Buffer.concat([AMQP_HEADER, OPEN, BEGIN, DETACH_MALFORMED]));
    expect(received.subarray(0, 8)).toEqual(AMQP_HEADER);
    expect(performatives(received.subarray(8))).toEqual([0x10, 0x18]);
    expect(received.toString('latin1')).toContain('amqp:decode-error');
    expect(received.toString('latin1')).toContain('Invalid handle x');
    expect(bad(b, 'decode_error')).toBe(1);
  });

  it("ends a session after the broker's open and the session's begin (AMQP 1.0, section 2.8.16)", async () => {
    const b = await broker();
    const raw = await RawClient.open(b.port);
    raw.send(Buffer.concat([AMQP_HEADER, OPEN, BEGIN, DETACH_UNKNOWN]));
    await expect.poll(() => performatives(raw.received.subarray(8))).toEqual([0x10, 0x11, 0x17]);
    expect(raw.received.toString('latin1')).toContain('amqp:session:unattached-handle');
    expect(bad(b, 'unattached_handle')).toBe(1);
    raw.socket.destroy();
  });
});

/** A sasl-init choosing ANONYMOUS, without an initial response. */
const SASL_INIT_ANONYMOUS = frame(
  Buffer.concat([Buffer.from([0x00, 0x53, 0x41, 0xc0, 0x0c, 0x01, 0xa3, 0x09]), Buffer.from('ANONYMOUS')]),
  1,
);

describe('a SASL handshake pipelined with the AMQP header and open (AMQP 1.0, sections 2.4.2 and 5.3.2)', () => {
  /** The performatives of the SASL layer and of the AMQP layer the broker answered with. */
  function layers(received: Buffer): { sasl: number[]; amqp: number[] } {
    const at = received.indexOf(AMQP_HEADER, 8);
    if (at < 0) return { sasl: performatives(received.subarray(8)), amqp: [] };
    return { sasl: performatives(received.subarray(8, at)), amqp: performatives(received.subarray(at + 8)) };
  }

  it('is answered in full, as when the client waits for each step', async () => {
    const b = await broker({ handshake_timeout_ms: 3000 });
    const raw = await RawClient.open(b.port);
    raw.send(Buffer.concat([SASL_HEADER, SASL_INIT_ANONYMOUS, AMQP_HEADER, OPEN]));
    await expect
      .poll(() => layers(raw.received), { timeout: 2000 })
      .toEqual({
        sasl: [0x40, 0x44],
        amqp: [0x10],
      });
    expect(raw.received.subarray(0, 8)).toEqual(SASL_HEADER);
    raw.socket.destroy();
  });

  it('is answered in full when the AMQP header arrives split across two reads', async () => {
    const b = await broker({ handshake_timeout_ms: 3000 });
    const raw = await RawClient.open(b.port);
    raw.send(Buffer.concat([SASL_HEADER, SASL_INIT_ANONYMOUS, AMQP_HEADER.subarray(0, 5)]));
    await new Promise((r) => setTimeout(r, 20));
    raw.send(Buffer.concat([AMQP_HEADER.subarray(5), OPEN, BEGIN]));
    await expect
      .poll(() => layers(raw.received), { timeout: 2000 })
      .toEqual({
        sasl: [0x40, 0x44],
        amqp: [0x10, 0x11],
      });
    raw.socket.destroy();
  });
});

describe('the handshake timeout', () => {
  it('closes connections that do not send their open in time, and counts them', async () => {
    const b = await broker({ handshake_timeout_ms: 300 });
    const [silent, headerOnly, saslOnly] = await Promise.all([
      answer(b.port, Buffer.alloc(0)),
      answer(b.port, AMQP_HEADER),
      answer(b.port, SASL_HEADER),
    ]);
    expect(silent).toEqual(Buffer.alloc(0));
    expect(headerOnly).toEqual(AMQP_HEADER);
    // The SASL header and the mechanisms on offer; no outcome.
    expect(saslOnly.subarray(0, 8)).toEqual(SASL_HEADER);
    expect(performatives(saslOnly.subarray(8))).toEqual([0x40]);
    expect(bad(b, 'handshake_timeout')).toBe(3);
    expect(b.metrics.get('robustmq_amqp_connections', { listener: 'tcp' })).toBe(0);
  });

  it('leaves a client that sent its open alone', async () => {
    const b = await broker({ handshake_timeout_ms: 300 });
    const client = await TestClient.connect(b.port);
    await new Promise((r) => setTimeout(r, 600));
    const sender = await client.sender('queue://after-handshake');
    expect((await sender.send({ body: 'still here' })).outcome).toBe('accepted');
    await client.close();
    expect(bad(b, 'handshake_timeout')).toBe(0);
  });
});

describe('an unsupported protocol header (AMQP 1.0, section 2.2)', () => {
  const unsupported: Array<[string, Buffer]> = [
    ['AMQP 0-9-1', header(0, 0, 9, 1)],
    ['AMQP 0-10', header(1, 1, 0, 10)],
    ['TLS (protocol id 2) without a TLS listener', header(2, 1, 0, 0)],
    ['AMQP 2.0', header(0, 2, 0, 0)],
  ];

  it.each(unsupported)('%s is answered with the AMQP 1.0 header, then closed', async (_, sent) => {
    const b = await broker();
    expect(await answer(b.port, sent)).toEqual(AMQP_HEADER);
    expect(bad(b, 'unsupported_protocol')).toBe(1);
  });

  it('SASL in another version is answered with the SASL 1.0 header', async () => {
    const b = await broker();
    expect(await answer(b.port, header(3, 2, 0, 0))).toEqual(SASL_HEADER);
  });

  it.each([...unsupported, ['AMQP 1.0 without SASL', AMQP_HEADER] as [string, Buffer]])(
    '%s is answered with the SASL header where SASL is required',
    async (_, sent) => {
      const b = await broker({ allow_anonymous: false });
      expect(await answer(b.port, sent)).toEqual(SASL_HEADER);
    },
  );

  it('bytes that are not AMQP get the SASL header where SASL is required', async () => {
    const b = await broker({ allow_anonymous: false });
    expect(await answer(b.port, Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toEqual(SASL_HEADER);
    expect(bad(b, 'bad_protocol_header')).toBe(1);
  });
});
