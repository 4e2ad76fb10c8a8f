import { ConfigError } from '@robustmq/core';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSettings } from '../src/config.js';
import { Mosquitto } from './helpers/mosquitto.js';
import { connectClient, connectWithInbox, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startServer, type MqttServer } from './helpers/server.js';

let mosquitto: Mosquitto;
let server: MqttServer;
const clients: MqttClient[] = [];

/** An MQTT 5 client on the remote broker. */
async function remoteClient(options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await connectClient(mosquitto.open, { protocolVersion: 5, ...options });
  clients.push(client);
  return client;
}

/** An MQTT 5 client on RobustMQ. */
async function localClient(options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const client = await connectClient(server.port, { protocolVersion: 5, ...options });
  clients.push(client);
  return client;
}

/** The `[mqtt]` lines of the server: three bridges to mosquitto, one of them refused. */
function bridgeSettings(): string[] {
  return [
    '[[mqtt.bridges]]',
    'name = "main"',
    `address = "127.0.0.1:${mosquitto.open}"`,
    'restart_seconds = 1',
    'topics = [',
    '  { pattern = "out/#", direction = "out", qos = 1, remote_prefix = "site1/" },',
    '  { pattern = "in/#", direction = "in", qos = 1, local_prefix = "from-remote/" },',
    '  { pattern = "both/#", direction = "both", qos = 1 },',
    '  { pattern = "exact/#", direction = "both", qos = 2, local_prefix = "here/" },',
    ']',
    '[[mqtt.bridges]]',
    'name = "old"',
    `address = "mqtt://127.0.0.1:${mosquitto.open}"`,
    'protocol_version = "3.1.1"',
    'restart_seconds = 1',
    'topics = [{ pattern = "old/#", direction = "out", qos = 1, remote_prefix = "v311/" }]',
    '[[mqtt.bridges]]',
    'name = "locked"',
    `address = "127.0.0.1:${mosquitto.locked}"`,
    'remote_client_id = "locked-bridge"',
    'remote_username = "bridge"',
    'remote_password = "wrong"',
    'restart_seconds = 1',
    'topics = [{ pattern = "locked/#", direction = "both", qos = 1 }]',
  ];
}

beforeAll(async () => {
  mosquitto = await Mosquitto.create();
  server = await startServer({ mqtt: bridgeSettings() });
  await server.waitForLog((l) => l.msg === 'bridge connected' && l.bridge === 'main' && l.side === 'remote');
  await server.waitForLog((l) => l.msg === 'bridge connected' && l.bridge === 'main' && l.side === 'local');
  await server.waitForLog((l) => l.msg === 'bridge connected' && l.bridge === 'old' && l.side === 'local');
});

afterAll(async () => {
  await endAll(clients);
  await server?.stop();
  await mosquitto?.remove();
});

/** Lets the bridges' subscriptions settle after a connect (SUBACKs come right after CONNACK). */
const brief = (ms = 200) => new Promise((r) => setTimeout(r, ms));

