import type { IClientOptions } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDelayedTopic } from '../src/delayed-publish.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { run, Watched } from './helpers/processes.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** `$delayed/{seconds}/{topic}`: held, then published to `topic`; kept across kill -9. */
let server: MqttServer | null = null;
let clients: MqttClient[] = [];
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;
const MAX = ['max_delayed_publish_seconds = 60'];

afterEach(async () => {
  await endAll(clients);
  clients = [];
  await server?.stop();
  server = null;
});

async function client(options: IClientOptions = {}): Promise<MqttClient> {
  const c = await connectClient(server!.port, options);
  clients.push(c);
  return c;
}

describe('the $delayed/ topic', () => {
  it('reads the delay and the topic, and refuses the rest', () => {
    expect(parseDelayedTopic('a/b', 60, 10)).toBeNull();
    expect(parseDelayedTopic('$delayed/5/a/b', 60, 10)).toEqual({ seconds: 5, topic: 'a/b' });
    expect(parseDelayedTopic('$delayed/x/a', 60, 10)).toMatch(/seconds/);
    expect(parseDelayedTopic('$delayed/5', 60, 10)).toMatch(/seconds/);
    expect(parseDelayedTopic('$delayed/-1/a', 60, 10)).toMatch(/seconds/);
    expect(parseDelayedTopic('$delayed/61/a', 60, 10)).toMatch(/at most 60/);
    expect(parseDelayedTopic('$delayed/5/', 60, 10)).toMatch(/empty/);
    expect(parseDelayedTopic('$delayed/5/$delayed/1/a', 60, 10)).toMatch(/cannot target/);
  });
});

describe.each([
  { name: 'MQTT 3.1.1', protocolVersion: 4 as const },
  { name: 'MQTT 5', protocolVersion: 5 as const },
])('MQTT.js, $name, delayed publish', ({ protocolVersion }) => {
  it('publishes to the topic after the delay, not before', async () => {
    server = await startServer({ mqtt: MAX });
    const topic = unique(`delayed/${protocolVersion}`);
    const sub = await client({ protocolVersion });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    const publisher = await client({ protocolVersion });
    await publisher.publishAsync(`$delayed/1/${topic}`, 'later', { qos: 1 });
    expect(await inbox.settle(400)).toEqual([]);
    const [message] = await inbox.waitFor(1, 5000);
    expect(message).toMatchObject({ topic, payload: 'later' });
  });

  it('keeps an acknowledged delayed message across kill -9', async () => {
    server = await startServer({ mqtt: MAX });
    const topic = unique(`delayed-restart/${protocolVersion}`);
    const publisher = await client({ protocolVersion });
    // Due well after the restart, so the subscriber below is there in time even on a busy machine.
    await publisher.publishAsync(`$delayed/5/${topic}`, 'survives', { qos: 1 });
    await endAll(clients);
    clients = [];
    const dir = server.dir;
    await server.kill();
    server = await startServer({ mqtt: MAX, dir });
    const sub = await client({ protocolVersion });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    expect((await inbox.waitFor(1, 15_000))[0]).toMatchObject({ topic, payload: 'survives' });
    expect((await inbox.settle(300)).length).toBe(1);
  });
});

describe('MQTT.js, MQTT 5, delayed publish with a message expiry', () => {
  it('drops a message whose expiry passes during its delay, and sends the rest with what is left', async () => {
    server = await startServer({ mqtt: MAX });
    const topic = unique('delayed-expiry');
    const sub = await client({ protocolVersion: 5 });
    const inbox = new Inbox(sub);
    await sub.subscribeAsync(topic, { qos: 1 });
    const publisher = await client({ protocolVersion: 5 });
    for (const [payload, qos, expiry] of [
      ['gone', 1, 1],
      ['gone at QoS 0', 0, 1],
      ['kept', 1, 30],
    ] as const) {
      await publisher.publishAsync(`$delayed/2/${topic}`, payload, {
        qos,
        properties: { messageExpiryInterval: expiry },
      });
    }
    const [kept] = await inbox.waitFor(1, 5000);
    expect(kept!.payload).toBe('kept');
    expect(kept!.packet.properties?.messageExpiryInterval).toBeLessThanOrEqual(28);
    expect((await inbox.settle(300)).map((m) => m.payload)).toEqual(['kept']);
  });
});

describe('invalid delayed topics', () => {
  it('close the connection: MQTT 5 with DISCONNECT 0x90, MQTT 3 without a word', async () => {
    server = await startServer({ mqtt: MAX });
    const v5 = await RawClient.connected(server.port, 5, unique('bad-delay-5'));
    v5.send({
      cmd: 'publish',
      topic: '$delayed/soon/a',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
    });
    expect(await v5.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x90 });
    const tooLong = await RawClient.connected(server.port, 5, unique('long-delay-5'));
    tooLong.send({
      cmd: 'publish',
      topic: '$delayed/61/a',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
    });
    expect(await tooLong.next()).toMatchObject({ cmd: 'disconnect', reasonCode: 0x90 });
    const v3 = await RawClient.connected(server.port, 4, unique('bad-delay-3'));
    v3.send({
      cmd: 'publish',
      topic: '$delayed/5',
      payload: Buffer.from('x'),
      qos: 0,
      retain: false,
      dup: false,
    });
    expect(await v3.closesWithin(2000)).toBe(true);
    for (const c of [v5, tooLong, v3]) c.close();
  });
});

describe('mosquitto clients', () => {
  it('delay a message from mosquitto_pub to mosquitto_sub', async () => {
    server = await startServer({ mqtt: MAX });
    const host = ['-h', '127.0.0.1', '-p', String(server.port)];
    const topic = unique('mosq-delayed');
    const sub = new Watched('stdbuf', [
      '-oL',
      'mosquitto_sub',
      ...host,
      '-d',
      '-q',
      '1',
      '-t',
      topic,
      '-C',
      '1',
    ]);
    await sub.waitFor('received SUBACK');
    const pub = await run('mosquitto_pub', [
      ...host,
      '-q',
      '1',
      '-t',
      `$delayed/1/${topic}`,
      '-m',
      'delayed',
    ]);
    expect(pub.code).toBe(0);
    const { code, stdout } = await sub.exited;
    expect(code).toBe(0);
    expect(stdout.split('\n')).toContain('delayed');
  });
});
