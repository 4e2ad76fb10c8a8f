import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startInProcess } from './helpers/in-process.js';
import { AMQP_HEADER, frame, OPEN, RawClient, SASL_HEADER } from './helpers/raw-client.js';
import { TestClient } from './helpers/rhea-client.js';

let broker: Awaited<ReturnType<typeof startInProcess>>;

beforeAll(async () => {
  broker = await startInProcess({ max_frame_size: 4096, idle_timeout_ms: 400 });
});

afterAll(async () => {
  await broker.stop();
});

/** Opens AMQP (header and open), then sends `bad`; returns what the broker answered. */
async function afterOpen(bad: Buffer): Promise<string> {
  const raw = await RawClient.open(broker.port);
  raw.send(Buffer.concat([AMQP_HEADER, OPEN]));
  await raw.waitFor(9);
  raw.send(bad);
  return raw.closedText();
}

async function stillServes(): Promise<void> {
  const client = await TestClient.connect(broker.port);
  const sender = await client.sender('queue://after-bad-input');
  expect((await sender.send({ body: 'fine' })).outcome).toBe('accepted');
  await client.close();
}

const bad = (reason: string) => broker.metrics.get('robustmq_amqp_bad_input_total', { reason });

/** A sasl-init frame for PLAIN with `user` and `password`. */
function plainInit(user: string, password: string): Buffer {
  const mechanism = Buffer.from('PLAIN');
  const response = Buffer.from(`\0${user}\0${password}`);
  const fields = Buffer.concat([
    Buffer.from([0xa3, mechanism.length]),
    mechanism,
    Buffer.from([0xa0, response.length]),
    response,
  ]);
  return frame(Buffer.concat([Buffer.from([0x00, 0x53, 0x41, 0xc0, fields.length + 1, 2]), fields]), 1);
}

