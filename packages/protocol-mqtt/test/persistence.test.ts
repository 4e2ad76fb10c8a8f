import { fileURLToPath } from 'node:url';
import type { IClientOptions } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/packets.js';
import { connectClient, connectWithInbox, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { run } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** Sessions, queued messages and retained messages across `kill -9` and a restart on the same data. */

const PAHO = fileURLToPath(new URL('./fixtures/paho_client.py', import.meta.url));
let server: MqttServer | null = null;
let clients: MqttClient[] = [];
let raws: RawClient[] = [];
let seq = 0;

afterEach(async () => {
  await endAll(clients);
  clients = [];
  for (const raw of raws) raw.close();
  raws = [];
  await server?.stop();
  server = null;
});

async function start(mqtt: string[] = []): Promise<MqttServer> {
  server = await startServer({ mqtt });
  return server;
}

/** SIGKILL, then a new process on the same data directory. */
async function killAndRestart(mqtt: string[] = []): Promise<MqttServer> {
  const dir = server!.dir;
  await server!.kill();
  server = await startServer({ mqtt, dir });
  return server;
}

async function client(options: IClientOptions): Promise<MqttClient> {
  const c = await connectClient(server!.port, options);
  clients.push(c);
  return c;
}

function persistent(protocolVersion: 4 | 5, clientId: string): IClientOptions {
  return protocolVersion === 5
    ? { protocolVersion, clientId, clean: false, properties: { sessionExpiryInterval: 300 } }
    : { protocolVersion, clientId, clean: false };
}

describe.each([
  { name: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { name: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT.js, $name, persistent sessions after kill -9', ({ protocolVersion }) => {
  const unique = (what: string) => `${what}-${protocolVersion}-${++seq}`;

  it('keeps subscriptions, acknowledged QoS 1/2 messages queued while away, and retained messages', async () => {
    await start();
    const topic = unique('persist');
    const id = unique('sub');
    const sub = await client(persistent(protocolVersion, id));
    await sub.subscribeAsync(`${topic}/q1`, { qos: 1 });
    await sub.subscribeAsync(`${topic}/q2`, { qos: 2 });
    await sub.endAsync();
    const pub = await client({ protocolVersion, clientId: unique('pub') });
    await pub.publishAsync(`${topic}/q1`, 'one', { qos: 1 });
    await pub.publishAsync(`${topic}/q2`, 'two', { qos: 2 });
    await pub.publishAsync(`${topic}/q1`, 'three', { qos: 1 });
    await pub.publishAsync(`${topic}/kept`, 'retained', { qos: 1, retain: true });

    await killAndRestart();
    const resumed = await connectWithInbox(server!.port, persistent(protocolVersion, id));
    clients.push(resumed.client);
    expect(resumed.connack.sessionPresent).toBe(true);
    const queued = await resumed.inbox.waitFor(3);
    // Clients hand a QoS 2 message over at PUBREL, so it may come out after later QoS 1 ones.
    expect(queued.map((m) => [m.topic, m.payload, m.packet.qos]).sort()).toEqual([
      [`${topic}/q1`, 'one', 1],
      [`${topic}/q1`, 'three', 1],
      [`${topic}/q2`, 'two', 2],
    ]);

    const pub2 = await client({ protocolVersion, clientId: unique('pub') });
    await pub2.publishAsync(`${topic}/q2`, 'live', { qos: 2 });
    expect((await resumed.inbox.at(3)).payload).toBe('live');

    const late = await client({ protocolVersion, clientId: unique('late') });
    const lateInbox = new Inbox(late);
    await late.subscribeAsync(`${topic}/kept`, { qos: 1 });
    const kept = await lateInbox.at(0);
    expect([kept.payload, kept.packet.retain]).toEqual(['retained', true]);
  }, 20_000);

  it('keeps shared and exclusive subscriptions', async () => {
    await start();
    const topic = unique('persist-shared');
    const id = unique('member');
    const sub = await client(persistent(protocolVersion, id));
    await sub.subscribeAsync(`$share/g/${topic}/shared`, { qos: 1 });
    await sub.subscribeAsync(`$exclusive/${topic}/only`, { qos: 1 });
    await sub.endAsync();
    const pub = await client({ protocolVersion, clientId: unique('pub') });
    await pub.publishAsync(`${topic}/shared`, 'for the group', { qos: 1 });

    await killAndRestart();
    const resumed = await connectWithInbox(server!.port, persistent(protocolVersion, id));
    clients.push(resumed.client);
    expect((await resumed.inbox.waitFor(1))[0]!.payload).toBe('for the group');
    const other = await client({ protocolVersion, clientId: unique('other') });
    const refused = await other.subscribeAsync(`$exclusive/${topic}/only`, { qos: 1 }).then(
      (granted) => granted[0]!.qos,
      (error: { packet: { granted: number[] } }) => error.packet.granted[0]!,
    );
    expect(refused).toBe(protocolVersion === 5 ? 0x97 : 0x80);
    const pub2 = await client({ protocolVersion, clientId: unique('pub') });
    await pub2.publishAsync(`${topic}/only`, 'exclusive', { qos: 1 });
    expect((await resumed.inbox.at(1)).payload).toBe('exclusive');
  }, 20_000);

  it('sends unacknowledged messages again with DUP and the same packet id, and PUBREL after PUBREC', async () => {
    await start();
    const topic = unique('dup');
    const id = unique('raw');
    const connect = {
      clean: false,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
    };
    const raw = await RawClient.connected(server!.port, protocolVersion, id, connect);
    raws.push(raw);
    raw.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 2 }] });
    expect((await raw.next()).cmd).toBe('suback');
    const pub = await client({ protocolVersion, clientId: unique('pub') });
    await pub.publishAsync(topic, 'a', { qos: 1 });
    await pub.publishAsync(topic, 'b', { qos: 2 });
    await pub.publishAsync(topic, 'c', { qos: 2 });
    const sent = [await raw.next(), await raw.next(), await raw.next()] as Array<
      Extract<Packet, { cmd: 'publish' }>
    >;
    expect(sent.map((p) => [p.cmd, p.payload.toString(), p.qos, p.dup])).toEqual([
      ['publish', 'a', 1, false],
      ['publish', 'b', 2, false],
      ['publish', 'c', 2, false],
    ]);
    // 'c' gets as far as PUBREC; 'a' and 'b' are never acknowledged.
    raw.send({ cmd: 'pubrec', messageId: sent[2]!.messageId! });
    expect(await raw.next()).toMatchObject({ cmd: 'pubrel', messageId: sent[2]!.messageId });
    // The "sent" and "PUBREC received" records are written after the packets go out (the spec
    // allows resending with DUP instead), so give the session log's group commit, about one fsync,
    // ample time before the crash.
    await new Promise((r) => setTimeout(r, 1000));

    await killAndRestart();
    const again = await RawClient.connected(server!.port, protocolVersion, id, connect);
    raws.push(again);
    const redelivered = [await again.next(), await again.next(), await again.next()];
    expect(redelivered.map((p) => summarize(p))).toEqual([
      ['publish', sent[0]!.messageId, 'a', true],
      ['publish', sent[1]!.messageId, 'b', true],
      ['pubrel', sent[2]!.messageId, null, null],
    ]);
    again.send({ cmd: 'puback', messageId: sent[0]!.messageId! });
    again.send({ cmd: 'pubrec', messageId: sent[1]!.messageId! });
    expect(await again.next()).toMatchObject({ cmd: 'pubrel', messageId: sent[1]!.messageId });
    again.send({ cmd: 'pubcomp', messageId: sent[1]!.messageId! });
    again.send({ cmd: 'pubcomp', messageId: sent[2]!.messageId! });
    again.send({ cmd: 'pingreq' });
    expect((await again.next()).cmd).toBe('pingresp');
  }, 20_000);

  it('keeps the ids of inbound QoS 2 messages awaiting PUBREL: a repeat is not delivered twice', async () => {
    await start();
    const topic = unique('inbound');
    const watcher = await client({
      protocolVersion,
      clientId: unique('watch'),
      ...persistent(protocolVersion, unique('w')),
    });
    await watcher.subscribeAsync(topic, { qos: 1 });
    await watcher.endAsync();
    const id = unique('pub');
    const connect = {
      clean: false,
      ...(protocolVersion === 5 ? { properties: { sessionExpiryInterval: 300 } } : {}),
    };
    const raw = await RawClient.connected(server!.port, protocolVersion, id, connect);
    raws.push(raw);
    raw.send({
      cmd: 'publish',
      topic,
      payload: Buffer.from('once'),
      qos: 2,
      messageId: 7,
      dup: false,
      retain: false,
    });
    expect(await raw.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 });

    await killAndRestart();
    const again = await RawClient.connected(server!.port, protocolVersion, id, connect);
    raws.push(again);
    again.send({
      cmd: 'publish',
      topic,
      payload: Buffer.from('once'),
      qos: 2,
      messageId: 7,
      dup: true,
      retain: false,
    });
    expect(await again.next()).toMatchObject({ cmd: 'pubrec', messageId: 7 });
    again.send({ cmd: 'pubrel', messageId: 7 });
    expect(await again.next()).toMatchObject({ cmd: 'pubcomp', messageId: 7 });
  }, 20_000);
});

