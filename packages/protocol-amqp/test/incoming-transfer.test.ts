import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncomingTransfer, readIncomingTransfer } from '../src/transfer-frame.js';
import { startInProcess } from './helpers/in-process.js';
import { AMQP_HEADER, frame, OPEN, RawClient } from './helpers/raw-client.js';
import type { Delivery, Sender } from 'rhea';
import { TestClient, type TestReceiver } from './helpers/rhea-client.js';

// rhea's own frame writer builds the frames, independently of this package's reader.
const require = createRequire(import.meta.url);
const frames = require('rhea/lib/frames.js') as {
  transfer(fields: Record<string, unknown>): unknown;
  begin(fields: Record<string, unknown>): unknown;
  attach(fields: Record<string, unknown>): unknown;
  flow(fields: Record<string, unknown>): unknown;
  detach(fields: Record<string, unknown>): unknown;
  end(fields: Record<string, unknown>): unknown;
  amqp_frame(channel: number, performative: unknown, payload?: Buffer): unknown;
  write_frame(frame: unknown): Buffer;
  read_frame(buffer: Buffer): { channel: number; performative?: { constructor: { toString(): string } } };
};
const terminus = require('rhea/lib/terminus.js') as {
  target(fields: Record<string, unknown>): { described(): unknown };
  source(fields: Record<string, unknown>): { described(): unknown };
};

/** A `data` section holding `text`. */
function data(text: string): Buffer {
  const body = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x00, 0x53, 0x75, 0xa0, body.length]), body]);
}

function transfer(fields: Record<string, unknown>, payload = data('x'), channel = 0): Buffer {
  return frames.write_frame(frames.amqp_frame(channel, frames.transfer(fields), payload));
}

function read(frame: Buffer): IncomingTransfer | null {
  const out = new IncomingTransfer();
  return readIncomingTransfer(frame, 0, frame.length, out) ? out : null;
}

describe('reading incoming transfers', () => {
  const base = { handle: 0, delivery_id: 0, delivery_tag: Buffer.from('t'), message_format: 0 };

  it.each([
    ['small numbers', base, 0],
    ['one-byte numbers, settled', { ...base, handle: 9, delivery_id: 200, settled: true }, 3],
    [
      'four-byte numbers',
      { ...base, handle: 70_000, delivery_id: 0xffff_fff0, message_format: 0x1234 },
      65_535,
    ],
    [
      'more, aborted and batchable given as false',
      { ...base, more: false, aborted: false, batchable: true },
      1,
    ],
    ['no message format', { handle: 1, delivery_id: 5, delivery_tag: Buffer.alloc(32, 1) }, 0],
  ])('reads a transfer of one whole message: %s', (_name, fields, channel) => {
    const payload = data('hello');
    const frame = transfer(fields, payload, channel);
    const got = read(frame)!;
    expect(got).not.toBeNull();
    expect(got.channel).toBe(channel);
    expect(got.handle).toBe(fields.handle);
    expect(got.deliveryId).toBe(fields.delivery_id);
    expect(got.messageFormat).toBe((fields as { message_format?: number }).message_format ?? 0);
    expect(got.settled).toBe((fields as { settled?: boolean }).settled === true);
    expect(frame.subarray(got.payloadStart)).toEqual(payload);
  });

  it.each([
    ['more frames follow', { ...base, more: true }],
    ['aborted', { ...base, aborted: true }],
    ['resumed', { ...base, resume: true }],
    ['a settle mode of its own', { ...base, rcv_settle_mode: 1 }],
    ['no delivery-id (a later frame of a delivery)', { handle: 0 }],
    ['a tag over 32 bytes', { ...base, delivery_tag: Buffer.alloc(33) }],
  ])('leaves a transfer to rhea when it has %s', (_name, fields) => {
    expect(read(transfer(fields))).toBeNull();
  });

  it('leaves frames that are not such transfers to rhea', () => {
    const begin = frames.write_frame(frames.amqp_frame(0, frames.begin({ next_outgoing_id: 0 })));
    expect(read(begin)).toBeNull();
    const good = transfer(base);
    // The list claims more bytes than the frame has.
    const long = Buffer.from(good);
    long[12] = 0xff;
    expect(read(long)).toBeNull();
    // The handle encoded as a string.
    const stringHandle = Buffer.from(good);
    stringHandle[20] = 0xa1;
    expect(read(stringHandle)).toBeNull();
    // Cut short inside the performative.
    expect(read(good.subarray(0, 14))).toBeNull();
  });
});

