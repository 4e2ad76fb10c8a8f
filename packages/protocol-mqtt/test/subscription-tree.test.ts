import { describe, expect, it } from 'vitest';
import { SubscriptionTree, type SubscriptionOptions } from '../src/subscription-tree.js';

const opts = (qos: 0 | 1 | 2 = 0, extra: Partial<SubscriptionOptions> = {}): SubscriptionOptions => ({
  qos,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  subscriptionId: 0,
  ...extra,
});

/** Who matches `topic`, as "subscriber:filter" strings, sorted. */
function who(tree: SubscriptionTree<string>, topic: string): string[] {
  return tree
    .match(topic)
    .flatMap((m) => m.subscriptions.map((s) => `${m.subscriber}:${s.filter}`))
    .sort();
}

describe('SubscriptionTree', () => {
  it('matches exact filters, + for one level and # for any number including none', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('a', 'sport/tennis/player1', opts());
    tree.add('b', 'sport/+/player1', opts());
    tree.add('c', 'sport/#', opts());
    tree.add('d', '#', opts());
    tree.add('e', '+/+', opts());
    tree.add('f', 'sport/tennis/+/#', opts());
    expect(who(tree, 'sport/tennis/player1')).toEqual([
      'a:sport/tennis/player1',
      'b:sport/+/player1',
      'c:sport/#',
      'd:#',
      'f:sport/tennis/+/#',
    ]);
    expect(who(tree, 'sport')).toEqual(['c:sport/#', 'd:#']);
    expect(who(tree, 'sport/tennis')).toEqual(['c:sport/#', 'd:#', 'e:+/+']);
    expect(who(tree, 'other')).toEqual(['d:#']);
  });

  it('treats empty levels as levels', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('a', '+/a', opts());
    tree.add('b', 'a//b', opts());
    tree.add('c', 'a/+/b', opts());
    expect(who(tree, '/a')).toEqual(['a:+/a']);
    expect(who(tree, 'a//b')).toEqual(['b:a//b', 'c:a/+/b']);
  });

  it('does not match $ topics with a wildcard in the first level', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('all', '#', opts());
    tree.add('plus', '+/monitor/Clients', opts());
    tree.add('sys', '$SYS/#', opts());
    tree.add('sysplus', '$SYS/+/Clients', opts());
    expect(who(tree, '$SYS/monitor/Clients')).toEqual(['sys:$SYS/#', 'sysplus:$SYS/+/Clients']);
    expect(who(tree, 'a/monitor/Clients')).toEqual(['all:#', 'plus:+/monitor/Clients']);
  });

  it('groups overlapping subscriptions of one subscriber into one match', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('a', 'x/#', opts(0));
    tree.add('a', 'x/+', opts(2));
    tree.add('b', 'x/y', opts(1));
    const matches = tree.match('x/y');
    expect(matches).toHaveLength(2);
    const a = matches.find((m) => m.subscriber === 'a')!;
    expect(a.subscriptions.map((s) => s.options.qos).sort()).toEqual([0, 2]);
  });

  it('replaces a subscription to the same filter and reports whether it was new', () => {
    const tree = new SubscriptionTree<string>();
    expect(tree.add('a', 'x/y', opts(0))).toBe(true);
    expect(tree.add('a', 'x/y', opts(2))).toBe(false);
    expect(tree.size).toBe(1);
    expect(tree.match('x/y')[0]!.subscriptions[0]!.options.qos).toBe(2);
  });

  it('removes subscriptions, prunes empty levels, and keeps the cache in step', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('a', 'x/+/z', opts());
    tree.add('b', 'x/#', opts());
    expect(who(tree, 'x/y/z')).toEqual(['a:x/+/z', 'b:x/#']);
    expect(tree.remove('a', 'x/+/z')).toBe(true);
    expect(tree.remove('a', 'x/+/z')).toBe(false);
    expect(who(tree, 'x/y/z')).toEqual(['b:x/#']);
    expect(tree.remove('b', 'x/#')).toBe(true);
    expect(who(tree, 'x/y/z')).toEqual([]);
    expect(tree.size).toBe(0);
    expect(tree.remove('b', 'nothing/here')).toBe(false);
  });

  it('keeps working after many topics overflow the match cache', () => {
    const tree = new SubscriptionTree<string>();
    tree.add('a', 'm/+', opts());
    for (let i = 0; i < 20_000; i++) expect(tree.match(`m/${i}`)).toHaveLength(1);
    expect(tree.match('m/x/y')).toHaveLength(0);
  });
});
