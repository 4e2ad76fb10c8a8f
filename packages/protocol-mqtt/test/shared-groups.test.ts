import { describe, expect, it } from 'vitest';
import type { Session } from '../src/session.js';
import { SharedGroups } from '../src/shared-groups.js';
import type { SubscriptionOptions } from '../src/subscription-tree.js';

const options: SubscriptionOptions = {
  qos: 1,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 0,
  subscriptionId: 0,
};
/** Only `connection` matters to a group: whether the member is there to take a message now. */
const member = (connected: boolean) => ({ connection: connected ? {} : null }) as unknown as Session;

describe('shared groups', () => {
  it('deal round-robin among connected members, in the order they joined', () => {
    const groups = new SharedGroups();
    const [a, b, c] = [member(true), member(true), member(true)];
    for (const s of [a, b, c]) groups.add(s, 'g', 'x/+', options);
    const group = groups.tree.match('x/1')[0]!.subscriber;
    const picks = Array.from({ length: 6 }, () => group.pick()![0]);
    expect(picks).toEqual([a, b, c, a, b, c]);
    groups.remove(b, 'g', 'x/+');
    expect([group.pick()![0], group.pick()![0]]).toEqual([a, c]);
  });

  it('skip members who are away unless nobody is connected, and never pick the one leaving', () => {
    const groups = new SharedGroups();
    const [away, here] = [member(false), member(true)];
    groups.add(away, 'g', 'x', options);
    groups.add(here, 'g', 'x', options);
    const group = groups.get('g/x')!;
    expect([group.pick()![0], group.pick()![0]]).toEqual([here, here]);
    expect(group.pick(here)![0]).toBe(away);
    groups.remove(here, 'g', 'x');
    expect(group.pick()![0]).toBe(away);
    expect(group.pick(away)).toBeNull();
  });

  it('keep groups of the same filter apart and drop an empty group', () => {
    const groups = new SharedGroups();
    const s = member(true);
    expect(groups.add(s, 'g1', 'x', options)).toBe(true);
    expect(groups.add(s, 'g1', 'x', options)).toBe(false);
    expect(groups.add(s, 'g2', 'x', options)).toBe(true);
    expect(groups.tree.match('x')).toHaveLength(2);
    expect(groups.remove(s, 'g1', 'x')).toBe(true);
    expect(groups.remove(s, 'g1', 'x')).toBe(false);
    expect(groups.get('g1/x')).toBeUndefined();
    expect(groups.tree.match('x')).toHaveLength(1);
  });
});
