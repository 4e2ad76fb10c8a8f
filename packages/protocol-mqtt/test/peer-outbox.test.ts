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
import {
  MAX_BYTES_IN_FLIGHT,
  mayBeLive,
  PeerOutbox,
  type ForwardedBatch,
  type ForwardedMessage,
} from '../src/peer-outbox.js';
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
  const calls: Array<{ body: ForwardedBatch; answer: (error?: Error) => void }> = [];
  const cluster: BrokerCluster = {
    ...soloCluster(1),
    call: <T>(_id: number, _method: string, body: unknown) =>
      new Promise<T>((resolve, reject) =>
        calls.push({
          body: body as ForwardedBatch,
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
    const outbox = new PeerOutbox(
      2,
      cluster,
      new MqttMetrics(new TestMetrics()),
      silentLogger,
      '1.a',
      () => true,
      unexpectedHandOver,
    );
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
    const outbox = new PeerOutbox(
      2,
      cluster,
      mqttMetrics,
      silentLogger,
      '1.a',
      () => true,
      unexpectedHandOver,
    );
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

  it('sends again, in order, what the other broker did not answer while it is live, and logs it once', async () => {
    const { cluster, calls } = recordingCluster();
    const lines: string[] = [];
    const logger = {
      ...silentLogger,
      warn: (_: unknown, msg: string) => void lines.push(msg),
      info: (_: unknown, msg: string) => void lines.push(msg),
    } as unknown as Logger;
    const outbox = new PeerOutbox(
      2,
      cluster,
      new MqttMetrics(new TestMetrics()),
      logger,
      '1.a',
      () => true,
      unexpectedHandOver,
    );
    const first = outbox.add(message(10, 'a'), 1)!;
    await turn();
    const second = outbox.add(message(10, 'b'), 1)!;
    await turn();
    expect(calls.map((c) => [c.body.s, c.body.c])).toEqual([
      [0, '1.a'],
      [1, '1.a'],
    ]);
    let answered = 0;
    void first.then(() => answered++);
    void second.then(() => answered++);
    calls[0]!.answer(new RobustMQError(ErrorCode.Timeout, 'no answer'));
    calls[1]!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
    // A third, routed while the first two wait, waits behind them.
    const third = outbox.add(message(10, 'c'), 1)!;
    void third.then(() => answered++);
    await until(() => calls.length === 3);
    expect(calls[2]!.body.s).toBe(0);
    calls[2]!.answer(new RobustMQError(ErrorCode.Unavailable, 'still down'));
    await until(() => calls.length === 4);
    expect(calls[3]!.body.s).toBe(0);
    calls[3]!.answer();
    await until(() => calls.length === 5);
    expect(calls[4]!.body.s).toBe(1);
    expect(answered).toBe(1);
    calls[4]!.answer();
    await until(() => calls.length === 6);
    expect(calls[5]!.body.s).toBe(2);
    expect(calls[5]!.body.b.map((m) => m.m.topic)).toEqual(['c']);
    calls[5]!.answer();
    await third;
    await turn();
    expect(answered).toBe(3);
    expect(lines).toEqual([
      'messages not forwarded to another broker yet; sending them again while it is live',
      'messages reach another broker again',
    ]);
  });

  it('hands what is not answered to the brokers taking the sessions over once the other broker is gone', async () => {
    const { cluster, calls } = recordingCluster();
    const metrics = new TestMetrics();
    const mqttMetrics = new MqttMetrics(metrics);
    let live = true;
    const handed: string[][] = [];
    let release: () => void = () => {};
    const outbox = new PeerOutbox(
      2,
      cluster,
      mqttMetrics,
      silentLogger,
      '1.a',
      () => live,
      (messages) => {
        handed.push(messages.map((m) => m.m.topic));
        return new Promise<void>((resolve) => (release = resolve));
      },
    );
    const sent = outbox.add(message(10, 'a'), 1)!;
    void outbox.add(message(10, 'b'), 1);
    await turn();
    live = false;
    calls[0]!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
    await until(() => handed.length > 0);
    expect(handed).toEqual([['a', 'b']]);
    // The publisher waits until they are held where the sessions went.
    let settled = false;
    void sent.then(() => (settled = true));
    await turn();
    expect(settled).toBe(false);
    release();
    await sent;
    expect(calls).toHaveLength(1);
    mqttMetrics.flush({ sessions: 0, subscriptions: 0, retained: 0 });
    expect(metrics.get('robustmq_mqtt_messages_dropped_total', { reason: 'peer_unreachable' })).toBe(0);
  });

  it('keeps what is not answered while this broker is cut off from the others, and sends it once it sees them', async () => {
    const { cluster, calls } = recordingCluster();
    let live: readonly number[] = [1, 2];
    cluster.brokers = () => live;
    cluster.peers = () => live.filter((id) => id !== 1);
    const handed: ForwardedMessage[][] = [];
    const outbox = new PeerOutbox(
      2,
      cluster,
      new MqttMetrics(new TestMetrics()),
      silentLogger,
      '1.a',
      () => mayBeLive(cluster, 2, 'mqtt'),
      (messages) => {
        handed.push(messages);
        return Promise.resolve();
      },
    );
    const sent = outbox.add(message(10, 'a'), 1)!;
    await turn();
    // The meta service is out of reach: this broker sees no broker live, itself included.
    live = [];
    calls[0]!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
    for (let round = 1; round <= 2; round++) {
      await until(() => calls.length > round);
      expect(handed).toEqual([]);
      calls[round]!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
    }
    // Back, and broker 2 with it: the message goes to it, not to anyone taking its sessions over.
    live = [1, 2];
    await until(() => calls.length > 3);
    calls[3]!.answer();
    await sent;
    expect(calls[3]!.body.b.map((m) => m.m.topic)).toEqual(['a']);
    expect(handed).toEqual([]);
  });

  it('drops and counts them only when they cannot be handed on', async () => {
    const { cluster, calls } = recordingCluster();
    const metrics = new TestMetrics();
    const mqttMetrics = new MqttMetrics(metrics);
    let live = true;
    const outbox = new PeerOutbox(
      2,
      cluster,
      mqttMetrics,
      silentLogger,
      '1.a',
      () => live,
      () => Promise.reject(new RobustMQError(ErrorCode.Unavailable, 'no broker left')),
    );
    const sent = outbox.add(message(10), 1)!;
    void outbox.add(message(10), 1);
    await turn();
    live = false;
    calls[0]!.answer(new RobustMQError(ErrorCode.Unavailable, 'down'));
    await sent;
    mqttMetrics.flush({ sessions: 0, subscriptions: 0, retained: 0 });
    expect(metrics.get('robustmq_mqtt_messages_dropped_total', { reason: 'peer_unreachable' })).toBe(2);
  });
});

/** For outboxes whose other broker stays live: nothing is handed on. */
function unexpectedHandOver(): Promise<void> {
  throw new Error('messages handed on while the other broker is live');
}

async function until(done: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
