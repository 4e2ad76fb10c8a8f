import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { RawClient } from './helpers/raw-client.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;

beforeAll(async () => {
  server = await startServer({
    mqtt: ['max_outgoing_bytes = 65536', 'max_queued_messages = 100', 'max_inflight_messages = 10'],
  });
});
afterAll(async () => {
  await server.stop();
});

describe('a subscriber that stops reading', () => {
  it('costs only itself: others get every message; its QoS 0 is dropped and QoS 1 bounded, both counted', async () => {
    const stalled = await RawClient.connected(server.port, 4, 'stalled');
    stalled.send({
      cmd: 'subscribe',
      messageId: 1,
      subscriptions: [
        { topic: 'flood/q0', qos: 0 },
        { topic: 'flood/q1', qos: 1 },
      ],
    });
    expect((await stalled.next()).cmd).toBe('suback');
    stalled.socket.pause();

    const fast = await connectClient(server.port, { clientId: 'fast' });
    const inbox = new Inbox(fast);
    await fast.subscribeAsync({ 'flood/q0': { qos: 0 }, 'flood/q1': { qos: 1 } });
    const publisher: MqttClient = await connectClient(server.port, { clientId: 'flooder' });

    // 30 MB of QoS 0: far more than the socket buffers between the broker and the stalled client.
    // In bursts the fast client's socket holds, so that it stays fast on a busy machine too (QoS 0
    // beyond max_outgoing_bytes is dropped for any client that falls behind).
    const payload = Buffer.alloc(1024, 0x61);
    const total0 = 30_000;
    for (let i = 0; i < total0; i += 50) {
      for (let j = 0; j < 50; j++) publisher.publish('flood/q0', payload, { qos: 0 });
      await inbox.waitFor(i + 50, 30_000);
    }
    const total1 = 500;
    // In bursts the fast client's own queue (100) absorbs.
    for (let i = 0; i < total1; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () => publisher.publishAsync('flood/q1', payload, { qos: 1 })),
      );
      await inbox.waitFor(total0 + i + 50);
    }
    await inbox.waitFor(total0 + total1, 30_000);
    expect(inbox.messages.filter((m) => m.topic === 'flood/q1')).toHaveLength(total1);

    await server.waitForMetric(/robustmq_mqtt_messages_dropped_total\{reason="slow_client",node="1"\} [1-9]/);
    await server.waitForMetric(/robustmq_mqtt_messages_dropped_total\{reason="queue_full",node="1"\} [1-9]/);
    // Logged once for the run of drops, not once per message.
    const queueFull = server.logs.filter(
      (l) => l.msg === 'queue full: messages for this client are being dropped',
    );
    expect(queueFull.map((l) => [l.clientId, l.queued])).toEqual([['stalled', 100]]);

    // Reading again, the stalled client gets what was kept for it and is still connected.
    stalled.socket.resume();
    const first = await stalled.next(10_000);
    expect(first.cmd).toBe('publish');
    expect(stalled.isClosed).toBe(false);
    stalled.close();
    await endAll([fast, publisher]);
  }, 120_000);
});