let broker: Awaited<ReturnType<typeof startInProcess>>;

beforeAll(async () => {
  broker = await startInProcess({ max_frame_size: 4096, link_credit: 20 });
});

afterAll(async () => {
  await broker.stop();
});

/** Sends in order, each as soon as the link has credit; resolves when all are sent. */
async function sendAll(link: Sender, bodies: unknown[]): Promise<Delivery[]> {
  const deliveries: Delivery[] = [];
  for (const body of bodies) {
    while (!link.sendable()) await new Promise((r) => setTimeout(r, 1));
    deliveries.push(link.send({ body }));
  }
  return deliveries;
}

/** Waits until every delivery has an outcome; returns their names. */
async function outcomes(deliveries: Delivery[], timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  while (!deliveries.every((d) => d.remote_state !== undefined)) {
    if (Date.now() > deadline) throw new Error('outcomes missing');
    await new Promise((r) => setTimeout(r, 5));
  }
  return deliveries.map(
    (d) => (d.remote_state as { constructor: { composite_type: string } }).constructor.composite_type,
  );
}

function texts(receiver: TestReceiver): string[] {
  return receiver.inbox.map((r) => {
    const body = r.message.body as unknown;
    return Buffer.isBuffer(body) ? `bytes:${body.length}:${body[0]}` : String(body);
  });
}

describe('transfers from real clients', () => {
  it('keeps order with single-frame and multi-frame messages interleaved on several links of one session', async () => {
    const client = await TestClient.connect(broker.port);
    const a = await client.sender('queue://interleave-a');
    const b = await client.sender('queue://interleave-b', { snd_settle_mode: 1 });
    const expectedA: string[] = [];
    const expectedB: string[] = [];
    const sentA: Delivery[] = [];
    for (let i = 0; i < 30; i++) {
      // Every third message on a, every fourth on b, is larger than a frame, so it goes out as several.
      const big = i % 3 === 0;
      sentA.push(...(await sendAll(a.link, [big ? Buffer.alloc(10_000, i) : `a-${i}`])));
      expectedA.push(big ? `bytes:10000:${i}` : `a-${i}`);
      await sendAll(b.link, [i % 4 === 1 ? Buffer.alloc(9000, i) : `b-${i}`]);
      expectedB.push(i % 4 === 1 ? `bytes:9000:${i}` : `b-${i}`);
    }
    expect(new Set(await outcomes(sentA))).toEqual(new Set(['accepted']));
    const consumer = await TestClient.connect(broker.port);
    const ra = await consumer.receiver('queue://interleave-a');
    const rb = await consumer.receiver('queue://interleave-b');
    await ra.waitFor(30);
    await rb.waitFor(30);
    expect(texts(ra)).toEqual(expectedA);
    expect(texts(rb)).toEqual(expectedB);
    await client.close();
    await consumer.close();
  });

  it('waits for credit once a link has used it all, then takes the rest', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://credit');
    // link_credit is 20: the client holds back the rest until the broker grants more.
    const link = sender.link as Sender & { credit: number };
    while (link.credit === 0) await new Promise((r) => setTimeout(r, 5));
    expect(link.credit).toBe(20);
    const sent = await sendAll(
      sender.link,
      Array.from({ length: 75 }, (_, i) => `c-${i}`),
    );
    expect(new Set(await outcomes(sent))).toEqual(new Set(['accepted']));
    const consumer = await TestClient.connect(broker.port);
    const receiver = await consumer.receiver('queue://credit');
    await receiver.waitFor(75);
    expect(receiver.bodies()).toEqual(Array.from({ length: 75 }, (_, i) => `c-${i}`));
    await client.close();
    await consumer.close();
  });

  it('takes more pre-settled messages on one session than its incoming window holds', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://presettled', { snd_settle_mode: 1 });
    const total = 5000;
    await sendAll(
      sender.link,
      Array.from({ length: total }, (_, i) => `p-${i}`),
    );
    const consumer = await TestClient.connect(broker.port);
    const receiver = await consumer.receiver('queue://presettled');
    await receiver.waitFor(total, 15_000);
    expect(receiver.bodies()[total - 1]).toBe(`p-${total - 1}`);
    expect(client.connection.is_open()).toBe(true);
    await client.close();
    await consumer.close();
  }, 20_000);
});

