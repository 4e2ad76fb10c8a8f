import { InProcessBrokers, type MetaStore, type StorageEngine } from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryMeta, startInProcess } from './helpers/in-process.js';
import { Mosquitto } from './helpers/mosquitto.js';
import { connectClient, connectWithInbox, endAll, type MqttClient } from './helpers/mqttjs.js';

// Two RobustMQ brokers in this process on one meta store and one storage, both with the same
// bridge to a real Mosquitto: one of them runs it, the other takes it when that one stops.

const REMOTE_CLIENT_ID = 'cluster-bridge';

let mosquitto: Mosquitto | undefined;
const clients: MqttClient[] = [];
const stops: Array<() => Promise<void>> = [];

afterAll(async () => {
  await endAll(clients);
  for (const stop of stops) await stop();
  await mosquitto?.remove();
});

/** Mosquitto's log lines of a connection of the bridge's remote client. */
const bridgeConnects = () =>
  mosquitto!.log.split('\n').filter((line) => line.includes(`as ${REMOTE_CLIENT_ID} `)).length;

async function broker(
  nodeId: number,
  links: InProcessBrokers,
  shared: { meta: MetaStore; storage: StorageEngine },
) {
  const started = await startInProcess(
    {
      bridges: [
        {
          name: 'cloud',
          address: `127.0.0.1:${mosquitto!.open}`,
          remote_client_id: REMOTE_CLIENT_ID,
          restart_seconds: 1,
          topics: [{ pattern: 'out/#', direction: 'out', qos: 1, remote_prefix: 'site/' }],
        },
      ],
    },
    { ...shared, cluster: links.member(nodeId) },
  );
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await started.stop();
    links.remove(nodeId);
  };
  stops.push(stop);
  await started.plugin.listening([{ name: 'tcp', transport: 'tcp', host: '127.0.0.1', port: started.port }]);
  return { nodeId, port: started.port, stop };
}

describe('a bridge configured on two brokers of a cluster', () => {
  it('runs on one of them only, carrying what either publishes once', async () => {
    mosquitto = await Mosquitto.create();
    const remote = await connectWithInbox(mosquitto.open, { protocolVersion: 5 });
    clients.push(remote.client);
    await remote.client.subscribeAsync('site/#', { qos: 1 });

    const links = new InProcessBrokers();
    const shared = { meta: memoryMeta(), storage: new MemoryStorageEngine() };
    const brokers = [await broker(1, links, shared), await broker(2, links, shared)];
    await expect.poll(() => bridgeConnects(), { timeout: 5000 }).toBe(1);

    // Published on either broker, an "out" message reaches the remote once.
    const publishers = await Promise.all(brokers.map((b) => connectClient(b.port, { protocolVersion: 5 })));
    clients.push(...publishers);
    // The bridge's local subscription is made right after it connects.
    await expect
      .poll(
        async () => {
          await publishers[0]!.publishAsync('out/probe', 'probe', { qos: 1 });
          return remote.inbox.messages.length;
        },
        { timeout: 5000, interval: 200 },
      )
      .toBeGreaterThan(0);
    await remote.inbox.settle(300);
    remote.inbox.messages.length = 0;
    await publishers[0]!.publishAsync('out/a', 'from broker 1', { qos: 1 });
    await publishers[1]!.publishAsync('out/b', 'from broker 2', { qos: 1 });
    const before = await remote.inbox.waitFor(2);
    expect((await remote.inbox.settle(300)).map((m) => m.payload).sort()).toEqual([
      'from broker 1',
      'from broker 2',
    ]);
    expect(before.map((m) => m.topic).sort()).toEqual(['site/out/a', 'site/out/b']);
    // Neither took the remote session from the other.
    expect(bridgeConnects()).toBe(1);
    expect(mosquitto.log).not.toMatch(/already connected, closing old connection/);
  }, 20_000);
});
