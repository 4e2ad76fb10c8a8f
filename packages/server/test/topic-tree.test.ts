import { describe, expect, it } from 'vitest';
import { silentLogger, type Message, type Logger } from '@robustmq/core';
import { TopicTree } from '../src/router/topic-tree.js';

const message = (topic: string): Message => ({
  topic,
  key: null,
  payload: Buffer.from(topic),
  headers: [],
  timestamp: 0,
});

function received(tree: TopicTree, filter: string): string[] {
  const got: string[] = [];
  tree.subscribe(filter, (m) => got.push(m.topic));
  return got;
}

describe('TopicTree', () => {
  it('routes by exact levels and wildcards', () => {
    const tree = new TopicTree(silentLogger);
    const exact = received(tree, 'a/b');
    const plus = received(tree, 'a/+');
    const hash = received(tree, 'a/#');
    const all = received(tree, '#');
    const mid = received(tree, '+/b/+');
    for (const topic of ['a', 'a/b', 'a/c', 'a/b/c', 'x/b/y', '$SYS/a'])
      tree.publish(message(topic), { protocol: 't' });
    expect(exact).toEqual(['a/b']);
    expect(plus).toEqual(['a/b', 'a/c']);
    expect(hash).toEqual(['a', 'a/b', 'a/c', 'a/b/c']);
    expect(all).toEqual(['a', 'a/b', 'a/c', 'a/b/c', 'x/b/y']);
    expect(mid).toEqual(['a/b/c', 'x/b/y']);
  });

  it('keeps $ topics from first-level wildcards but not from spelled-out filters', () => {
    const tree = new TopicTree(silentLogger);
    const sys = received(tree, '$SYS/#');
    const plusSys = received(tree, '+/uptime');
    const under = received(tree, '$SYS/+');
    tree.publish(message('$SYS/uptime'), { protocol: 't' });
    expect(sys).toEqual(['$SYS/uptime']);
    expect(under).toEqual(['$SYS/uptime']);
    expect(plusSys).toEqual([]);
  });

  it('handles empty levels as levels', () => {
    const tree = new TopicTree(silentLogger);
    const leading = received(tree, '/+');
    const trailing = received(tree, 'a/');
    tree.publish(message('/x'), { protocol: 't' });
    tree.publish(message('a/'), { protocol: 't' });
    tree.publish(message('a'), { protocol: 't' });
    expect(leading).toEqual(['/x']);
    expect(trailing).toEqual(['a/']);
  });

  it('counts deliveries and stops delivering after unsubscribe', () => {
    const tree = new TopicTree(silentLogger);
    const got: string[] = [];
    const first = tree.subscribe('t/+', (m) => got.push(`1:${m.topic}`));
    tree.subscribe('t/#', (m) => got.push(`2:${m.topic}`));
    expect(tree.publish(message('t/x'), { protocol: 't' })).toBe(2);
    first.unsubscribe();
    first.unsubscribe();
    expect(tree.size).toBe(1);
    expect(tree.publish(message('t/y'), { protocol: 't' })).toBe(1);
    // Order across subscribers is not promised; per subscriber it is publish order.
    expect(got.slice(0, 2).sort()).toEqual(['1:t/x', '2:t/x']);
    expect(got.slice(2)).toEqual(['2:t/y']);
  });

  it('isolates a failing subscriber and logs it', () => {
    const errors: unknown[] = [];
    const logger: Logger = { ...silentLogger, error: (fields: unknown) => errors.push(fields) };
    const tree = new TopicTree(logger);
    tree.subscribe('t', () => {
      throw new Error('boom');
    });
    const ok = received(tree, 't');
    expect(tree.publish(message('t'), { protocol: 't' })).toBe(2);
    expect(ok).toEqual(['t']);
    expect(errors).toHaveLength(1);
  });

  it('refuses invalid filters and wildcard topic names', () => {
    const tree = new TopicTree(silentLogger);
    expect(() => tree.subscribe('a/#/b', () => {})).toThrow(/invalid topic filter/);
    expect(() => tree.publish(message('a/+'), { protocol: 't' })).toThrow(/invalid topic name/);
    expect(() => tree.publish(message(''), { protocol: 't' })).toThrow(/invalid topic name/);
  });

  it('passes the origin through', () => {
    const tree = new TopicTree(silentLogger);
    const origins: string[] = [];
    tree.subscribe('t', (_m, origin) => origins.push(`${origin.protocol}/${origin.clientId}`));
    tree.publish(message('t'), { protocol: 'mqtt', clientId: 'c1' });
    expect(origins).toEqual(['mqtt/c1']);
  });
});
