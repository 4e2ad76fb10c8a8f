import type { IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, connectWithInbox, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { run, Watched } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** `$share/{group}/{filter}`, `$queue/{filter}` and `$exclusive/{filter}` with real clients. */
let server: MqttServer;
let clients: MqttClient[] = [];
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});
afterEach(async () => {
  await endAll(clients);
  clients = [];
});

async function client(options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectClient(server.port, options);
  clients.push(c);
  return c;
}

async function member(
  options: IClientOptions,
  filter: string,
): Promise<{ client: MqttClient; inbox: Inbox }> {
  const c = await client(options);
  const inbox = new Inbox(c);
  await c.subscribeAsync(filter, { qos: 1 });
  return { client: c, inbox };
}

/** The SUBACK reason code for one filter (MQTT.js rejects refusals, with the SUBACK attached). */
async function subackCode(c: MqttClient, filter: string): Promise<number> {
  try {
    return (await c.subscribeAsync(filter, { qos: 1 }))[0]!.qos;
  } catch (error) {
    return (error as { packet: { granted: number[] } }).packet.granted[0]!;
  }
}

describe.each([
  { name: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { name: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT.js, $name, shared subscriptions', ({ protocolVersion }) => {
  it('deal messages round-robin to the members of a group, beside plain subscribers', async () => {
    const topic = unique(`shared/${protocolVersion}`);
    const a = await member({ protocolVersion }, `$share/g/${topic}/+`);
    const b = await member({ protocolVersion }, `$share/g/${topic}/+`);
    const other = await member({ protocolVersion }, `$share/other/${topic}/#`);
    const plain = await member({ protocolVersion }, `${topic}/#`);
    const publisher = await client({ protocolVersion });
    for (let i = 0; i < 4; i++) await publisher.publishAsync(`${topic}/x`, `m${i}`, { qos: 1 });
    await plain.inbox.waitFor(4);
    await other.inbox.waitFor(4);
    await a.inbox.waitFor(2);
    await b.inbox.waitFor(2);
    const received = [...a.inbox.messages, ...b.inbox.messages].map((m) => m.payload).sort();
    expect(received).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(a.inbox.messages.map((m) => m.payload)).not.toEqual(b.inbox.messages.map((m) => m.payload));
    expect((await a.inbox.settle(200)).length).toBe(2);
  });

  it('treat $queue/ as the group $queue', async () => {
    const topic = unique(`queue/${protocolVersion}`);
    const a = await member({ protocolVersion }, `$queue/${topic}`);
    const b = await member({ protocolVersion }, `$share/$queue/${topic}`);
    const publisher = await client({ protocolVersion });
    await publisher.publishAsync(topic, 'one', { qos: 1 });
    await publisher.publishAsync(topic, 'two', { qos: 1 });
    await a.inbox.waitFor(1);
    await b.inbox.waitFor(1);
    expect([a.inbox.messages[0]!.payload, b.inbox.messages[0]!.payload].sort()).toEqual(['one', 'two']);
  });

  it('send no retained message on a shared subscribe', async () => {
    const topic = unique(`shared-retained/${protocolVersion}`);
    const publisher = await client({ protocolVersion });
    await publisher.publishAsync(topic, 'kept', { qos: 1, retain: true });
    const plain = await member({ protocolVersion }, topic);
    const shared = await member({ protocolVersion }, `$share/g/${topic}`);
    expect((await plain.inbox.waitFor(1))[0]!.payload).toBe('kept');
    expect(await shared.inbox.settle(300)).toEqual([]);
    await publisher.publishAsync(topic, '', { qos: 1, retain: true });
  });

  it('give a leaving member’s unacknowledged messages to another member', async () => {
    const topic = unique(`shared-leave/${protocolVersion}`);
    // This member (at the packet level) never acknowledges what it gets.
    const silent = await RawClient.connected(server.port, protocolVersion, unique('silent'));
    silent.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `$share/g/${topic}`, qos: 1 }] });
    expect((await silent.next()).cmd).toBe('suback');
    const steady = await member({ protocolVersion }, `$share/g/${topic}`);
    const publisher = await client({ protocolVersion });
    for (let i = 0; i < 4; i++) await publisher.publishAsync(topic, `m${i}`, { qos: 1 });
    await steady.inbox.waitFor(2);
    for (let i = 0; i < 2; i++) expect(await silent.next()).toMatchObject({ cmd: 'publish', qos: 1 });
    silent.close();
    const all = await steady.inbox.waitFor(4);
    expect(all.map((m) => m.payload).sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
  });

  it('keep shared subscriptions of a persistent session across reconnects', async () => {
    const topic = unique(`shared-persist/${protocolVersion}`);
    const clientId = unique('shared-persistent');
    const options: IClientOptions =
      protocolVersion === 5
        ? { protocolVersion, clientId, clean: false, properties: { sessionExpiryInterval: 60 } }
        : { protocolVersion, clientId, clean: false };
    const first = await client(options);
    await first.subscribeAsync(`$share/g/${topic}`, { qos: 1 });
    await first.endAsync();
    const publisher = await client({ protocolVersion });
    await publisher.publishAsync(topic, 'while away', { qos: 1 });
    const again = await connectWithInbox(server.port, options);
    clients.push(again.client);
    expect(again.connack.sessionPresent).toBe(true);
    expect((await again.inbox.waitFor(1))[0]!.payload).toBe('while away');
  });
});

