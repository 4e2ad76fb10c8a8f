import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodePacket, type Packet } from '../src/codec/index.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

/**
 * MQTT 5 normative statements checked at the packet level, each against a real server: what a
 * client sees on the wire, with no client library in between to hide or fix it.
 */
let server: MqttServer;
let opened: RawClient[] = [];
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});
afterEach(() => {
  for (const c of opened) c.close();
  opened = [];
});

type ConnectFields = Partial<Extract<Packet, { cmd: 'connect' }>>;

async function connect(clientId: string, extra: ConnectFields = {}): Promise<RawClient> {
  const c = await RawClient.connected(server.port, 5, clientId, extra);
  opened.push(c);
  return c;
}

async function subscribe(c: RawClient, topic: string, qos: 0 | 1 | 2): Promise<void> {
  c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos }] });
  expect(await c.next()).toMatchObject({ cmd: 'suback', granted: [qos] });
}

function publish(
  topic: string,
  payload: string,
  qos: 0 | 1 | 2,
  extra: Partial<Extract<Packet, { cmd: 'publish' }>> = {},
): Packet {
  return {
    cmd: 'publish',
    topic,
    payload: Buffer.from(payload),
    qos,
    dup: false,
    retain: false,
    ...(qos > 0 ? { messageId: 1 } : {}),
    ...extra,
  };
}

/** The PUBLISH packets that arrive within `ms` of quiet. */
async function publishesWithin(
  c: RawClient,
  ms: number,
): Promise<Array<Extract<Packet, { cmd: 'publish' }>>> {
  const got: Array<Extract<Packet, { cmd: 'publish' }>> = [];
  for (;;) {
    let packet: Packet;
    try {
      packet = await c.next(ms);
    } catch {
      return got;
    }
    if (packet.cmd === 'publish') got.push(packet);
  }
}

const text = (packet: Extract<Packet, { cmd: 'publish' }>) => Buffer.from(packet.payload).toString();

