import { describe, expect, it } from 'vitest';
import { ErrorCode, InProcessBrokers, rendezvousOwner as ownerOf, soloCluster } from '../src/index.js';

describe('who owns a key', () => {
  it('moves only the keys a new broker takes', () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `partition:orders/${i}`);
    const before = keys.map((k) => ownerOf(k, [1, 2, 3]));
    const after = keys.map((k) => ownerOf(k, [1, 2, 3, 4]));
    const moved = keys.filter((_, i) => before[i] !== after[i]);
    expect(moved.every((k) => ownerOf(k, [1, 2, 3, 4]) === 4)).toBe(true);
    // About a quarter move to the new broker; each broker keeps a fair share.
    expect(moved.length).toBeGreaterThan(150);
    expect(moved.length).toBeLessThan(350);
    for (const id of [1, 2, 3]) {
      const share = before.filter((owner) => owner === id).length;
      expect(share).toBeGreaterThan(250);
    }
    expect(ownerOf('anything', [])).toBeNull();
    expect(ownerOf('anything', [7])).toBe(7);
  });
});

describe('the cluster of a broker alone', () => {
  it('is itself, keeps what it announces and has nobody to call', async () => {
    const alone = soloCluster(5);
    expect(alone.brokers()).toEqual([5]);
    expect(alone.brokers('kafka')).toEqual([5]);
    expect(alone.peers()).toEqual([]);
    alone.announce('kafka', { listeners: {} });
    expect(alone.announced(5, 'kafka')).toEqual({ listeners: {} });
    alone.announce('kafka', undefined);
    expect(alone.announced(5, 'kafka')).toBeUndefined();
    await expect(alone.call(6, 'x', {})).rejects.toMatchObject({ code: ErrorCode.Unavailable });
  });
});

describe('brokers in one process', () => {
  it('see what each announced, call each other, tell of changes and can hold calls back', async () => {
    const brokers = new InProcessBrokers();
    const one = brokers.member(1);
    const two = brokers.member(2);
    let changes = 0;
    one.onChange(() => changes++);
    await new Promise((r) => setImmediate(r));
    expect(changes).toBe(1);
    two.announce('amqp', { port: 5672 });
    await new Promise((r) => setImmediate(r));
    expect(changes).toBe(2);
    expect(one.brokers()).toEqual([1, 2]);
    expect(one.brokers('amqp')).toEqual([2]);
    expect(one.peers('amqp')).toEqual([2]);
    expect(one.announced(2, 'amqp')).toEqual({ port: 5672 });

    two.handle('echo', (body) => Promise.resolve({ echoed: body }));
    expect(await one.call(2, 'echo', 'hi')).toEqual({ echoed: 'hi' });
    await expect(one.call(2, 'missing', null)).rejects.toMatchObject({ code: ErrorCode.Unavailable });

    let letGo!: () => void;
    brokers.hold('echo', new Promise<void>((resolve) => (letGo = resolve)));
    let answered = false;
    const held = one.call(2, 'echo', 'later').then(() => (answered = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    letGo();
    await held;
    brokers.hold(null);

    brokers.remove(2);
    await new Promise((r) => setImmediate(r));
    expect(changes).toBe(3);
    expect(one.brokers()).toEqual([1]);
    await expect(one.call(2, 'echo', 'gone')).rejects.toMatchObject({ code: ErrorCode.Unavailable });
  });
});

describe('calls between brokers in one process', () => {
  it('fail with TIMEOUT past their deadline when the other broker does not answer', async () => {
    const brokers = new InProcessBrokers();
    const one = brokers.member(1);
    const two = brokers.member(2);
    two.handle('hangs', () => new Promise(() => {}));
    two.handle('answers', () => Promise.resolve({ ok: true }));
    await expect(one.call(2, 'hangs', {}, { deadlineMs: 50 })).rejects.toMatchObject({
      code: ErrorCode.Timeout,
    });
    expect(await one.call(2, 'answers', {}, { deadlineMs: 50 })).toEqual({ ok: true });
  });
});