describe('MQTT.js, MQTT 5 shared subscription rules', () => {
  it('says shared subscriptions are available in CONNACK', async () => {
    const { client: c, connack } = await connectWithInbox(server.port, { protocolVersion: 5 });
    clients.push(c);
    expect(connack.properties?.sharedSubscriptionAvailable).toBe(true);
  });

  it('closes the connection with 0x82 for no-local on a shared subscription', async () => {
    const c = await client({ protocolVersion: 5 });
    const disconnect = new Promise<number | undefined>((resolve) =>
      c.on('disconnect', (packet) => resolve(packet.reasonCode)),
    );
    c.subscribe(`$share/g/${unique('nl')}`, { qos: 1, nl: true });
    expect(await disconnect).toBe(0x82);
  });

  it('refuses a malformed shared filter with 0x8F', async () => {
    const c = await client({ protocolVersion: 5 });
    expect(await subackCode(c, '$share/g')).toBe(0x8f);
  });
});

describe('exclusive subscriptions', () => {
  it('let one session at a time hold a filter (0x97 / 0x80 for the others), until it lets go', async () => {
    const topic = unique('exclusive');
    const holder = await member({ protocolVersion: 5 }, `$exclusive/${topic}`);
    const v5 = await client({ protocolVersion: 5 });
    const v3 = await client({ protocolVersion: 4 });
    expect(await subackCode(v5, `$exclusive/${topic}`)).toBe(0x97);
    expect(await subackCode(v3, `$exclusive/${topic}`)).toBe(0x80);
    // Holding it again is fine for the holder.
    expect(await subackCode(holder.client, `$exclusive/${topic}`)).toBe(1);

    const publisher = await client();
    await publisher.publishAsync(topic, 'to the holder', { qos: 1 });
    expect((await holder.inbox.waitFor(1))[0]!.payload).toBe('to the holder');

    await holder.client.unsubscribeAsync(`$exclusive/${topic}`);
    expect(await subackCode(v5, `$exclusive/${topic}`)).toBe(1);
    await v5.endAsync();
    expect(await subackCode(v3, `$exclusive/${topic}`)).toBe(1);
  });
});

describe('mosquitto clients', () => {
  const host = () => ['-h', '127.0.0.1', '-p', String(server.port)];

  it('share a group: each mosquitto_sub gets one of two messages', async () => {
    const topic = unique('mosq-shared');
    const subs = [0, 1].map(
      () =>
        new Watched('stdbuf', [
          '-oL',
          'mosquitto_sub',
          ...host(),
          '-V',
          'mqttv5',
          '-d',
          '-q',
          '1',
          '-t',
          `$share/g/${topic}`,
          '-C',
          '1',
        ]),
    );
    try {
      for (const sub of subs) await sub.waitFor('received SUBACK');
      for (const m of ['first', 'second']) {
        const result = await run('mosquitto_pub', [...host(), '-q', '1', '-t', topic, '-m', m]);
        expect(result.code).toBe(0);
      }
      const outputs = await Promise.all(subs.map((s) => s.exited));
      const lines = outputs.flatMap((o) =>
        o.stdout.split('\n').filter((l) => l === 'first' || l === 'second'),
      );
      expect(lines.sort()).toEqual(['first', 'second']);
    } finally {
      for (const sub of subs) sub.kill();
    }
  });

  it('subscribe exclusively with mosquitto_sub', async () => {
    const topic = unique('mosq-exclusive');
    const sub = new Watched('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...host(),
      '-d',
      '-q',
      '1',
      '-t',
      `$exclusive/${topic}`,
      '-C',
      '1',
    ]);
    try {
      await sub.waitFor('received SUBACK');
      const other = await run('mosquitto_sub', [
        ...host(),
        '-t',
        `$exclusive/${topic}`,
        '-C',
        '1',
        '-W',
        '2',
      ]);
      expect(other.stderr).toContain('denied');
      await run('mosquitto_pub', [...host(), '-q', '1', '-t', topic, '-m', 'mine']);
      const { stdout } = await sub.exited;
      expect(stdout.split('\n')).toContain('mine');
    } finally {
      sub.kill();
    }
  });
});
