import { afterEach, describe, expect, it } from 'vitest';
import type { Inbox } from './helpers/mqttjs.js';
import { connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

/** Wills and delayed wills of persistent sessions across `kill -9` and a restart. */

let server: MqttServer | null = null;
let clients: MqttClient[] = [];
let raws: RawClient[] = [];
let seq = 0;
const unique = (what: string) => `${what}-${++seq}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await endAll(clients);
  clients = [];
  for (const raw of raws) raw.close();
  raws = [];
  await server?.stop();
  server = null;
});

async function killAndRestart(): Promise<MqttServer> {
  const dir = server!.dir;
  await server!.kill();
  server = await startServer({ dir });
  return server;
}

/** A persistent MQTT 5 subscriber to `topic` (its session keeps what arrives while it is away). */
async function watcher(clientId: string, topic?: string): Promise<{ client: MqttClient; inbox: Inbox }> {
  const { client, inbox } = await connectWithInbox(server!.port, {
    protocolVersion: 5,
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: 600 },
  });
  clients.push(client);
  if (topic !== undefined) await client.subscribeAsync(topic, { qos: 1 });
  return { client, inbox };
}

/** A raw client holding a will, in a persistent session. */
async function willHolder(
  version: 4 | 5,
  clientId: string,
  topic: string,
  payload: string,
  props: { willDelayInterval?: number; sessionExpiryInterval?: number } = {},
): Promise<RawClient> {
  const raw = await RawClient.connected(server!.port, version, clientId, {
    clean: false,
    will: {
      topic,
      payload: Buffer.from(payload),
      qos: 1,
      retain: false,
      ...(props.willDelayInterval === undefined
        ? {}
        : { properties: { willDelayInterval: props.willDelayInterval } }),
    },
    ...(version === 5 ? { properties: { sessionExpiryInterval: props.sessionExpiryInterval ?? 300 } } : {}),
  });
  raws.push(raw);
  return raw;
}

describe('wills of persistent sessions across kill -9', () => {
  it('a delayed will whose client dropped before the crash is published when its delay has passed', async () => {
    server = await startServer();
    const topic = unique('will/delayed');
    // Subscribed before the crash, so the will reaches it whether it is due before or after start.
    const watchId = unique('watch');
    const first = await watcher(watchId, topic);
    await first.client.endAsync();
    const holder = await willHolder(5, unique('holder'), topic, 'gone for good', { willDelayInterval: 3 });
    holder.close();
    const droppedAt = Date.now();
    await holder.closed;
    // The session record (with the held will) is written when the connection goes.
    await sleep(300);
    await killAndRestart();
    const { inbox } = await watcher(watchId);
    const will = await inbox.at(0, 15_000);
    expect(will.payload).toBe('gone for good');
    // Not before its delay, counted from when the client went away (the node was down meanwhile).
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(3000);
  }, 30_000);

  it('a will whose session expired while the node was down is published at start', async () => {
    server = await startServer();
    const topic = unique('will/expired');
    const watchId = unique('watch');
    const first = await watcher(watchId, topic);
    await first.client.endAsync();
    const holder = await willHolder(5, unique('holder'), topic, 'session over', {
      willDelayInterval: 3600,
      sessionExpiryInterval: 1,
    });
    holder.close();
    await holder.closed;
    await sleep(300);
    await server.kill();
    // Down for longer than the session expiry.
    await sleep(1500);
    server = await startServer({ dir: server.dir });
    const { inbox } = await watcher(watchId);
    expect((await inbox.at(0, 10_000)).payload).toBe('session over');
  }, 30_000);

  it('a client connected at the crash counts as gone at restart; a clean DISCONNECT leaves no will', async () => {
    server = await startServer();
    const topic = unique('will/crash');
    const watchId = unique('watch');
    const first = await watcher(watchId, `${topic}/#`);
    await first.client.endAsync();
    await willHolder(4, unique('v3-holder'), `${topic}/crashed`, 'lost at the crash');
    const polite = await willHolder(5, unique('polite'), `${topic}/polite`, 'never sent');
    polite.send({ cmd: 'disconnect', reasonCode: 0 });
    await polite.closed;
    await sleep(300);
    await killAndRestart();
    const { inbox } = await watcher(watchId);
    expect((await inbox.at(0, 10_000)).topic).toBe(`${topic}/crashed`);
    expect(await inbox.settle(500)).toHaveLength(1);
  }, 30_000);

  it('a client back within the delay after the restart cancels its stored will', async () => {
    server = await startServer();
    const topic = unique('will/back');
    const holderId = unique('holder');
    const holder = await willHolder(5, holderId, topic, 'should not appear', { willDelayInterval: 8 });
    holder.close();
    const droppedAt = Date.now();
    await holder.closed;
    await sleep(300);
    await killAndRestart();
    const { inbox } = await watcher(unique('watch'), topic);
    const back = await RawClient.connected(server.port, 5, holderId, {
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    raws.push(back);
    // Watch until well past the delay.
    expect(await inbox.settle(Math.max(0, droppedAt + 10_000 - Date.now()))).toHaveLength(0);
  }, 30_000);
});