describe('bad input', () => {
  it('closes with framing-error for a frame over max-frame-size', async () => {
    const header = Buffer.from([0, 0x01, 0, 0, 2, 0, 0, 0]);
    expect(await afterOpen(header)).toContain('amqp:connection:framing-error');
    expect(bad('frame_too_large')).toBe(1);
    await stillServes();
  });

  it('closes with framing-error for a frame on a channel over channel-max (AMQP 1.0 section 2.7.1)', async () => {
    // A begin (next-outgoing-id 0, incoming-window 100, outgoing-window 100) on channel 300; the
    // broker advertised channel-max 255.
    const begin = frame(Buffer.from([0x00, 0x53, 0x11, 0xc0, 0x07, 0x04, 0x40, 0x43, 0x52, 100, 0x52, 100]));
    begin.writeUInt16BE(300, 6);
    const text = await afterOpen(begin);
    expect(text).toContain('amqp:connection:framing-error');
    expect(text).toContain('channel 300');
    expect(bad('channel_out_of_range')).toBe(1);
    await stillServes();
  });

  it('closes with not-implemented for an unknown performative', async () => {
    const text = await afterOpen(frame(Buffer.from([0x00, 0x53, 0x30, 0x45])));
    expect(text).toContain('amqp:not-implemented');
    expect(text).toContain('unknown performative 0x30');
    expect(bad('unknown_performative')).toBe(1);
    await stillServes();
  });

  it('closes with decode-error for a performative that does not decode', async () => {
    const begin = frame(Buffer.from([0x00, 0x53, 0x11, 0xc0, 0x04, 0x02, 0xff, 0xff, 0xff]));
    expect(await afterOpen(begin)).toContain('amqp:decode-error');
    expect(bad('decode_error')).toBe(1);
    await stillServes();
  });

  it('closes with framing-error for a frame header that cannot be valid', async () => {
    expect(await afterOpen(Buffer.from([0, 0, 0, 4, 2, 0, 0, 0]))).toContain('amqp:connection:framing-error');
    expect(bad('bad_frame_header')).toBe(1);
    await stillServes();
  });

  it('checks one sasl-init per connection and closes it at a second', async () => {
    // Each password check is costly: a client must not get hundreds of them for one connection.
    const refused = () => broker.metrics.get('robustmq_amqp_refused_total', { reason: 'bad_credentials' });
    const before = refused();
    const raw = await RawClient.open(broker.port);
    raw.send(Buffer.concat([SASL_HEADER, ...Array.from({ length: 50 }, () => plainInit('alice', 'wrong'))]));
    await raw.closedText();
    await new Promise((r) => setTimeout(r, 100));
    expect(refused() - before).toBeLessThanOrEqual(1);
    expect(bad('protocol_error')).toBe(1);
    await stillServes();
  });

  it('closes the socket for something that is not AMQP', async () => {
    const raw = await RawClient.open(broker.port);
    raw.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await raw.closedText();
    expect(bad('bad_protocol_header')).toBe(1);
    await stillServes();
  });

  it('closes an idle connection that sends no heartbeats', async () => {
    const raw = await RawClient.open(broker.port);
    raw.send(Buffer.concat([AMQP_HEADER, OPEN]));
    const text = await raw.closedText(5000);
    expect(text).toContain('amqp:resource-limit-exceeded');
  });

  it('keeps a client that sends heartbeats', async () => {
    const client = await TestClient.connect(broker.port, { idle_time_out: 200 });
    await new Promise((r) => setTimeout(r, 1200));
    const sender = await client.sender('queue://heartbeats');
    expect((await sender.send({ body: 'alive' })).outcome).toBe('accepted');
    await client.close();
  });

  it('rejects a message with a malformed body and keeps the link', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://malformed');
    const broken = Buffer.from([0x00, 0x53, 0x75, 0xb0, 0x00, 0x00, 0x10, 0x00, 0x01]);
    const delivery = sender.link.send(broken, undefined, 0);
    const outcome = await new Promise<string>((resolve) => {
      sender.link.once('rejected', (context) => {
        expect(context.delivery).toBe(delivery);
        resolve((context.delivery!.remote_state as { error: { condition: string } }).error.condition);
      });
    });
    expect(outcome).toBe('amqp:decode-error');
    expect((await sender.send({ body: 'next' })).outcome).toBe('accepted');
    expect(bad('malformed_message')).toBe(1);
    await client.close();
  });

  it('detaches a link that sends without credit, and keeps the connection', async () => {
    const limited = await startInProcess({ link_credit: 10 });
    const stderr = vi.spyOn(console, 'error');
    try {
      const client = await TestClient.connect(limited.port);
      const sender = await client.sender('queue://no-credit');
      while (!sender.link.sendable()) await new Promise((r) => setTimeout(r, 5));
      // A producer that ignores flow control: rhea's client sends only with credit unless told otherwise.
      (sender.link as unknown as { has_credit(): boolean }).has_credit = () => true;
      let accepted = 0;
      sender.link.on('accepted', () => accepted++);
      for (let i = 0; i < 100; i++) sender.link.send({ body: `m-${i}` });
      expect((await sender.waitClosed(2000)).condition).toBe('amqp:link:transfer-limit-exceeded');
      await new Promise((r) => setTimeout(r, 200));
      expect(accepted).toBeLessThanOrEqual(10);
      expect(
        limited.metrics.get('robustmq_amqp_bad_input_total', { reason: 'transfer_limit_exceeded' }),
      ).toBe(1);
      expect(stderr.mock.calls.filter((call) => String(call[0]).includes('credit'))).toEqual([]);
      const again = await client.sender('queue://no-credit');
      expect((await again.send({ body: 'within credit' })).outcome).toBe('accepted');
      await client.close();
    } finally {
      stderr.mockRestore();
      await limited.stop();
    }
  });

  it('keeps to the credit it gave when a producer claims more in a flow with drain set', async () => {
    const limited = await startInProcess({ link_credit: 10 });
    const stderr = vi.spyOn(console, 'error');
    try {
      const client = await TestClient.connect(limited.port);
      const sender = await client.sender('queue://claims-credit');
      while (!sender.link.sendable()) await new Promise((r) => setTimeout(r, 5));
      // A flow from the sending end with drain set and a credit of its own choosing.
      const link = sender.link as unknown as {
        credit: number;
        _get_drain(): boolean;
        has_credit(): boolean;
        session: { _write_flow(link: unknown): void };
      };
      link._get_drain = () => true;
      link.credit = 100_000;
      link.session._write_flow(link);
      link.has_credit = () => true;
      for (let i = 0; i < 100; i++) sender.link.send({ body: `m-${i}` });
      expect((await sender.waitClosed(2000)).condition).toBe('amqp:link:transfer-limit-exceeded');
      expect(stderr.mock.calls).toEqual([]);
      await client.close();
    } finally {
      stderr.mockRestore();
      await limited.stop();
    }
  });

  it('detaches a link whose message is over max_message_size', async () => {
    const small = await startInProcess({ max_message_size: 1024 });
    const client = await TestClient.connect(small.port);
    const sender = await client.sender('queue://big');
    sender.link.send({ body: Buffer.alloc(4000) });
    expect((await sender.waitClosed()).condition).toBe('amqp:link:message-size-exceeded');
    await client.close();
    await small.stop();
  });
});
