import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { run } from './helpers/processes.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** `$SYS/broker/...` topics, every second here, to explicit `$SYS` subscribers only. */
let server: MqttServer;

beforeAll(async () => {
  server = await startServer({ mqtt: ['sys_interval_seconds = 1'] });
});
afterAll(async () => {
  await server.stop();
});

const TOPICS = [
  'version',
  'uptime',
  'clients/connected',
  'clients/total',
  'clients/disconnected',
  'subscriptions/count',
  'retained messages/count',
  'messages/stored',
  'messages/received',
  'messages/sent',
  'bytes/received',
  'bytes/sent',
].map((t) => `$SYS/broker/${t}`);

describe.each([
  { name: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { name: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT.js, $name, $SYS topics', ({ protocolVersion }) => {
  it('are retained, published periodically, and not matched by a leading wildcard', async () => {
    const clients: MqttClient[] = [];
    try {
      const sys = await connectClient(server.port, { protocolVersion });
      const everything = await connectClient(server.port, { protocolVersion });
      clients.push(sys, everything);
      const sysInbox = new Inbox(sys);
      const everythingInbox = new Inbox(everything);
      await everything.subscribeAsync('#', { qos: 0 });
      await everything.subscribeAsync('+/broker/uptime', { qos: 0 });
      await sys.subscribeAsync('$SYS/broker/#', { qos: 0 });
      const retained = (await sysInbox.waitFor(TOPICS.length)).slice(0, TOPICS.length);
      expect(retained.map((m) => m.topic).sort()).toEqual([...TOPICS].sort());
      expect(retained.every((m) => m.packet.retain)).toBe(true);
      const byTopic = new Map(retained.map((m) => [m.topic, m.payload]));
      expect(byTopic.get('$SYS/broker/version')).toMatch(/^robustmq \d+\.\d+\.\d+/);
      expect(byTopic.get('$SYS/broker/uptime')).toMatch(/^\d+ seconds$/);
      expect(Number(byTopic.get('$SYS/broker/clients/connected'))).toBeGreaterThanOrEqual(0);
      // The next round comes live.
      const live = await sysInbox.waitFor(TOPICS.length * 2, 4000);
      expect(live.slice(TOPICS.length).some((m) => m.topic === '$SYS/broker/clients/connected')).toBe(true);
      const connected = live.filter((m) => m.topic === '$SYS/broker/clients/connected').at(-1)!;
      expect(Number(connected.payload)).toBeGreaterThanOrEqual(2);
      expect(everythingInbox.messages.filter((m) => m.topic.startsWith('$SYS'))).toEqual([]);
    } finally {
      await endAll(clients);
    }
  });
});

describe('$SYS counts of clients, subscriptions and stored messages, as Mosquitto publishes them', () => {
  it('counts a disconnected session, its subscriptions and the messages held for it', async () => {
    const own = await startServer({ mqtt: ['sys_interval_seconds = 1'] });
    const clients: MqttClient[] = [];
    try {
      const away = await connectClient(own.port, { clientId: 'sys-away', clean: false });
      await away.subscribeAsync(['sys-count/a', 'sys-count/b'], { qos: 1 });
      await away.endAsync();
      const publisher = await connectClient(own.port);
      const watcher = await connectClient(own.port);
      clients.push(publisher, watcher);
      for (let i = 0; i < 3; i++) await publisher.publishAsync('sys-count/a', `held ${i}`, { qos: 1 });
      await publisher.publishAsync('sys-count/r', 'kept', { qos: 1, retain: true });
      const inbox = new Inbox(watcher);
      await watcher.subscribeAsync('$SYS/broker/#', { qos: 0 });
      // A round published after all that: the second one the watcher sees.
      const rounds = await inbox.waitFor(TOPICS.length * 2, 4000);
      const latest = new Map(
        rounds.slice(TOPICS.length).map((m) => [m.topic.slice('$SYS/broker/'.length), m.payload]),
      );
      expect(
        Object.fromEntries(
          ['clients/connected', 'clients/total', 'clients/disconnected', 'subscriptions/count'].map((k) => [
            k,
            Number(latest.get(k)),
          ]),
        ),
      ).toEqual({
        'clients/connected': 2,
        'clients/total': 3,
        'clients/disconnected': 1,
        'subscriptions/count': 3,
      });
      // Retained: the one published and the broker's own $SYS topics.
      const retained = Number(latest.get('retained messages/count'));
      expect(retained).toBe(1 + TOPICS.length);
      expect(Number(latest.get('messages/stored'))).toBe(retained + 3);
    } finally {
      await endAll(clients);
      await own.stop();
    }
  });
});

describe('a client publishing to $SYS', () => {
  it('is refused (MQTT 5: PUBACK 0x87, MQTT 3.1.1: acknowledged and dropped), also as a will', async () => {
    const clients: MqttClient[] = [];
    try {
      const sys = await connectClient(server.port, { protocolVersion: 5 });
      clients.push(sys);
      const inbox = new Inbox(sys);
      await sys.subscribeAsync('$SYS/fake/#', { qos: 1 });
      const v5 = await connectClient(server.port, { protocolVersion: 5 });
      const v4 = await connectClient(server.port, {
        protocolVersion: 4,
        will: { topic: '$SYS/fake/will', payload: Buffer.from('gone'), qos: 1, retain: false },
      });
      clients.push(v5, v4);
      const refused = await v5
        .publishAsync('$SYS/fake/uptime', '1 seconds', { qos: 1 })
        .catch((e: unknown) => e);
      expect(String(refused)).toContain('Not authorized');
      await v4.publishAsync('$SYS/fake/uptime', '2 seconds', { qos: 1 });
      v4.stream.destroy();
      await new Promise((r) => setTimeout(r, 500));
      expect(inbox.messages).toEqual([]);
    } finally {
      await endAll(clients);
    }
  });
});

describe('mosquitto_sub', () => {
  it('reads $SYS/broker/uptime', async () => {
    const { code, stdout } = await run('mosquitto_sub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(server.port),
      '-t',
      '$SYS/broker/uptime',
      '-C',
      '1',
      '-W',
      '5',
      '-v',
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^\$SYS\/broker\/uptime \d+ seconds\n$/);
  });
});
