import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  freePort,
  SESSION_TIMEOUT_MS,
  startExampleBroker,
  startExampleJournal,
} from './helpers/example-cluster.js';
import type { MqttServer } from './helpers/server.js';

// QoS 2 subscribers whose broker is killed with -9 under traffic: each keeps its session and its
// client state, reconnecting to the other broker. What the publisher had acknowledged (PUBCOMP)
// reaches each subscriber, and exactly once: a subscriber that got PUBREL has handed the message
// on and forgotten it, so the broker taking its session over must not send the message again as
// new. The publisher is on the other broker, or on the killed one with the subscribers: then it
// sends again what it had no PUBREC for, which must be routed once, neither lost nor doubled.

const SUBSCRIBERS = 6;

/** Broker 2 or 3, keeping every message for offline sessions (the default bound would drop some). */
const startBroker = (nodeId: number, rpcPort: number) =>
  startExampleBroker(nodeId, rpcPort, { flags: ['--set', 'mqtt.max_queued_messages=1000000'] });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, failing with `what` after `timeoutMs`. */
async function until(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('QoS 2 across kill -9 of brokers', () => {
  let journal: MqttServer | undefined;
  const brokers = new Map<number, MqttServer>();
  const clients: MqttClient[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.end(true);
    await Promise.all([...brokers.values()].map((b) => b.stop('SIGKILL')));
    brokers.clear();
    await journal?.stop('SIGKILL');
    journal = undefined;
  }, 20_000);

  it.each([
    { where: 'on the other broker', publisherOn: 2 },
    { where: 'on the killed broker', publisherOn: 3 },
  ])(
    'gives every subscriber each message the publisher $where had acknowledged, once',
    async ({ publisherOn }) => {
      const rpcPort = await freePort();
      journal = await startExampleJournal(rpcPort);
      const [two, three] = await Promise.all([startBroker(2, rpcPort), startBroker(3, rpcPort)]);
      brokers.set(2, two);
      brokers.set(3, three);
      const mqttPorts = new Map([
        [2, two.port],
        [3, three.port],
      ]);
      const bothLive = (line: Record<string, unknown>) =>
        line.msg === 'brokers of the cluster changed' && JSON.stringify(line.brokers) === '[2,3]';
      await Promise.all([two.waitForLog(bothLive, 10_000), three.waitForLog(bothLive, 10_000)]);

      // Each client starts on `first` and moves to the other broker when it loses its own; the same
      // client object throughout, so its QoS 2 state (ids received and not yet released) goes along.
      const connect = async (clientId: string, first: number): Promise<MqttClient> => {
        const order = first === 3 ? [3, 2] : [2, 3];
        const client = mqtt.connect({
          servers: order.map((id) => ({ host: '127.0.0.1', port: mqttPorts.get(id)! })),
          clientId,
          clean: false,
          protocolVersion: 5,
          properties: { sessionExpiryInterval: 600 },
          // After the session timeout: the broker left then has taken the session over.
          reconnectPeriod: SESSION_TIMEOUT_MS + 1000,
          connectTimeout: 5000,
        });
        client.on('error', () => {});
        clients.push(client);
        await new Promise((resolve) => client.once('connect', resolve));
        return client;
      };

      const received = new Map<string, string[]>();
      for (let i = 0; i < SUBSCRIBERS; i++) {
        const name = `subscriber-${i}`;
        const inbox: string[] = [];
        received.set(name, inbox);
        const subscriber = await connect(name, 3);
        subscriber.on('message', (_topic, payload) => inbox.push(payload.toString()));
        await subscriber.subscribeAsync('ledger/#', { qos: 2 });
      }

      const publisher = await connect('ledger-writer', publisherOn);
      const acknowledged: string[] = [];
      let publishing = true;
      let next = 0;
      const publishing$ = (async () => {
        while (publishing) {
          const values = Array.from({ length: 10 }, () => `entry-${next++}`);
          await Promise.all(
            values.map((value) =>
              publisher.publishAsync('ledger/1', value, { qos: 2 }).then(
                () => acknowledged.push(value),
                () => {},
              ),
            ),
          );
        }
      })();

      await until('traffic before the kill', () => acknowledged.length >= 1000, 30_000);
      await sleep(Math.random() * 500);
      await three.kill();
      const since = acknowledged.length;
      await until('traffic after the kill', () => acknowledged.length >= since + 1000, 30_000);
      publishing = false;
      await publishing$;

      for (const [name, inbox] of received) {
        const got = new Set<string>();
        const twice: string[] = [];
        let counted = 0;
        const count = () => {
          for (; counted < inbox.length; counted++) {
            const value = inbox[counted]!;
            if (got.has(value)) twice.push(value);
            got.add(value);
          }
          return acknowledged.every((value) => got.has(value));
        };
        // The verdict comes from the assertions below, with what arrived by then.
        await until(`${name} to have every acknowledged message`, count, 30_000).catch(() => undefined);
        await sleep(300);
        count();
        expect(
          acknowledged.filter((value) => !got.has(value)),
          `${name}: acknowledged, not delivered`,
        ).toEqual([]);
        expect(twice, `${name}: delivered twice`).toEqual([]);
      }
    },
    90_000,
  );
});