describe('an MQTT bridge to mosquitto', () => {
  it('carries "out" topics to the remote with its prefix, at QoS 1, with the retained flag', async () => {
    const subscriber = await remoteClient();
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('site1/out/#', { qos: 1, rap: true });
    await brief();
    const publisher = await localClient();
    await publisher.publishAsync('out/plain', 'one', { qos: 1 });
    await publisher.publishAsync('out/kept', 'two', { qos: 1, retain: true });
    const [plain, kept] = await inbox.waitFor(2);
    expect([plain!.topic, plain!.payload, plain!.packet.qos, plain!.packet.retain]).toEqual([
      'site1/out/plain',
      'one',
      1,
      false,
    ]);
    expect([kept!.topic, kept!.payload, kept!.packet.qos, kept!.packet.retain]).toEqual([
      'site1/out/kept',
      'two',
      1,
      true,
    ]);
    // Mosquitto stored it as retained: a later subscriber gets it.
    const late = await remoteClient();
    const lateInbox = new Inbox(late);
    await late.subscribeAsync('site1/out/kept', { qos: 1 });
    const again = await lateInbox.at(0);
    expect([again.payload, again.packet.retain]).toEqual(['two', true]);
    await server.waitForMetric(
      /^robustmq_mqtt_bridge_messages_total\{.*bridge="main".*direction="out".*\} [1-9]/,
    );
  });

  it('carries "out" topics over MQTT 3.1.1 too', async () => {
    const subscriber = await remoteClient();
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('v311/old/#', { qos: 1 });
    const publisher = await localClient();
    await publisher.publishAsync('old/news', 'from 3.1.1', { qos: 1 });
    const message = await inbox.at(0);
    expect([message.topic, message.payload, message.packet.qos]).toEqual(['v311/old/news', 'from 3.1.1', 1]);
  });

  it('carries "in" topics from the remote with the local prefix, at QoS 1', async () => {
    const subscriber = await localClient();
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('from-remote/in/#', { qos: 1 });
    const publisher = await remoteClient();
    await publisher.publishAsync('in/reading', '21.5', { qos: 1 });
    const message = await inbox.at(0);
    expect([message.topic, message.payload, message.packet.qos]).toEqual([
      'from-remote/in/reading',
      '21.5',
      1,
    ]);
  });

  it("carries QoS 2 both ways, and a message at most at its rule's QoS", async () => {
    const localSide = await localClient();
    const remoteSide = await remoteClient();
    const localInbox = new Inbox(localSide);
    const remoteInbox = new Inbox(remoteSide);
    await localSide.subscribeAsync(['here/exact/in', 'from-remote/in/capped'], { qos: 2 });
    await remoteSide.subscribeAsync('exact/out', { qos: 2 });
    await (await localClient()).publishAsync('here/exact/out', 'to remote', { qos: 2 });
    const out = await remoteInbox.at(0);
    expect([out.topic, out.payload, out.packet.qos]).toEqual(['exact/out', 'to remote', 2]);
    const remotePublisher = await remoteClient();
    await remotePublisher.publishAsync('exact/in', 'from remote', { qos: 2 });
    const inbound = await localInbox.at(0);
    expect([inbound.topic, inbound.payload, inbound.packet.qos]).toEqual(['here/exact/in', 'from remote', 2]);
    // The "in/#" rule has QoS 1.
    await remotePublisher.publishAsync('in/capped', 'qos 2 sent', { qos: 2 });
    const capped = await localInbox.at(1);
    expect([capped.topic, capped.packet.qos]).toEqual(['from-remote/in/capped', 1]);
  });

  it('carries "both" topics across once, never back', async () => {
    const localSide = await localClient();
    const remoteSide = await remoteClient();
    const localInbox = new Inbox(localSide);
    const remoteInbox = new Inbox(remoteSide);
    await localSide.subscribeAsync('both/#', { qos: 1 });
    await remoteSide.subscribeAsync('both/#', { qos: 1 });
    const localPublisher = await localClient();
    const remotePublisher = await remoteClient();
    await localPublisher.publishAsync('both/from-local', 'L', { qos: 1 });
    await remotePublisher.publishAsync('both/from-remote', 'R', { qos: 1 });
    await localInbox.waitFor(2);
    await remoteInbox.waitFor(2);
    const count = (inbox: Inbox) =>
      Object.fromEntries(
        ['both/from-local', 'both/from-remote'].map((t) => [
          t,
          inbox.messages.filter((m) => m.topic === t).length,
        ]),
      );
    await brief(500);
    expect(count(localInbox)).toEqual({ 'both/from-local': 1, 'both/from-remote': 1 });
    expect(count(remoteInbox)).toEqual({ 'both/from-local': 1, 'both/from-remote': 1 });
  });

  it('keeps retrying a remote that refuses its credentials, and local clients do not notice', async () => {
    await server.waitForLog(
      (l) => l.msg === 'bridge cannot connect; retrying' && l.bridge === 'locked' && l.side === 'remote',
    );
    // Mosquitto saw more than one attempt (the log line is rate-limited, the attempts are not).
    const deadline = Date.now() + 5000;
    const attempts = () => mosquitto.log.split(`on port ${mosquitto.locked}.`).length - 1;
    while (attempts() < 3) {
      if (Date.now() > deadline) throw new Error(`no third attempt: ${mosquitto.log}`);
      await brief(100);
    }
    const subscriber = await localClient();
    const inbox = new Inbox(subscriber);
    await subscriber.subscribeAsync('locked/#', { qos: 1 });
    const publisher = await localClient();
    await publisher.publishAsync('locked/door', 'still works', { qos: 1 });
    expect((await inbox.at(0)).payload).toBe('still works');
  });

  it('queues QoS 1 messages while the remote is down and delivers them all after, with $SYS state', async () => {
    const watcher = await localClient();
    const states = new Inbox(watcher);
    await watcher.subscribeAsync('$SYS/broker/connection/main/state', { qos: 0 });
    expect((await states.at(0)).payload).toBe('1');
    // A persistent session on mosquitto, saved over its restart.
    const subscriber = mqtt.connect(`mqtt://127.0.0.1:${mosquitto.open}`, {
      protocolVersion: 5,
      clientId: 'down-watcher',
      clean: false,
      properties: { sessionExpiryInterval: 600 },
      reconnectPeriod: 100,
    });
    clients.push(subscriber);
    const inbox = new Inbox(subscriber);
    await new Promise((resolve) => subscriber.once('connect', resolve));
    await subscriber.subscribeAsync('site1/out/down/#', { qos: 1 });

    await mosquitto.stop();
    await server.waitForLog((l) => l.msg === 'bridge disconnected; retrying' && l.bridge === 'main');
    expect((await states.at(1)).payload).toBe('0');
    const publisher = await localClient();
    const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
    for (const m of sent) await publisher.publishAsync('out/down/x', m, { qos: 1 });

    await mosquitto.start();
    expect((await states.at(2, 5000)).payload).toBe('1');
    const received = (await inbox.waitFor(sent.length, 8000)).map((m) => m.payload);
    await brief(300);
    // Each exactly once: held by the bridge's remote client until mosquitto acknowledged it.
    expect(inbox.messages.map((m) => m.payload)).toEqual(sent);
    expect(received).toEqual(sent);
  });

  it('loses nothing when this broker crashes while holding messages for a remote that is down', async () => {
    const watcher = await localClient();
    const states = new Inbox(watcher);
    await watcher.subscribeAsync('$SYS/broker/connection/main/state', { qos: 0 });
    expect((await states.at(0)).payload).toBe('1');
    const session = { protocolVersion: 5, clientId: 'crash-watcher', clean: false } as const;
    const subscriber = await remoteClient({ ...session, properties: { sessionExpiryInterval: 600 } });
    await subscriber.subscribeAsync('site1/out/crash/#', { qos: 1 });
    await subscriber.endAsync();

    await mosquitto.stop();
    expect((await states.at(1)).payload).toBe('0');
    const publisher = await localClient();
    const sent = Array.from({ length: 5 }, (_, i) => `c${i}`);
    for (const m of sent) await publisher.publishAsync('out/crash/x', m, { qos: 1 });
    // The bridge took them from its local session and holds their acknowledgements: a SIGKILL now
    // leaves them unacknowledged in that session, to come again after the restart.
    await brief(300);
    await server.kill();
    [server] = await Promise.all([
      startServer({ dir: server.dir, mqtt: bridgeSettings() }),
      mosquitto.start(),
    ]);
    await server.waitForLog(
      (l) => l.msg === 'bridge connected' && l.bridge === 'main' && l.side === 'remote',
    );
    // The inbox is attached before CONNACK: the queued messages come right after it.
    const { client: back, inbox } = await connectWithInbox(mosquitto.open, {
      ...session,
      properties: { sessionExpiryInterval: 600 },
    });
    clients.push(back);
    await inbox.waitFor(sent.length, 8000);
    await brief(300);
    expect(inbox.messages.map((m) => m.payload)).toEqual(sent);
  });
});