/** A client speaking raw frames: open, begin and an attached sending link on channel 0, handle 0. */
async function rawLink(address: string, port = broker.port): Promise<RawClient> {
  const raw = await RawClient.open(port);
  const begin = frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 });
  const attach = frames.attach({
    name: 'raw-link',
    handle: 0,
    role: false,
    target: terminus.target({ address }).described(),
    initial_delivery_count: 0,
  });
  raw.send(
    Buffer.concat([
      AMQP_HEADER,
      OPEN,
      frames.write_frame(frames.amqp_frame(0, begin)),
      frames.write_frame(frames.amqp_frame(0, attach)),
    ]),
  );
  // Open, begin, attach, then the flow that grants credit.
  const deadline = Date.now() + 5000;
  while (!performatives(raw).includes('flow#13')) {
    if (Date.now() > deadline) throw new Error(`no credit: ${performatives(raw).join(', ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return raw;
}

/** The delivery ids the broker's dispositions name, each range spelled out. */
function settledIds(raw: RawClient): number[] {
  const ids: number[] = [];
  let pos = 8;
  const bytes = raw.received;
  while (pos + 4 <= bytes.length) {
    const size = bytes.readUInt32BE(pos);
    if (pos + size > bytes.length) break;
    const frame = frames.read_frame(bytes.subarray(pos, pos + size)) as {
      performative?: { constructor: { toString(): string }; first?: number; last?: number };
    };
    const performative = frame.performative;
    if (performative?.constructor.toString() === 'disposition#15') {
      const first = performative.first ?? 0;
      for (let id = first; id <= (performative.last ?? first); id++) ids.push(id);
    }
    pos += size;
  }
  return ids;
}

/** The performatives the broker sent, by rhea's names (`flow#13`, `disposition#15`, ...). */
function performatives(raw: RawClient): string[] {
  const names: string[] = [];
  let pos = 8;
  const bytes = raw.received;
  while (pos + 4 <= bytes.length) {
    const size = bytes.readUInt32BE(pos);
    if (pos + size > bytes.length) break;
    const frame = frames.read_frame(bytes.subarray(pos, pos + size));
    if (frame.performative) names.push(frame.performative.constructor.toString());
    pos += size;
  }
  return names;
}

interface ReceivedFrame {
  channel: number;
  name: string;
  handle?: number;
  error?: { condition: string };
}

/** The frames the broker sent, each with its channel and performative name (`end#17`, ...). */
function receivedFrames(raw: RawClient): ReceivedFrame[] {
  const found: ReceivedFrame[] = [];
  let pos = 8;
  const bytes = raw.received;
  while (pos + 4 <= bytes.length) {
    const size = bytes.readUInt32BE(pos);
    if (pos + size > bytes.length) break;
    const frame = frames.read_frame(bytes.subarray(pos, pos + size));
    const performative = frame.performative;
    if (performative) {
      const { error, handle } = performative as { error?: { condition: unknown }; handle?: number };
      found.push({
        channel: frame.channel,
        name: performative.constructor.toString(),
        ...(typeof handle === 'number' ? { handle } : {}),
        ...(error ? { error: { condition: String(error.condition) } } : {}),
      });
    }
    pos += size;
  }
  return found;
}

async function waitForFrame(
  raw: RawClient,
  match: (frame: ReceivedFrame) => boolean,
): Promise<ReceivedFrame> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const found = receivedFrames(raw).find(match);
    if (found) return found;
    if (Date.now() > deadline)
      throw new Error(
        `no such frame in: ${receivedFrames(raw)
          .map((f) => `${f.channel}:${f.name}`)
          .join(', ')}`,
      );
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A raw connection with two sessions (channels 0 and 1), each with a sending link on handle 0 to
 * `address` (`on-0`, `on-1`), both granted credit; `attach` and `begin` make more of the same.
 */
async function twoSessions(address: string) {
  const raw = await RawClient.open(broker.port);
  const begin = frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 });
  const attach = (name: string) =>
    frames.attach({
      name,
      handle: 0,
      role: false,
      target: terminus.target({ address }).described(),
      initial_delivery_count: 0,
    });
  raw.send(
    Buffer.concat([
      AMQP_HEADER,
      OPEN,
      frames.write_frame(frames.amqp_frame(0, begin)),
      frames.write_frame(frames.amqp_frame(1, begin)),
      frames.write_frame(frames.amqp_frame(0, attach('on-0'))),
      frames.write_frame(frames.amqp_frame(1, attach('on-1'))),
    ]),
  );
  await waitForFrame(raw, (f) => f.channel === 0 && f.name === 'flow#13');
  await waitForFrame(raw, (f) => f.channel === 1 && f.name === 'flow#13');
  return { raw, attach, begin };
}