describe('MQTT 5 rules on the wire', () => {
  it('publishes the will after a DISCONNECT with an error reason code, and not after 0x00 (MQTT-3.1.2-8)', async () => {
    const topic = unique('will-on-error');
    const watcher = await connect(unique('watcher'));
    await subscribe(watcher, `${topic}/#`, 1);
    const will = (name: string) => ({
      will: { topic: `${topic}/${name}`, payload: Buffer.from(name), qos: 1 as const, retain: false },
    });
    const failing = await connect(unique('failing'), will('failing'));
    const leaving = await connect(unique('leaving'), will('leaving'));
    failing.send({ cmd: 'disconnect', reasonCode: 0x80 });
    leaving.send({ cmd: 'disconnect', reasonCode: 0x00 });
    const got = await publishesWithin(watcher, 1000);
    expect(got.map(text)).toEqual(['failing']);
  });

  it('sends a retained QoS 0 message with its remaining expiry, also to later subscribers (MQTT-3.3.2-6)', async () => {
    const topic = unique('retained-expiry');
    const publisher = await connect(unique('pub'));
    publisher.send(publish(topic, 'kept', 1, { retain: true, properties: { messageExpiryInterval: 100 } }));
    expect((await publisher.next()).cmd).toBe('puback');
    const early = await connect(unique('early'));
    await subscribe(early, topic, 0);
    const first = await publishesWithin(early, 300);
    expect(first.map((p) => p.properties?.messageExpiryInterval)).toEqual([100]);
    await sleep(2200);
    const late = await connect(unique('late'));
    await subscribe(late, topic, 0);
    const [later] = await publishesWithin(late, 300);
    expect(later!.properties?.messageExpiryInterval).toBeLessThanOrEqual(98);
    expect(later!.properties?.messageExpiryInterval).toBeGreaterThanOrEqual(96);
  });

  it('never starts delivering a message whose expiry has passed (MQTT-3.3.2-5)', async () => {
    const topic = unique('expired-before-delivery');
    // A shared group's only member, whose window of one is taken by a message it does not
    // acknowledge: the next message waits in its session, and expires there.
    const busy = await connect(unique('busy'), { properties: { receiveMaximum: 1 } });
    await subscribe(busy, `$share/g/${topic}`, 1);
    const publisher = await connect(unique('pub'));
    publisher.send(publish(topic, 'first', 1));
    publisher.send(
      publish(topic, 'short-lived', 1, { messageId: 2, properties: { messageExpiryInterval: 1 } }),
    );
    expect((await publishesWithin(busy, 300)).map(text)).toEqual(['first']);
    const other = await connect(unique('other'));
    await subscribe(other, `$share/g/${topic}`, 1);
    await sleep(1300);
    // Its session ends: what it did not get goes to the other member, but the expired one does not.
    busy.send({ cmd: 'disconnect', reasonCode: 0x00 });
    const got = await publishesWithin(other, 500);
    expect(got.map(text)).toEqual(['first']);
  });

  it('gives a shared QoS 2 message already sent to a member whose session ends to no other member (MQTT-4.8.2-5)', async () => {
    const topic = unique('shared-qos2');
    // The only member: it gets both messages and answers neither.
    const silent = await connect(unique('silent'));
    await subscribe(silent, `$share/g/${topic}`, 2);
    const publisher = await connect(unique('pub'));
    publisher.send(publish(topic, 'exactly-once', 2));
    publisher.send(publish(topic, 'at-least-once', 1, { messageId: 2 }));
    const sent = await publishesWithin(silent, 300);
    expect(sent.map((p) => [text(p), p.qos])).toEqual([
      ['exactly-once', 2],
      ['at-least-once', 1],
    ]);
    const other = await connect(unique('other'));
    await subscribe(other, `$share/g/${topic}`, 2);
    silent.close();
    // The QoS 1 message may go to another member (and does); the QoS 2 one must not.
    expect((await publishesWithin(other, 500)).map(text)).toEqual(['at-least-once']);
  });

  it('drops a message in flight that is too large for the client it comes back as (MQTT-3.1.2-25)', async () => {
    const clientId = unique('shrinking');
    const session = { clean: false, properties: { sessionExpiryInterval: 60 } };
    const before = await connect(clientId, {
      ...session,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 1 },
    });
    await subscribe(before, clientId, 1);
    const publisher = await connect(unique('pub'));
    publisher.send(publish(clientId, 'x'.repeat(200), 1));
    publisher.send(publish(clientId, 'small', 1, { messageId: 2 }));
    expect((await publishesWithin(before, 300)).map((p) => p.payload.length)).toEqual([200]);
    before.close();
    await sleep(100);
    // Back with room for 100-byte packets and one message in flight: the large one cannot be sent
    // again, so it counts as sent and the small one follows.
    const after = await connect(clientId, {
      ...session,
      properties: { sessionExpiryInterval: 60, receiveMaximum: 1, maximumPacketSize: 100 },
    });
    expect((await publishesWithin(after, 500)).map(text)).toEqual(['small']);
  });
  it('sends again no more messages than the Receive Maximum the client comes back with (MQTT-3.3.4-9)', async () => {
    const clientId = unique('narrowing');
    const session = (receiveMaximum: number) => ({
      clean: false,
      properties: { sessionExpiryInterval: 60, receiveMaximum },
    });
    const before = await connect(clientId, session(5));
    await subscribe(before, clientId, 1);
    const publisher = await connect(unique('pub'));
    for (let i = 1; i <= 5; i++) publisher.send(publish(clientId, `m${i}`, 1, { messageId: i }));
    expect((await publishesWithin(before, 300)).map(text)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);
    before.close();
    await sleep(100);
    const after = await connect(clientId, session(2));
    const again = await publishesWithin(after, 300);
    expect(again.map((p) => [text(p), p.dup])).toEqual([
      ['m1', true],
      ['m2', true],
    ]);
    // Each PUBACK makes room for the next, sent again with its packet identifier and DUP.
    after.send({ cmd: 'puback', messageId: again[0]!.messageId! });
    const third = await publishesWithin(after, 300);
    expect(third.map((p) => [text(p), p.dup, p.messageId])).toEqual([['m3', true, 3]]);
    for (const p of [again[1]!, third[0]!]) after.send({ cmd: 'puback', messageId: p.messageId! });
    expect((await publishesWithin(after, 300)).map(text)).toEqual(['m4', 'm5']);
  });
});

