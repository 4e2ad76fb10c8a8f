import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Inbox } from './helpers/mqttjs.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { run, Watched } from './helpers/processes.js';
import {
  ADMIN_PASSWORD,
  freePort,
  startExampleBroker,
  startExampleJournal,
} from './helpers/example-cluster.js';
import type { MqttServer } from './helpers/server.js';

// Two stateless brokers on one journal node, started from the example a user starts them from:
// MQTT clients may connect to either. A message published on one reaches subscribers on both,
// a session follows its client from one broker to the other, and a broker killed with -9 has its
// sessions and wills taken over by the other.

/** A superuser's token for the admin API of `server`. */
async function adminToken(server: MqttServer): Promise<string> {
  const login = await fetch(`${server.httpUrl}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  return ((await login.json()) as { token: string }).token;
}

const startJournal = startExampleJournal;

/** Broker 2 or 3 with a binding of `meters/#` (again in `dir`, if given). */
function startBroker(nodeId: number, rpcPort: number, dir?: string): Promise<MqttServer> {
  return startExampleBroker(nodeId, rpcPort, {
    ...(dir === undefined ? {} : { dir }),
    flags: ['--set', 'mqtt.bindings=[{ filter = "meters/#", topic = "meters", partitions = 4 }]'],
  });
}

/** Waits until `broker` has logged, after its `since`-th log line, that the live brokers are `ids`. */
async function waitForBrokers(broker: MqttServer, ids: number[], since = 0): Promise<void> {
  const deadline = Date.now() + 10_000;
  const wanted = JSON.stringify(ids);
  while (
    !broker.logs
      .slice(since)
      .some(
        (line) => line.msg === 'brokers of the cluster changed' && JSON.stringify(line.brokers) === wanted,
      )
  ) {
    if (Date.now() > deadline) throw new Error(`the live brokers never became ${wanted}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Paho Python (Debian python3-paho-mqtt) publishing QoS 1 messages, MQTT 3.1.1. */
async function pahoPublish(port: number, topic: string, payloads: string[]): Promise<void> {
  const script = [
    'import sys, json',
    'import paho.mqtt.client as mqtt',
    'c = mqtt.Client(client_id="paho-publisher", protocol=mqtt.MQTTv311)',
    'c.connect("127.0.0.1", int(sys.argv[1]))',
    'c.loop_start()',
    'for p in json.loads(sys.argv[3]):',
    '    c.publish(sys.argv[2], p, qos=1).wait_for_publish()',
    'c.disconnect()',
    'c.loop_stop()',
  ].join('\n');
  const result = await run('/usr/bin/python3', ['-c', script, String(port), topic, JSON.stringify(payloads)]);
  if (result.code !== 0) throw new Error(`paho failed: ${result.stderr}`);
}

describe('MQTT across stateless brokers on one journal node', () => {
  let journal: MqttServer;
  let broker2: MqttServer;
  let broker3: MqttServer;
  let rpcPort: number;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    rpcPort = await freePort();
    journal = await startJournal(rpcPort);
    [broker2, broker3] = await Promise.all([startBroker(2, rpcPort), startBroker(3, rpcPort)]);
    await Promise.all([waitForBrokers(broker2, [2, 3]), waitForBrokers(broker3, [2, 3])]);
  }, 60_000);

  afterAll(async () => {
    await endAll(clients);
    await Promise.all([broker2?.stop(), broker3?.stop()]);
    await journal?.stop();
  });

  it('delivers what mosquitto_pub sends to one broker to mosquitto_sub on the other', async () => {
    // Line-buffered, so that -d's SUBACK line shows before the messages.
    const sub = new Watched('stdbuf', [
      '-oL',
      'mosquitto_sub',
      '-p',
      String(broker3.port),
      '-t',
      'plant/+/temp',
      '-q',
      '1',
      '-C',
      '3',
      '-F',
      '%t %p',
      '-d',
    ]);
    await sub.waitFor('received SUBACK');
    for (const [line, qos] of [
      ['a', '0'],
      ['b', '1'],
      ['c', '2'],
    ] as const) {
      const pub = await run('mosquitto_pub', [
        '-p',
        String(broker2.port),
        '-t',
        `plant/${line}/temp`,
        '-q',
        qos,
        '-m',
        `${line}=21.5`,
      ]);
      expect(pub.code).toBe(0);
    }
    const { code, stdout } = await sub.exited;
    expect(code).toBe(0);
    // Without -d's own lines, what remains is the messages.
    expect(stdout.split('\n').filter((l) => l.startsWith('plant/'))).toEqual([
      'plant/a/temp a=21.5',
      'plant/b/temp b=21.5',
      'plant/c/temp c=21.5',
    ]);
  });

  it('keeps MQTT 5 properties and retained messages across brokers', async () => {
    const publisher = await connectClient(broker2.port, { protocolVersion: 5, clientId: 'props-pub' });
    clients.push(publisher);
    const { client: live, inbox } = await connectWithInbox(broker3.port, {
      protocolVersion: 5,
      clientId: 'props-sub',
    });
    clients.push(live);
    await live.subscribeAsync('lab/#', { qos: 1 });
    await publisher.publishAsync('lab/door', 'open', {
      qos: 1,
      retain: true,
      properties: {
        userProperties: { site: 'north' },
        contentType: 'text/plain',
        responseTopic: 'lab/replies',
        correlationData: Buffer.from('c-1'),
        messageExpiryInterval: 600,
      },
    });
    const received = await inbox.at(0);
    expect(received.topic).toBe('lab/door');
    expect(received.payload).toBe('open');
    expect(received.packet.properties).toMatchObject({
      userProperties: { site: 'north' },
      contentType: 'text/plain',
      responseTopic: 'lab/replies',
      correlationData: Buffer.from('c-1'),
    });
    // A client subscribing later on the other broker gets the retained message, flagged.
    const late = await run('mosquitto_sub', [
      '-p',
      String(broker3.port),
      '-t',
      'lab/door',
      '-C',
      '1',
      '-v',
      '-W',
      '5',
    ]);
    expect(late.stdout.trim()).toBe('lab/door open');
    const { client: lateV5, inbox: lateInbox } = await connectWithInbox(broker3.port, { protocolVersion: 5 });
    clients.push(lateV5);
    await lateV5.subscribeAsync('lab/door', { qos: 1 });
    expect((await lateInbox.at(0)).packet.retain).toBe(true);
  });

  it('gives Kafka records produced through either broker to MQTT subscribers on both', async () => {
    const inboxes: Inbox[] = [];
    for (const broker of [broker2, broker3]) {
      const { client, inbox } = await connectWithInbox(broker.port, { clientId: `meters-${broker.port}` });
      clients.push(client);
      await client.subscribeAsync('meters/#', { qos: 1 });
      inboxes.push(inbox);
    }
    // kcat (librdkafka) sends each partition's records to its leader: some to each broker.
    const lines = Array.from({ length: 40 }, (_, i) => `meters/${i % 8}:reading-${i}`).join('\n');
    const produced = await run(
      '/usr/bin/kcat',
      ['-b', `127.0.0.1:${broker2.ports.get('kafka/tcp')}`, '-t', 'meters', '-P', '-K', ':'],
      15_000,
      lines,
    );
    expect(produced.code).toBe(0);
    for (const inbox of inboxes) {
      const got = (await inbox.waitFor(40, 10_000)).map((m) => `${m.topic} ${m.payload}`).sort();
      expect(got).toEqual(Array.from({ length: 40 }, (_, i) => `meters/${i % 8} reading-${i}`).sort());
    }
  });

  it('takes a session along when its client connects to the other broker (MQTT 5: 0x8E)', async () => {
    const first = await connectWithInbox(broker2.port, {
      protocolVersion: 5,
      clientId: 'roamer',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    clients.push(first.client);
    await first.client.subscribeAsync('roam/#', { qos: 1 });
    const disconnected = new Promise<number | undefined>((resolve) =>
      first.client.once('disconnect', (packet) => resolve(packet.reasonCode)),
    );

    const second = await connectWithInbox(broker3.port, {
      protocolVersion: 5,
      clientId: 'roamer',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    clients.push(second.client);
    expect(second.connack.sessionPresent).toBe(true);
    expect(await disconnected).toBe(0x8e);

    // The subscription came along: a message published on either broker reaches the new connection.
    await pahoPublish(broker2.port, 'roam/1', ['from-2']);
    await pahoPublish(broker3.port, 'roam/2', ['from-3']);
    const got = (await second.inbox.waitFor(2)).map((m) => `${m.topic} ${m.payload}`);
    expect(got.sort()).toEqual(['roam/1 from-2', 'roam/2 from-3']);
    expect(first.inbox.messages).toEqual([]);
  });

  it('misses nothing published on either broker while a session moves between them', async () => {
    const options = {
      protocolVersion: 5 as const,
      clientId: 'mover',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const first = await connectWithInbox(broker2.port, options);
    clients.push(first.client);
    await first.client.subscribeAsync('stream/#', { qos: 1 });
    const publishers = await Promise.all(
      [broker2, broker3, broker2, broker3].map((b, i) =>
        connectClient(b.port, { clientId: `streamer-${i}` }),
      ),
    );
    clients.push(...publishers);
    let running = true;
    const sent: string[] = [];
    const loops = publishers.map(async (publisher, i) => {
      for (let n = 0; running; n++) {
        const payload = `p${i}-${n}`;
        await publisher.publishAsync(`stream/${i}`, payload, { qos: 1 });
        sent.push(payload);
      }
    });
    await first.inbox.waitFor(200);
    const second = await connectWithInbox(broker3.port, options);
    clients.push(second.client);
    expect(second.connack.sessionPresent).toBe(true);
    await second.inbox.waitFor(200);
    running = false;
    await Promise.all(loops);

    // Every acknowledged message reaches the client, on one connection or the other; one that
    // comes twice was in flight when the first connection closed, and comes again flagged DUP.
    await second.inbox.settle(500);
    const all = [...first.inbox.messages, ...second.inbox.messages];
    const received = new Set(all.map((m) => m.payload));
    expect(sent.filter((p) => !received.has(p))).toEqual([]);
    const seen = new Set<string>();
    const unflaggedRepeats = all.filter((m) => {
      const repeat = seen.has(m.payload) && !m.packet.dup;
      seen.add(m.payload);
      return repeat;
    });
    expect(unflaggedRepeats.map((m) => m.payload)).toEqual([]);
  });

  it('keeps QoS 1 messages for an offline session of the other broker, delivered where it reconnects', async () => {
    const { client } = await connectWithInbox(broker3.port, {
      clientId: 'offline-3',
      clean: false,
    });
    await client.subscribeAsync('jobs/#', { qos: 1 });
    await client.endAsync();

    await pahoPublish(broker2.port, 'jobs/7', ['one', 'two', 'three']);

    const back = await connectWithInbox(broker2.port, { clientId: 'offline-3', clean: false });
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    const got = (await back.inbox.waitFor(3)).map((m) => m.payload);
    expect(got).toEqual(['one', 'two', 'three']);
    await back.inbox.settle(300);
    expect(back.inbox.messages).toHaveLength(3);
  });

  it('gives each message of a shared group to one member, wherever the members and publisher are', async () => {
    const memberOn3 = await connectWithInbox(broker3.port, { protocolVersion: 5, clientId: 'worker-3' });
    clients.push(memberOn3.client);
    await memberOn3.client.subscribeAsync('$share/workers/tasks/#', { qos: 1 });
    // A group with members only on broker 3: messages published on broker 2 go there, once
    // broker 2 has seen the group announced.
    const publisher = await connectClient(broker2.port, { clientId: 'tasks-pub' });
    clients.push(publisher);
    await untilReceived(memberOn3.inbox, () => publisher.publishAsync('tasks/probe', 'probe', { qos: 1 }));
    memberOn3.inbox.messages.length = 0;
    for (let i = 0; i < 10; i++) await publisher.publishAsync('tasks/a', `t${i}`, { qos: 1 });
    expect((await memberOn3.inbox.waitFor(10)).map((m) => m.payload)).toEqual(
      Array.from({ length: 10 }, (_, i) => `t${i}`),
    );

    // A member on broker 2 as well: each message reaches exactly one of the two.
    const memberOn2 = await connectWithInbox(broker2.port, { protocolVersion: 5, clientId: 'worker-2' });
    clients.push(memberOn2.client);
    await memberOn2.client.subscribeAsync('$share/workers/tasks/#', { qos: 1 });
    memberOn3.inbox.messages.length = 0;
    const publisherOn3 = await connectClient(broker3.port, { clientId: 'tasks-pub-3' });
    clients.push(publisherOn3);
    for (let i = 0; i < 20; i++) {
      await (i % 2 === 0 ? publisher : publisherOn3).publishAsync('tasks/b', `u${i}`, { qos: 1 });
    }
    await memberOn2.inbox.settle(500);
    const all = [...memberOn2.inbox.messages, ...memberOn3.inbox.messages].map((m) => m.payload).sort();
    expect(all).toEqual(Array.from({ length: 20 }, (_, i) => `u${i}`).sort());
  });

  it('lists the clients of both brokers in the admin API of either, and kicks one from the other', async () => {
    const client = await connectClient(broker3.port, { clientId: 'admin-listed', clean: false });
    clients.push(client);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    const token = await adminToken(broker2);
    const headers = { authorization: `Bearer ${token}` };
    const page = (await (
      await fetch(`${broker2.httpUrl}/api/v1/mqtt/clients?limit=1000`, { headers })
    ).json()) as {
      items: Array<{ id: string; broker: number }>;
    };
    expect(page.items.find((item) => item.id === 'admin-listed')).toMatchObject({ broker: 3 });
    const session = await fetch(`${broker2.httpUrl}/api/v1/mqtt/sessions/admin-listed`, { headers });
    expect(await session.json()).toMatchObject({ id: 'admin-listed', broker: 3 });
    const kicked = await fetch(`${broker2.httpUrl}/api/v1/mqtt/clients/admin-listed`, {
      method: 'DELETE',
      headers,
    });
    expect(kicked.status).toBe(204);
    await closed;
  });

  it("after kill -9 of a broker, the other publishes its clients' wills and serves their sessions", async () => {
    const watcher = await connectWithInbox(broker2.port, { clientId: 'will-watcher' });
    clients.push(watcher.client);
    await watcher.client.subscribeAsync('status/#', { qos: 1 });
    const doomed = await connectWithInbox(broker3.port, {
      protocolVersion: 5,
      clientId: 'sensor-9',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
      will: { topic: 'status/sensor-9', payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    await doomed.client.subscribeAsync('orders/#', { qos: 1 });
    doomed.client.stream.on('error', () => {});

    await broker3.kill();
    doomed.client.end(true);
    // Broker 2 counts broker 3 gone after the session timeout, takes its session over and
    // publishes the will of the client that lost its broker.
    const will = await watcher.inbox.at(0, 10_000);
    expect(will).toMatchObject({ topic: 'status/sensor-9', payload: 'gone' });

    // The session is served on broker 2 now: it keeps QoS 1 messages for the client.
    await pahoPublish(broker2.port, 'orders/1', ['after-the-crash']);
    const back = await connectWithInbox(broker2.port, {
      protocolVersion: 5,
      clientId: 'sensor-9',
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    expect((await back.inbox.at(0)).payload).toBe('after-the-crash');

    // Broker 3 comes back on its data: it does not serve the sessions broker 2 took over, so
    // a message published on it reaches the client once, and no will goes out again.
    const since = broker2.logs.length;
    broker3 = await startBroker(3, rpcPort, broker3.dir);
    await waitForBrokers(broker2, [2, 3], since);
    await pahoPublish(broker3.port, 'orders/2', ['after-the-restart']);
    expect((await back.inbox.at(1)).payload).toBe('after-the-restart');
    await back.inbox.settle(500);
    expect(back.inbox.messages.map((m) => m.payload)).toEqual(['after-the-crash', 'after-the-restart']);
    expect(watcher.inbox.messages.map((m) => m.payload)).toEqual(['gone']);
    // It holds no session: broker 2 serves all of those broker 3 held before the crash.
    // (Its gauges are flushed once a second.)
    await new Promise((r) => setTimeout(r, 1200));
    const held = (await broker3.metrics()).split('\n').find((l) => l.startsWith('robustmq_mqtt_sessions'));
    expect(held).toMatch(/ 0$/);
  }, 30_000);

  it('loses no acknowledged message for the sessions of a broker killed before it had them', async () => {
    const away = await connectWithInbox(broker3.port, { clientId: 'away-on-3', clean: false });
    await away.client.subscribeAsync('alerts/#', { qos: 1 });
    await away.client.endAsync();

    // Broker 3 stops answering (SIGSTOP), then is killed: what broker 2 was sending it never arrives.
    broker3.child.kill('SIGSTOP');
    const publisher = await connectClient(broker2.port, { clientId: 'alert-publisher' });
    clients.push(publisher);
    const sent = Array.from({ length: 20 }, (_, i) => `alert ${i}`);
    const acknowledged = sent.map((text) => publisher.publishAsync('alerts/boiler', text, { qos: 1 }));
    await new Promise((r) => setTimeout(r, 300));
    await broker3.kill();
    // Acknowledged once broker 2 counts broker 3 gone and holds them in the session it takes over.
    await Promise.all(acknowledged);

    const back = await connectWithInbox(broker2.port, { clientId: 'away-on-3', clean: false });
    clients.push(back.client);
    expect(back.connack.sessionPresent).toBe(true);
    await back.inbox.waitFor(20, 10_000);
    await back.inbox.settle(300);
    expect(back.inbox.messages.map((m) => m.payload)).toEqual(sent);
  }, 30_000);
});

/** Sends with `send` every 100 ms until `inbox` has a message (another broker learning of a group). */
async function untilReceived(inbox: Inbox, send: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (inbox.messages.length === 0) {
    if (Date.now() > deadline) throw new Error('nothing arrived');
    await send();
    await inbox.settle(100);
  }
}
