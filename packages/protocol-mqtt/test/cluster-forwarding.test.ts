import { ErrorCode, RobustMQError, type BrokerCluster } from '@robustmq/core';
import { afterEach, describe, expect, it } from 'vitest';
import { linkedBrokers } from './helpers/in-process.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';
import { sessionKey } from '../src/session-log.js';

// Messages between two MQTT brokers in this process when a call between them fails: before it
// reached the other broker (a dropped connection), or after (its answer lost).

type Failure = 'before' | 'after';

/** Broker 1's view of the cluster, whose next calls of `mqtt.publish` fail as `failures` say. */
function failingCalls(member: BrokerCluster, failures: Failure[]): BrokerCluster {
  return {
    ...member,
    call: async <T>(id: number, method: string, body: unknown): Promise<T> => {
      const failure = method === 'mqtt.publish' ? failures.shift() : undefined;
      if (failure === 'before') throw new RobustMQError(ErrorCode.Unavailable, 'connection dropped');
      const answer = await member.call<T>(id, method, body);
      if (failure === 'after') throw new RobustMQError(ErrorCode.Timeout, 'answer lost');
      return answer;
    },
  };
}

describe('messages between brokers when a call fails', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients.splice(0));
    for (const stop of stops.splice(0)) await stop();
  });

  async function twoBrokers(failures: Failure[]) {
    const { a, b, storage } = await linkedBrokers((member) =>
      member.nodeId === 1 ? failingCalls(member, failures) : member,
    );
    stops.push(
      () => a.stop(),
      () => b.stop(),
    );
    return { a, b, storage };
  }

  /** A persistent subscriber to `orders/#` on broker 2, and a publisher on broker 1. */
  async function farAndNear({ a, b }: Awaited<ReturnType<typeof twoBrokers>>) {
    const subscriber = await connectWithInbox(b.port, { clientId: 'far', clean: false });
    clients.push(subscriber.client);
    await subscriber.client.subscribeAsync('orders/#', { qos: 1 });
    const publisher = await connectClient(a.port, { clientId: 'near' });
    clients.push(publisher);
    return { subscriber, publisher };
  }

  for (const [failures, what] of [
    [['before', 'before'], 'sends a message again until the other broker has it'],
    [['after'], 'gives a message sent again because its answer was lost once'],
  ] as const) {
    it(what, async () => {
      const { subscriber, publisher } = await farAndNear(await twoBrokers([...failures]));
      // Acknowledged only once broker 2 holds it.
      await publisher.publishAsync('orders/1', 'first', { qos: 1 });
      await publisher.publishAsync('orders/1', 'second', { qos: 1 });
      await subscriber.inbox.waitFor(2);
      await subscriber.inbox.settle(300);
      expect(subscriber.inbox.messages.map((m) => m.payload)).toEqual(['first', 'second']);
    });
  }

  it('delivers to a session whose log another broker deleted, and holds up nothing behind it', async () => {
    const brokers = await twoBrokers([]);
    const { subscriber, publisher } = await farAndNear(brokers);
    await publisher.publishAsync('orders/1', 'first', { qos: 1 });
    await subscriber.inbox.waitFor(1);
    // As a broker that ended its own stale copy of the session would; broker 2 still serves it.
    await brokers.storage.deleteShard('mqtt-sessions/' + sessionKey('far'));
    await publisher.publishAsync('orders/1', 'second', { qos: 1 });
    await publisher.publishAsync('orders/2', 'third', { qos: 1 });
    await subscriber.inbox.waitFor(3);
    expect(subscriber.inbox.messages.map((m) => m.payload)).toEqual(['first', 'second', 'third']);
  });
});
