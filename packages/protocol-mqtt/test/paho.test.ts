import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './helpers/processes.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** Paho Python 1.6 (Debian python3-paho-mqtt) under /usr/bin/python3. */
const SCRIPT = fileURLToPath(new URL('./fixtures/paho_client.py', import.meta.url));
let server: MqttServer;
let seq = 0;

beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  await server.stop();
});

async function paho(version: string, scenario: string): Promise<Record<string, unknown>> {
  const topic = `paho-${scenario}-${version}-${++seq}`;
  const result = await run(
    '/usr/bin/python3',
    [SCRIPT, String(server.port), version, scenario, topic],
    20_000,
  );
  if (result.code !== 0) throw new Error(`paho ${scenario} failed: ${result.stderr}`);
  return { topic, ...(JSON.parse(result.stdout) as Record<string, unknown>) };
}

describe.each(['31', '311', '5'])('Paho Python, MQTT version %s', (version) => {
  it('publishes and subscribes with QoS 0, 1 and 2, and gets retained messages', async () => {
    const { topic, live, retained } = (await paho(version, 'roundtrip')) as {
      topic: string;
      live: Array<Record<string, unknown>>;
      retained: Array<Record<string, unknown>>;
    };
    // One message per topic, and MQTT orders deliveries only within a topic: compare by topic.
    const byTopic = live
      .map((m) => [m.topic, m.payload, m.qos, m.retain])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    expect(byTopic).toEqual([
      [`${topic}/0`, 'qos0', 0, false],
      [`${topic}/1`, 'qos1', 1, false],
      [`${topic}/2`, 'qos2', 2, false],
      [`${topic}/retained`, 'kept', 1, false],
    ]);
    expect(retained.map((m) => [m.payload, m.retain])).toEqual([['kept', true]]);
  });

  it('resumes a persistent session with the messages queued while away', async () => {
    const result = await paho(version, 'session');
    expect(result).toMatchObject({ sessionPresent: true, messages: ['offline-0', 'offline-1', 'offline-2'] });
  });

  it('gets the will of a client that lost its connection', async () => {
    expect(await paho(version, 'will')).toMatchObject({ messages: ['paho is gone'] });
  });

  it('deals $share/ messages between group members and gives $queue/ every one', async () => {
    const { members, queue } = (await paho(version, 'shared')) as { members: string[][]; queue: string[] };
    // Round-robin: two each, and together all four once.
    expect(members.map((m) => m.length)).toEqual([2, 2]);
    expect(members.flat().sort()).toEqual(['job-0', 'job-1', 'job-2', 'job-3']);
    expect(queue).toEqual(['job-0', 'job-1', 'job-2', 'job-3']);
  });

  it('publishes a $delayed/ message after its delay, acknowledged at once', async () => {
    const { topic, messages, after } = (await paho(version, 'delayed')) as {
      topic: string;
      messages: string[][];
      after: number;
    };
    expect(messages).toEqual([[topic, 'later']]);
    expect(after).toBeGreaterThanOrEqual(1.9);
  });

  it('receives $SYS/broker/ topics on an explicit filter, not on #', async () => {
    const { topics, leaked } = (await paho(version, 'sys')) as { topics: string[][]; leaked: string[] };
    expect(topics.map(([t]) => t)).toEqual([
      '$SYS/broker/bytes/received',
      '$SYS/broker/bytes/sent',
      '$SYS/broker/clients/connected',
      '$SYS/broker/clients/disconnected',
      '$SYS/broker/clients/total',
      '$SYS/broker/messages/received',
      '$SYS/broker/messages/sent',
      '$SYS/broker/messages/stored',
      '$SYS/broker/retained messages/count',
      '$SYS/broker/subscriptions/count',
      '$SYS/broker/uptime',
      '$SYS/broker/version',
    ]);
    expect(topics.find(([t]) => t === '$SYS/broker/version')![1]).toMatch(/\d+\.\d+\.\d+/);
    expect(leaked).toEqual([]);
  });
});

describe('Paho Python, MQTT 5 properties', () => {
  it('passes user properties and content type through', async () => {
    const { messages } = (await paho('5', 'properties')) as { messages: Array<Record<string, unknown>> };
    expect(messages).toEqual([
      {
        topic: expect.any(String),
        payload: 'with properties',
        qos: 1,
        retain: false,
        user: [
          ['room', 'hall'],
          ['floor', '2'],
        ],
        contentType: 'text/plain',
      },
    ]);
  });
});