/** A transfer frame on channel 0 whose performative list holds `count` and then `fields` as given. */
function performative(count: number, fields: number[]): Buffer {
  const list = Buffer.from(fields);
  return frame(Buffer.concat([Buffer.from([0x00, 0x53, 0x14, 0xc0, list.length + 1, count]), list]));
}

const bad = (reason: string) => broker.metrics.get('robustmq_amqp_bad_input_total', { reason });

describe('transfers from a raw client', () => {
  it('accepts well-formed transfers sent in one write with other frames', async () => {
    const raw = await rawLink('queue://raw-ok');
    const tag = Buffer.from('t');
    raw.send(
      Buffer.concat([
        transfer({ handle: 0, delivery_id: 0, delivery_tag: tag, message_format: 0 }, data('one')),
        frames.write_frame(frames.amqp_frame(0, undefined)),
        transfer({ handle: 0, delivery_id: 1, delivery_tag: tag, message_format: 0 }, data('two')),
      ]),
    );
    const deadline = Date.now() + 5000;
    while (performatives(raw).filter((p) => p === 'disposition#15').length === 0) {
      if (Date.now() > deadline) throw new Error('no disposition');
      await new Promise((r) => setTimeout(r, 10));
    }
    raw.socket.destroy();
    const consumer = await TestClient.connect(broker.port);
    const receiver = await consumer.receiver('queue://raw-ok');
    await receiver.waitFor(2);
    const bodies = receiver.inbox.map((r) =>
      Buffer.from((r.message.body as { content: Buffer }).content).toString(),
    );
    expect(bodies).toEqual(['one', 'two']);
    await consumer.close();
  });

  it('discards an aborted delivery (AMQP 1.0 section 2.7.5): nothing of it is stored or answered', async () => {
    const raw = await rawLink('queue://raw-aborted');
    const first = data('first');
    raw.send(
      Buffer.concat([
        // A message in two frames, which rhea assembles, then a delivery aborted after its first
        // frame and one aborted in its only frame, then a whole message.
        transfer(
          { handle: 0, delivery_id: 0, delivery_tag: Buffer.from('a'), more: true },
          first.subarray(0, 4),
        ),
        transfer({ handle: 0 }, first.subarray(4)),
        transfer({ handle: 0, delivery_id: 1, delivery_tag: Buffer.from('b'), more: true }, data('cut off')),
        transfer({ handle: 0, aborted: true }, Buffer.alloc(0)),
        transfer(
          { handle: 0, delivery_id: 2, delivery_tag: Buffer.from('c'), aborted: true },
          data('dropped'),
        ),
        transfer({ handle: 0, delivery_id: 3, delivery_tag: Buffer.from('d') }, data('last')),
      ]),
    );
    const deadline = Date.now() + 5000;
    while (!settledIds(raw).includes(3)) {
      if (Date.now() > deadline)
        throw new Error(`no outcome for the last message: ${settledIds(raw).join(', ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const answered = settledIds(raw);
    raw.socket.destroy();
    const consumer = await TestClient.connect(broker.port);
    const receiver = await consumer.receiver('queue://raw-aborted');
    await receiver.waitFor(2);
    await new Promise((r) => setTimeout(r, 200));
    const bodies = receiver.inbox.map((r) =>
      Buffer.from((r.message.body as { content: Buffer }).content).toString(),
    );
    expect(bodies).toEqual(['first', 'last']);
    // An aborted delivery is settled by the abort itself: the broker sends no outcome for it.
    expect(answered).toEqual([0, 3]);
    await consumer.close();
  });

  it.each([
    [
      'a delivery-id out of sequence',
      Buffer.concat([
        transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from('t'), message_format: 0 }),
        transfer({ handle: 0, delivery_id: 5, delivery_tag: Buffer.from('u'), message_format: 0 }),
      ]),
    ],
    ['a handle that is a string', performative(4, [0xa1, 1, 0x78, 0x43, 0xa0, 1, 0x74, 0x43])],
    ['more fields counted than the frame holds', performative(6, [0x43, 0x43, 0xa0, 1, 0x74, 0x43])],
    ['a field of no known type', performative(4, [0x43, 0x43, 0xa0, 1, 0x74, 0x33])],
  ])('closes with decode-error for a transfer with %s', async (_name, bytes) => {
    const before = bad('decode_error');
    const raw = await rawLink('queue://raw-bad');
    raw.send(bytes);
    expect(await raw.closedText()).toContain('amqp:decode-error');
    expect(bad('decode_error')).toBe(before + 1);
  });

  it.each([
    ['transfer', transfer({ handle: 5, delivery_id: 0, delivery_tag: Buffer.from('t') })],
    [
      'flow',
      frames.write_frame(
        frames.amqp_frame(
          0,
          frames.flow({
            next_incoming_id: 0,
            incoming_window: 100,
            next_outgoing_id: 0,
            outgoing_window: 100,
            handle: 5,
            delivery_count: 0,
            link_credit: 10,
          }),
        ),
      ),
    ],
    ['detach', frames.write_frame(frames.amqp_frame(0, frames.detach({ handle: 5, closed: true })))],
  ])(
    'ends only the session, with unattached-handle, for a %s on a handle that is not attached (AMQP 1.0 section 2.8.16)',
    async (_name, bytes) => {
      const before = bad('unattached_handle');
      const { raw, attach, begin } = await twoSessions('queue://raw-sessions');
      // The bad frame, then in the same write a transfer on the session's attached link: the session
      // is discarding by then, so it is dropped unanswered (section 2.5.5).
      raw.send(
        Buffer.concat([
          bytes,
          transfer(
            { handle: 0, delivery_id: 0, delivery_tag: Buffer.from('d'), message_format: 0 },
            data('0'),
          ),
        ]),
      );
      const end = await waitForFrame(raw, (f) => f.name === 'end#17');
      expect(end.channel).toBe(0);
      expect(end.error?.condition).toBe('amqp:session:unattached-handle');
      expect(bad('unattached_handle')).toBe(before + 1);
      // The other session goes on.
      raw.send(
        transfer(
          { handle: 0, delivery_id: 0, delivery_tag: Buffer.from('e'), message_format: 0 },
          data('1'),
          1,
        ),
      );
      await waitForFrame(raw, (f) => f.channel === 1 && f.name === 'disposition#15');
      // The client's end completes the ending; its channel then begins a session again (which the
      // broker answers on a channel of its choosing).
      raw.send(
        Buffer.concat([
          frames.write_frame(frames.amqp_frame(0, frames.end({}))),
          frames.write_frame(frames.amqp_frame(0, begin)),
          frames.write_frame(frames.amqp_frame(0, attach('on-0-again'))),
        ]),
      );
      await waitForFrame(raw, () => receivedFrames(raw).filter((f) => f.name === 'begin#11').length === 3);
      const again = receivedFrames(raw).filter((f) => f.name === 'begin#11')[2]!.channel;
      await waitForFrame(raw, (f) => f.channel === again && f.name === 'flow#13');
      raw.send(
        transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from('f'), message_format: 0 }, data('2')),
      );
      await waitForFrame(raw, (f) => f.channel === again && f.name === 'disposition#15');
      const names = receivedFrames(raw).map((f) => f.name);
      expect(names).not.toContain('close#18');
      expect(names.filter((n) => n === 'end#17')).toHaveLength(1);
      expect(names.filter((n) => n === 'disposition#15')).toHaveLength(2);
      raw.socket.destroy();
      const consumer = await TestClient.connect(broker.port);
      const receiver = await consumer.receiver('queue://raw-sessions');
      await receiver.waitFor(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(
        receiver.inbox.map((r) => Buffer.from((r.message.body as { content: Buffer }).content).toString()),
      ).toEqual(['1', '2']);
      // Each case sends to the same queue: what this one stored is taken off it.
      await consumer.close();
    },
    15_000,
  );

  it.each([
    ['the same link again', 'on-0'],
    ['another link', 'other'],
  ])(
    'ends only the session, with handle-in-use, for an attach of %s on a handle in use (AMQP 1.0 sections 2.7.3, 2.8.16)',
    async (_name, secondName) => {
      const before = bad('handle_in_use');
      const { raw, attach } = await twoSessions('queue://raw-handle-in-use');
      raw.send(frames.write_frame(frames.amqp_frame(0, attach(secondName))));
      const end = await waitForFrame(raw, (f) => f.name === 'end#17');
      expect(end.channel).toBe(0);
      expect(end.error?.condition).toBe('amqp:session:handle-in-use');
      expect(bad('handle_in_use')).toBe(before + 1);
      // The other session goes on.
      raw.send(
        transfer(
          { handle: 0, delivery_id: 0, delivery_tag: Buffer.from('e'), message_format: 0 },
          data('1'),
          1,
        ),
      );
      await waitForFrame(raw, (f) => f.channel === 1 && f.name === 'disposition#15');
      const names = receivedFrames(raw).map((f) => f.name);
      expect(names).not.toContain('close#18');
      expect(names.filter((n) => n === 'attach#12')).toHaveLength(2);
      raw.socket.destroy();
    },
    15_000,
  );

  it("detaches a client's receiving link with illegal-state when the client sends a transfer on it; its other links go on", async () => {
    const before = bad('transfer_on_receiving_link');
    const raw = await RawClient.open(broker.port);
    const begin = frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 });
    raw.send(
      Buffer.concat([
        AMQP_HEADER,
        OPEN,
        frames.write_frame(frames.amqp_frame(0, begin)),
        frames.write_frame(
          frames.amqp_frame(
            0,
            frames.attach({
              name: 'producer',
              handle: 0,
              role: false,
              target: terminus.target({ address: 'queue://raw-wrong-way' }).described(),
              initial_delivery_count: 0,
            }),
          ),
        ),
        frames.write_frame(
          frames.amqp_frame(
            0,
            frames.attach({
              name: 'consumer',
              handle: 1,
              role: true,
              source: terminus.source({ address: 'queue://raw-wrong-way-consumed' }).described(),
            }),
          ),
        ),
      ]),
    );
    await waitForFrame(raw, (f) => f.name === 'flow#13');
    await waitForFrame(raw, () => receivedFrames(raw).filter((f) => f.name === 'attach#12').length === 2);
    const consumerHandle = receivedFrames(raw).filter((f) => f.name === 'attach#12')[1]!.handle;
    // Two transfers on the consumer's link, where only the broker sends, then one on the producer's.
    raw.send(
      Buffer.concat([
        transfer(
          { handle: 1, delivery_id: 0, delivery_tag: Buffer.from('w'), message_format: 0 },
          data('wrong'),
        ),
        transfer(
          { handle: 1, delivery_id: 1, delivery_tag: Buffer.from('x'), message_format: 0 },
          data('wrong again'),
        ),
        transfer(
          { handle: 0, delivery_id: 2, delivery_tag: Buffer.from('r'), message_format: 0 },
          data('right'),
        ),
      ]),
    );
    const detach = await waitForFrame(raw, (f) => f.name === 'detach#16');
    expect(detach.handle).toBe(consumerHandle);
    expect(detach.error?.condition).toBe('amqp:illegal-state');
    await waitForFrame(raw, (f) => f.name === 'disposition#15');
    expect(settledIds(raw)).toEqual([2]);
    expect(bad('transfer_on_receiving_link')).toBe(before + 1);
    const names = receivedFrames(raw).map((f) => f.name);
    expect(names.filter((n) => n === 'detach#16')).toHaveLength(1);
    expect(names).not.toContain('close#18');
    expect(names).not.toContain('end#17');
    raw.socket.destroy();
    const consumer = await TestClient.connect(broker.port);
    const receiver = await consumer.receiver('queue://raw-wrong-way');
    await receiver.waitFor(1);
    await new Promise((r) => setTimeout(r, 100));
    expect(
      receiver.inbox.map((r) => Buffer.from((r.message.body as { content: Buffer }).content).toString()),
    ).toEqual(['right']);
    await consumer.close();
  }, 15_000);

  it('sends nothing after the end of a session it ended, not even answers to attaches still being checked', async () => {
    const raw = await RawClient.open(broker.port);
    const begin = frames.begin({ next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 });
    // Authorization takes a moment: the session ends first. One link is refused, one would be taken.
    const attach = (handle: number, address: string) =>
      frames.write_frame(
        frames.amqp_frame(
          0,
          frames.attach({
            name: address,
            handle,
            role: false,
            target: terminus.target({ address }).described(),
            initial_delivery_count: 0,
          }),
        ),
      );
    raw.send(
      Buffer.concat([
        AMQP_HEADER,
        OPEN,
        frames.write_frame(frames.amqp_frame(0, begin)),
        attach(0, 'queue://secret-late'),
        attach(1, 'queue://late-ok'),
        transfer({ handle: 5, delivery_id: 0, delivery_tag: Buffer.from('t') }),
      ]),
    );
    await waitForFrame(raw, (f) => f.name === 'end#17');
    await new Promise((r) => setTimeout(r, 200));
    expect(receivedFrames(raw).map((f) => `${f.channel}:${f.name}`)).toEqual([
      '0:open#10',
      '0:begin#11',
      '0:end#17',
    ]);
    raw.socket.destroy();
  });

  it('closes with framing-error for a transfer over max-frame-size', async () => {
    const before = bad('frame_too_large');
    const raw = await rawLink('queue://raw-big');
    const big = transfer({ handle: 0, delivery_id: 0, delivery_tag: Buffer.from('t') }, Buffer.alloc(5000));
    raw.send(big);
    expect(await raw.closedText()).toContain('amqp:connection:framing-error');
    expect(bad('frame_too_large')).toBe(before + 1);
  });

  it('serves new connections after each bad one', async () => {
    const client = await TestClient.connect(broker.port);
    const sender = await client.sender('queue://raw-after');
    expect((await sender.send({ body: 'fine' })).outcome).toBe('accepted');
    await client.close();
  });

  it('counts transfers read by the broker as traffic that keeps the connection from idling out', async () => {
    const idle = await startInProcess({ idle_timeout_ms: 300 });
    const raw = await rawLink('queue://raw-busy', idle.port);
    // The raw client sends no heartbeats: only transfers, for longer than twice the idle timeout.
    for (let id = 0; id < 12; id++) {
      raw.send(transfer({ handle: 0, delivery_id: id, delivery_tag: Buffer.from([id]), message_format: 0 }));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(raw.socket.destroyed).toBe(false);
    expect(raw.received.toString('latin1')).not.toContain('amqp:resource-limit-exceeded');
    // Then silence: now it is closed for idling.
    expect(await raw.closedText()).toContain('amqp:resource-limit-exceeded');
    await idle.stop();
  });
});
