import { afterEach, describe, expect, it } from 'vitest';
import { linkedBrokers } from './helpers/in-process.js';
import { connectClient, endAll, type MqttClient } from './helpers/mqttjs.js';

// `$exclusive/` subscriptions on two MQTT brokers in this process, on one meta store and storage:
// one session of the whole cluster holds each filter.

/** The reason code (MQTT 5) a SUBSCRIBE of `filter` got. */
function subscribed(client: MqttClient, filter: string): Promise<number> {
  return client.subscribeAsync(filter, { qos: 1 }).then(
    (granted) => granted[0]!.qos,
    (error: { packet: { granted: number[] } }) => error.packet.granted[0]!,
  );
}

describe('exclusive subscriptions across brokers', () => {
  const stops: Array<() => Promise<void>> = [];
  const clients: MqttClient[] = [];

  afterEach(async () => {
    await endAll(clients.splice(0));
    for (const stop of stops.splice(0)) await stop();
  });

  async function twoBrokers() {
    const { a, b, links, meta } = await linkedBrokers();
    let stoppedA = false;
    const stopA = async () => {
      if (stoppedA) return;
      stoppedA = true;
      links.remove(1);
      await a.stop();
    };
    stops.push(stopA, () => b.stop());
    return { a, b, stopA, links, meta };
  }

  async function client(port: number, clientId: string): Promise<MqttClient> {
    const connected = await connectClient(port, { clientId, protocolVersion: 5 });
    clients.push(connected);
    return connected;
  }

  it('refuses a filter held on the other broker until its session gives it up', async () => {
    const { a, b } = await twoBrokers();
    const holder = await client(a.port, 'holder');
    expect(await subscribed(holder, '$exclusive/alarms/#')).toBe(1);
    const other = await client(b.port, 'other');
    expect(await subscribed(other, '$exclusive/alarms/#')).toBe(0x97);
    // Others are not refused.
    expect(await subscribed(other, '$exclusive/alarms/other/#')).toBe(1);
    await holder.unsubscribeAsync('$exclusive/alarms/#');
    await new Promise((r) => setTimeout(r, 50));
    expect(await subscribed(other, '$exclusive/alarms/#')).toBe(1);
    expect(await subscribed(holder, '$exclusive/alarms/#')).toBe(0x97);
  });

  it('gives a filter whose holder is on a broker that is gone to another session', async () => {
    const { a, b, links } = await twoBrokers();
    const holder = await client(a.port, 'holder');
    expect(await subscribed(holder, '$exclusive/locks/door')).toBe(1);
    // Broker 1 counts as gone (as after a crash): its claim is left, not released.
    links.remove(1);
    const other = await client(b.port, 'other');
    expect(await subscribed(other, '$exclusive/locks/door')).toBe(1);
  });

  it('takes over a claim that a live broker no longer holds the filter for', async () => {
    const { b, meta } = await twoBrokers();
    // Left by a session of broker 1 that ended while its release could not be written.
    await meta.put('/mqtt/exclusive/' + encodeURIComponent('jobs/next'), Buffer.from('{"c":"ghost","n":1}'));
    const other = await client(b.port, 'other');
    expect(await subscribed(other, '$exclusive/jobs/next')).toBe(1);
  });
});