function summarize(packet: Packet): [string, number | undefined, string | null, boolean | null] {
  if (packet.cmd === 'publish') return ['publish', packet.messageId, packet.payload.toString(), packet.dup];
  if (packet.cmd === 'pubrel') return ['pubrel', packet.messageId, null, null];
  return [packet.cmd, undefined, null, null];
}

describe.each(['31', '311', '5'])(
  'Paho Python, MQTT version %s, persistent session after kill -9',
  (version) => {
    it('comes back with its subscription and the QoS 1/2 messages queued before the crash', async () => {
      await start();
      const topic = `paho-persist-${version}-${++seq}`;
      const paho = async (scenario: string) => {
        const result = await run(
          '/usr/bin/python3',
          [PAHO, String(server!.port), version, scenario, topic],
          20_000,
        );
        if (result.code !== 0) throw new Error(`paho ${scenario} failed: ${result.stderr}`);
        return JSON.parse(result.stdout) as Record<string, unknown>;
      };
      await paho('persist_subscribe');
      const pub = await client({ clientId: `${topic}-pub` });
      await pub.publishAsync(topic, 'p-0', { qos: 1 });
      await pub.publishAsync(topic, 'p-1', { qos: 2 });
      await pub.publishAsync(topic, 'p-2', { qos: 1 });
      await pub.endAsync();

      await killAndRestart();
      const resumed = (await paho('persist_resume')) as { sessionPresent: boolean; messages: unknown[] };
      // Paho hands a QoS 2 message over at PUBREL, so it may come out after later QoS 1 ones.
      resumed.messages.sort();
      expect(resumed).toEqual({
        sessionPresent: true,
        messages: [
          ['p-0', 1],
          ['p-1', 2],
          ['p-2', 1],
        ],
      });
    }, 30_000);
  },
);

