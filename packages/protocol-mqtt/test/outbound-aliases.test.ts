import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Packet } from '../src/codec/index.js';
import { OutboundTopicAliases } from '../src/outbound-aliases.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;

beforeAll(async () => {
  server = await startServer({ mqtt: ['outbound_topic_aliases = 2'] });
});
afterAll(async () => {
  await server.stop();
});

describe('outbound topic aliases (unit)', () => {
  it('assigns free aliases, then gives the least recently used topic’s alias to a new topic', () => {
    const aliases = new OutboundTopicAliases(2);
    expect(aliases.lookup('a')).toBeUndefined();
    aliases.set('a', aliases.next());
    aliases.set('b', aliases.next());
    expect([aliases.lookup('a'), aliases.lookup('b')]).toEqual([1, 2]);
    aliases.lookup('a');
    // b is now the least recently used.
    expect(aliases.next()).toBe(2);
    aliases.set('c', 2);
    expect(aliases.lookup('b')).toBeUndefined();
    expect(aliases.lookup('c')).toBe(2);
    expect(aliases.lookup('a')).toBe(1);
    expect(aliases.size).toBe(2);
  });
});

describe('MQTT 5 server-assigned topic aliases', () => {
  it('sends topic and alias first, then an empty topic with the alias (raw bytes)', async () => {
    const topic = unique('alias/topic');
    const sub = await RawClient.connected(server.port, 5, unique('raw'), {
      properties: { topicAliasMaximum: 5 },
    });
    const chunks: Buffer[] = [];
    sub.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    sub.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] });
    expect((await sub.next()).cmd).toBe('suback');
    const pub = await RawClient.connected(server.port, 5, unique('pub'));
    for (const payload of ['one', 'two']) {
      pub.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, dup: false, retain: false });
    }
    const first = (await sub.next()) as Extract<Packet, { cmd: 'publish' }>;
    const second = (await sub.next()) as Extract<Packet, { cmd: 'publish' }>;
    expect(first.topic).toBe(topic);
    expect(first.properties?.topicAlias).toBe(1);
    expect(second.topic).toBe('');
    expect(second.properties?.topicAlias).toBe(1);
    expect(second.payload.toString()).toBe('two');
    // The second PUBLISH on the wire: type 0x30, remaining length 9, topic name of length 0,
    // properties of length 3 (0x23 topic alias = 1), then the payload.
    const bytes = Buffer.concat(chunks);
    const payloadAt = bytes.lastIndexOf('two');
    expect([...bytes.subarray(payloadAt - 8, payloadAt)]).toEqual([0x30, 9, 0, 0, 3, 0x23, 0, 1]);
    expect(bytes.indexOf(Buffer.from(topic))).toBe(bytes.lastIndexOf(Buffer.from(topic)));
    sub.close();
    pub.close();
  });

  it('assigns none to a client that takes none, nor to MQTT 3 clients', async () => {
    const topic = unique('alias/none');
    const v5 = await RawClient.connected(server.port, 5, unique('raw'));
    const v4 = await RawClient.connected(server.port, 4, unique('raw'));
    for (const c of [v5, v4]) {
      c.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 1 }] });
      expect((await c.next()).cmd).toBe('suback');
    }
    const pub = await RawClient.connected(server.port, 5, unique('pub'));
    for (let i = 0; i < 2; i++) {
      pub.send({ cmd: 'publish', topic, payload: Buffer.from('x'), qos: 0, dup: false, retain: false });
    }
    for (const c of [v5, v4]) {
      for (let i = 0; i < 2; i++) {
        const p = (await c.next()) as Extract<Packet, { cmd: 'publish' }>;
        expect(p.topic).toBe(topic);
        expect(p.properties?.topicAlias).toBeUndefined();
      }
    }
    for (const c of [v5, v4, pub]) c.close();
  });

  it('MQTT.js v5 resolves the aliases, also when more topics than aliases are in use (QoS 0 and 1)', async () => {
    const clients: MqttClient[] = [];
    try {
      const base = unique('alias/many');
      const sub = await connectClient(server.port, {
        protocolVersion: 5,
        clientId: unique('sub'),
        properties: { topicAliasMaximum: 10 },
      });
      clients.push(sub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync(`${base}/#`, { qos: 1 });
      const pub = await connectClient(server.port, { protocolVersion: 5, clientId: unique('pub') });
      clients.push(pub);
      const sent: string[] = [];
      // Three topics rotating through two aliases (outbound_topic_aliases = 2), twice each.
      for (let round = 0; round < 2; round++) {
        for (const name of ['a', 'b', 'c', 'a']) {
          const topic = `${base}/${name}`;
          await pub.publishAsync(topic, `${round}:${name}`, { qos: (round % 2) as 0 | 1 });
          sent.push(`${topic} ${round}:${name}`);
        }
      }
      const got = await inbox.waitFor(sent.length);
      expect(got.map((m) => `${m.topic} ${m.payload}`)).toEqual(sent);
      expect(got.some((m) => m.packet.properties?.topicAlias !== undefined)).toBe(true);
    } finally {
      await endAll(clients);
    }
  });
});