describe('MQTT 5 session expiry on DISCONNECT with a server maximum of 0', () => {
  let clipping: MqttServer;
  beforeAll(async () => {
    clipping = await startServer({ mqtt: ['max_session_expiry_interval = 0'] });
  });
  afterAll(async () => {
    await clipping.stop();
  });

  /** The packets a client gets after its DISCONNECT, until the broker closes the connection. */
  async function afterDisconnect(connectExpiry: number, disconnectExpiry: number): Promise<Packet[]> {
    const c = await RawClient.connected(clipping.port, 5, unique('clipped'), {
      properties: { sessionExpiryInterval: connectExpiry },
    });
    opened.push(c);
    c.send({ cmd: 'disconnect', reasonCode: 0, properties: { sessionExpiryInterval: disconnectExpiry } });
    const got: Packet[] = [];
    for (;;) {
      try {
        got.push(await c.next(2000));
      } catch {
        return got;
      }
    }
  }

  it('judges a DISCONNECT that sets an expiry by what CONNECT asked, not by the lowered value', async () => {
    // CONNECT asked for 300 s, which the server lowered to 0: setting one on DISCONNECT is allowed.
    expect(await afterDisconnect(300, 60)).toEqual([]);
    // CONNECT asked for 0: setting one on DISCONNECT is a protocol error.
    expect(await afterDisconnect(0, 60)).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x82 }]);
  });
});

describe('MQTT 5 server Receive Maximum', () => {
  let narrow: MqttServer;
  beforeAll(async () => {
    narrow = await startServer({ mqtt: ['receive_maximum = 2'] });
  });
  afterAll(async () => {
    await narrow.stop();
  });

  async function connectNarrow(clientId: string, extra: ConnectFields = {}): Promise<RawClient> {
    const c = await RawClient.connected(narrow.port, 5, clientId, extra);
    opened.push(c);
    return c;
  }

  /** Packets until the broker closes the connection (or 2 s of quiet). */
  async function untilClosed(c: RawClient): Promise<Packet[]> {
    const got: Packet[] = [];
    for (;;) {
      try {
        got.push(await c.next(2000));
      } catch {
        return got;
      }
    }
  }

  it('counts QoS 2 messages until their PUBREL, and disconnects with 0x93 past it', async () => {
    const topic = unique('rm2');
    const c = await connectNarrow(unique('pub'));
    for (const id of [1, 2]) c.send(publish(topic, `m${id}`, 2, { messageId: id }));
    expect(await c.next()).toMatchObject({ cmd: 'pubrec', messageId: 1 });
    expect(await c.next()).toMatchObject({ cmd: 'pubrec', messageId: 2 });
    c.send({ cmd: 'pubrel', messageId: 1 });
    expect(await c.next()).toMatchObject({ cmd: 'pubcomp', messageId: 1 });
    c.send(publish(topic, 'm3', 2, { messageId: 3 }));
    expect(await c.next()).toMatchObject({ cmd: 'pubrec', messageId: 3 });
    // A repeat of an unreleased one is not a new message.
    c.send(publish(topic, 'm3', 2, { messageId: 3, dup: true }));
    expect(await c.next()).toMatchObject({ cmd: 'pubrec', messageId: 3 });
    c.send(publish(topic, 'm4', 2, { messageId: 4 }));
    expect(await untilClosed(c)).toMatchObject([{ cmd: 'disconnect', reasonCode: 0x93 }]);
  });

  it('counts QoS 1 messages until their PUBACK, and disconnects with 0x93 past it', async () => {
    const topic = unique('rm1');
    // A persistent subscriber away: each PUBACK waits until its queue holds the message durably.
    const sub = await connectNarrow(unique('away'), {
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    await subscribe(sub, topic, 1);
    sub.send({ cmd: 'disconnect', reasonCode: 0 });
    await sub.closed;
    const c = await connectNarrow(unique('pub'));
    // One at a time, each answered before the next: never more than one outstanding.
    for (const id of [1, 2, 3]) {
      c.send(publish(topic, `m${id}`, 1, { messageId: id }));
      expect(await c.next()).toMatchObject({ cmd: 'puback', messageId: id });
    }
    // Three in one write: the third comes while the first two wait for their writes.
    c.write(
      Buffer.concat([4, 5, 6].map((id) => encodePacket(publish(topic, `m${id}`, 1, { messageId: id }), 5))),
    );
    const got = await untilClosed(c);
    expect(got.at(-1)).toMatchObject({ cmd: 'disconnect', reasonCode: 0x93 });
    expect(got.filter((p) => p.cmd === 'puback')).toEqual([]);
  });
});