describe('bridge settings', () => {
  const bridge = {
    name: 'b',
    address: 'remote:1883',
    topics: [{ pattern: 'a/#', direction: 'out', qos: 1 }],
  };
  const refused = (bridges: unknown, extra: Record<string, unknown> = {}) => {
    try {
      parseSettings({ bridges, ...extra });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error('accepted');
  };

  it('fill in Mosquitto-like defaults', () => {
    const [parsed] = parseSettings({ bridges: [bridge] }).bridges;
    expect(parsed).toMatchObject({
      name: 'b',
      url: 'mqtt://remote:1883',
      cleanStart: false,
      keepaliveSeconds: 60,
      protocolVersion: 5,
      restartSeconds: 5,
      notifications: true,
      tls: undefined,
      topics: [{ pattern: 'a/#', direction: 'out', qos: 1, localPrefix: '', remotePrefix: '' }],
    });
    expect(parsed!.remoteClientId).toMatch(/\.b$/);
    const [secure] = parseSettings({ bridges: [{ ...bridge, address: 'mqtts://remote' }] }).bridges;
    expect(secure!.url).toBe('mqtts://remote:8883');
    expect(secure!.tls).toEqual({ insecure: false });
  });

  it('refuse an unknown direction, QoS 3, a duplicate name, and more', () => {
    expect(refused([{ ...bridge, topics: [{ pattern: 'a', direction: 'sideways', qos: 0 }] }])).toMatch(
      /bridges\[0\]\.topics\[0\]\.direction/,
    );
    expect(refused([{ ...bridge, topics: [{ pattern: 'a', direction: 'in', qos: 3 }] }])).toMatch(
      /bridges\[0\]\.topics\[0\]\.qos/,
    );
    expect(refused([bridge, bridge])).toMatch(/bridges\[1\]\.name.*another bridge/);
    expect(refused([{ ...bridge, topics: [{ pattern: 'a/#/b', direction: 'in', qos: 0 }] }])).toMatch(
      /pattern/,
    );
    expect(refused([{ ...bridge, topics: [{ pattern: 'a', local_prefix: 'x/+/' }] }])).toMatch(
      /local_prefix/,
    );
    expect(refused([{ ...bridge, address: 'http://remote' }])).toMatch(/address/);
    expect(refused([{ ...bridge, protocol_version: 4 }])).toMatch(/protocol_version/);
    expect(refused([{ ...bridge, cert_file: 'c.pem', key_file: 'k.pem' }])).toMatch(/cert_file.*TLS/);
    expect(refused([{ ...bridge, remote_pasword: 'x' }])).toMatch(/remote_pasword.*unknown/);
    expect(refused([bridge], { listeners: ['ws'] })).toMatch(/bridges.*"tcp" listener/);
  });
});