describe('session expiry and the offline queue limit, across kill -9', () => {
  const v5 = (clientId: string, expiry: number): IClientOptions => ({
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: expiry },
  });

  it('deletes a stored session when it expires, while running or while the server is down', async () => {
    await start();
    const topic = `expiry-${++seq}`;
    for (const [id, expiry] of [
      [`${topic}-running`, 1],
      [`${topic}-down`, 2],
    ] as const) {
      const c = await client(v5(id, expiry));
      await c.subscribeAsync(topic, { qos: 1 });
      await c.endAsync();
    }
    const pub = await client({ clientId: `${topic}-pub` });
    await pub.publishAsync(topic, 'gone', { qos: 1 });
    await new Promise((r) => setTimeout(r, 1300)); // the 1 s session expires while the node runs
    await killAndRestart();
    await new Promise((r) => setTimeout(r, 1000)); // the 2 s one has expired by now
    for (const id of [`${topic}-running`, `${topic}-down`]) {
      const back = await connectWithInbox(server!.port, v5(id, 300));
      clients.push(back.client);
      expect(back.connack.sessionPresent).toBe(false);
      expect(await back.inbox.settle(300)).toEqual([]);
    }
  }, 20_000);

  it.each([
    { policy: 'drop_newest', kept: ['m0', 'm1', 'm2'] },
    { policy: 'drop_oldest', kept: ['m3', 'm4', 'm5'] },
  ])(
    'keeps at most max_queued_messages offline, with $policy',
    async ({ policy, kept }) => {
      const settings = ['max_queued_messages = 3', `queue_full_policy = "${policy}"`];
      await start(settings);
      const topic = `limit-${policy}-${++seq}`;
      const sub = await client(v5(`${topic}-sub`, 300));
      await sub.subscribeAsync(topic, { qos: 1 });
      await sub.endAsync();
      const pub = await client({ clientId: `${topic}-pub` });
      for (let i = 0; i < 6; i++) await pub.publishAsync(topic, `m${i}`, { qos: 1 });

      await killAndRestart(settings);
      const back = await connectWithInbox(server!.port, v5(`${topic}-sub`, 300));
      clients.push(back.client);
      expect(back.connack.sessionPresent).toBe(true);
      await back.inbox.waitFor(3);
      expect((await back.inbox.settle(300)).map((m) => m.payload)).toEqual(kept);
    },
    20_000,
  );

  it.each([
    { when: 'while the node is down', downMs: 2500 },
    { when: 'after the restart', downMs: 0 },
  ])(
    'gives a shared member’s unacknowledged messages to another member when its session expires $when',
    async ({ downMs }) => {
      await start();
      const topic = `shared-expiry-${++seq}`;
      const filter = `$share/workers/${topic}`;
      // The member that will keep its messages without acknowledging them: expires 2 s after it goes.
      const holder = await RawClient.connected(server!.port, 5, `${topic}-holder`, {
        clean: false,
        properties: { sessionExpiryInterval: 2 },
      });
      raws.push(holder);
      holder.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: filter, qos: 1 }] });
      expect((await holder.next()).cmd).toBe('suback');
      // The other member is away (persistent), so the connected holder gets every message.
      const other = await client(v5(`${topic}-other`, 600));
      await other.subscribeAsync(filter, { qos: 1 });
      await other.endAsync();
      const pub = await client({ clientId: `${topic}-pub` });
      for (const payload of ['j1', 'j2', 'j3']) await pub.publishAsync(topic, payload, { qos: 1 });
      for (let i = 0; i < 3; i++) expect((await holder.next()).cmd).toBe('publish');

      const dir = server!.dir;
      await server!.kill();
      await new Promise((r) => setTimeout(r, downMs));
      server = await startServer({ dir });
      const back = await connectWithInbox(server.port, v5(`${topic}-other`, 600));
      clients.push(back.client);
      const got = await back.inbox.waitFor(3, 10_000);
      expect(got.map((m) => m.payload).sort()).toEqual(['j1', 'j2', 'j3']);
      expect(await back.inbox.settle(300)).toHaveLength(3);
    },
    30_000,
  );
});
