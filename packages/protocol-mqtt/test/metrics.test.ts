import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LATENCY_SAMPLE } from '../src/metrics.js';
import { connectClient, endAll, Inbox, type MqttClient } from './helpers/mqttjs.js';
import { startServer, type MqttServer } from './helpers/server.js';

let server: MqttServer;

beforeAll(async () => {
  server = await startServer({ mqtt: ['sys_interval_seconds = 0'] });
});
afterAll(async () => {
  await server.stop();
});

/** The value of the metric line `name{...}` that has every one of `labels` (in any order). */
function value(text: string, name: string, labels: string): number | null {
  const wanted = labels.split(',');
  const line = text.split('\n').find((l) => {
    if (!l.startsWith(`${name}{`)) return false;
    const present = l.slice(name.length + 1, l.lastIndexOf('}')).split(',');
    return wanted.every((label) => present.includes(label));
  });
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('per-listener metrics', () => {
  it('counts connections, messages and bytes by protocol and listener, and samples delivery latency', async () => {
    const clients: MqttClient[] = [];
    try {
      const sub = await connectClient(server.port, { protocolVersion: 5, clientId: 'metrics-sub' });
      clients.push(sub);
      const inbox = new Inbox(sub);
      await sub.subscribeAsync('metrics/#', { qos: 1 });
      const pub = await connectClient(server.port, { protocolVersion: 4, clientId: 'metrics-pub' });
      clients.push(pub);
      const count = LATENCY_SAMPLE * 2;
      for (let i = 0; i < count; i++) await pub.publishAsync(`metrics/${i % 3}`, 'x'.repeat(10), { qos: 1 });
      await inbox.waitFor(count);

      const labels = 'protocol="mqtt",listener="tcp"';
      let text = '';
      const deadline = Date.now() + 5000;
      // Counters reach the registry once a second.
      while (value((text = await server.metrics()), 'robustmq_mqtt_messages_sent_total', labels) !== count) {
        if (Date.now() > deadline) throw new Error('messages sent not counted');
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(value(text, 'robustmq_mqtt_connections', labels)).toBe(2);
      expect(value(text, 'robustmq_mqtt_messages_received_total', labels)).toBe(count);
      expect(value(text, 'robustmq_mqtt_bytes_received_total', labels)).toBeGreaterThan(count * 10);
      expect(value(text, 'robustmq_mqtt_bytes_sent_total', labels)).toBeGreaterThan(count * 10);
      expect(value(text, 'robustmq_mqtt_delivery_latency_seconds_count', labels)).toBe(2);
      expect(value(text, 'robustmq_mqtt_delivery_latency_seconds_bucket', `le="60",${labels}`)).toBe(2);
      expect(text).toMatch(/robustmq_mqtt_messages_dropped_total/);

      await endAll(clients);
      const closedBy = Date.now() + 5000;
      while (value(await server.metrics(), 'robustmq_mqtt_connections', labels) !== 0) {
        if (Date.now() > closedBy) throw new Error('connections gauge not back to 0');
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await endAll(clients);
    }
  });
});
