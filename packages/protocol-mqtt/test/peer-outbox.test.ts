import {
  ErrorCode,
  RobustMQError,
  silentLogger,
  soloCluster,
  type BrokerCluster,
  type Logger,
} from '@robustmq/core';
import { describe, expect, it } from 'vitest';
import { MqttMetrics } from '../src/metrics.js';
import { MAX_BYTES_IN_FLIGHT, PeerOutbox, type ForwardedMessage } from '../src/peer-outbox.js';
import { TestMetrics } from './helpers/in-process.js';

// What one broker sends another: batched per turn of the event loop, bounded for QoS 0.

function message(payloadBytes: number, topic = 't'): ForwardedMessage {
  const m = {
    topic,
    payload: '',
    qos: 0 as const,
    retain: false,
    expiresAt: 0,
    publisherId: null,
    timestamp: 0,
  };
  return { m, p: Buffer.alloc(payloadBytes), o: 'mqtt' };
}

/** A cluster whose calls to broker 2 are recorded and answered when the test says. */
function recordingCluster() {
  const calls: Array<{ body: { b: ForwardedMessage[] }; answer: (error?: Error) => void }> = [];
  const cluster: BrokerCluster = {
    ...soloCluster(1),
    call: <T>(_id: number, _method: string, body: unknown) =>
      new Promise<T>((resolve, reject) =>
        calls.push({
          body: body as { b: ForwardedMessage[] },
          answer: (error) => (error ? reject(error) : resolve({} as T)),
        }),
      ),
  };
  return { cluster, calls };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('PeerOutbox', () => {
  it('sends what is routed in one turn in one call, in order, and answers each once it is held', async () => {
    const { cluster, calls } = recordingCluster();
    const outbox = new PeerOutbox(2, cluster, new MqttMetrics(new TestMetrics()), silentLogger);
    const first = outbox.add(message(10, 'a'), 1);
    const second = outbox.add(message(10, 'b'), 1);
    expect(outbox.add(message(10, 'c'), 0)).toBe(first);
    await turn();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body.b.map((m) => m.m.topic)).toEqual(['a', 'b', 'c']);
    let held = false;
    void second!.then(() => (held = true));
    await turn();
    expect(held).toBe(false);
    calls[0]!.answer();
    await first;
    expect(held).toBe(true);
  });

  it('drops QoS 0 while the other broker is behind, and keeps QoS 1 waiting', async () => {
    const { cluster, calls } = recordingCluster();
    const metrics = new TestMetrics();
    const mqttMetrics = new MqttMetrics(metrics);
    const outbox = new PeerOutbox(2, cluster, mqttMetrics, silentLogger);
    for (let i = 0; i < 8; i++) expect(outbox.add(message(MAX_BYTES_IN_FLIGHT / 8), 0)).not.toBeNull();
    await turn();
    expect(outbox.add(message(10), 0)).toBeNull();
    expect(outbox.add(message(10), 1)).not.toBeNull();
    mqttMetrics.flush({ sessions: 0, subscriptions: 0, retained: 0 });
    expect(metrics.get('robustmq_mqtt_messages_dropped_total', { reason: 'slow_peer' })).toBe(1);
    // Once the other broker answers, QoS 0 goes again.
    for (const call of calls) call.answer();
    await turn();
    await turn();
    expect(outbox.add(message(10), 0)).not.toBeNull();
  });

  it('counts what could not be sent and logs it once until the other broker is reached again', async () => {
    const { cluster, calls } = recordingCluster();
    const lines: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (_: unknown, msg: string) => void lines.push(msg),
      info: (_: unknown, msg: string) => void lines.push(msg),
    } as unknown as Logger;
    const metrics = new TestMetrics();
    const mqttMetrics = new MqttMetrics(metrics);
    const outbox = new PeerOutbox(2, cluster, mqttMetrics, logger);
    for (let round = 0; round < 3; round++) {
      const sent = outbox.add(message(10), 1);
      void outbox.add(message(10), 1);
      await turn();
      calls.at(-1)!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
      await sent;
    }
    const sent = outbox.add(message(10), 1);
    await turn();
    calls.at(-1)!.answer();
    await sent;
    mqttMetrics.flush({ sessions: 0, subscriptions: 0, retained: 0 });
    expect(metrics.get('robustmq_mqtt_messages_dropped_total', { reason: 'peer_unreachable' })).toBe(6);
    expect(lines).toEqual([
      'messages not forwarded to another broker (further failures are counted, not logged)',
      'messages reach another broker again',
    ]);
  });
});
