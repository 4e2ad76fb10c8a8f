import { describe, expect, it } from 'vitest';
import {
  adminAcrossBrokers,
  InProcessBrokers,
  silentLogger,
  type AdminItem,
  type AdminResource,
  type BrokerCluster,
} from '../src/index.js';

/** A resource over ids held in a set, listed in id order. */
function held(ids: Set<string>): AdminResource {
  const items = (): AdminItem[] => [...ids].sort().map((id) => ({ id, kind: 'session' }));
  return {
    list: ({ limit, after }) => {
      const rest = items().filter((item) => after === undefined || item.id > after);
      const page = rest.slice(0, limit);
      return Promise.resolve({ items: page, next: rest.length > limit ? page.at(-1)!.id : null });
    },
    get: (id) => Promise.resolve(ids.has(id) ? { id, kind: 'session' } : null),
    remove: (id) => Promise.resolve(ids.delete(id)),
  };
}

function broker(cluster: BrokerCluster, ids: string[]) {
  const set = new Set(ids);
  cluster.announce('demo', {});
  const own = { sessions: held(set), retained: held(new Set(['r'])) };
  return { set, admin: adminAcrossBrokers('demo', cluster, () => own, ['sessions'], silentLogger) };
}

describe('admin resources across brokers', () => {
  it('lists every broker’s items in id order, page by page, each naming its broker', async () => {
    const brokers = new InProcessBrokers();
    const one = broker(brokers.member(1), ['a', 'd', 'e']);
    broker(brokers.member(2), ['b', 'c', 'f']);
    const sessions = one.admin().sessions!;
    const first = await sessions.list({ limit: 4 });
    expect(first.items.map((i) => [i.id, i.broker])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 2],
      ['d', 1],
    ]);
    expect(first.next).toBe('d');
    const second = await sessions.list({ limit: 4, after: 'd' });
    expect(second.items.map((i) => i.id)).toEqual(['e', 'f']);
    expect(second.next).toBeNull();
    // Not spanned: each broker's own.
    expect((await one.admin().retained!.list({ limit: 10 })).items).toEqual([{ id: 'r', kind: 'session' }]);
  });

  it('gets and removes an item on the broker that holds it, and leaves out one that does not answer', async () => {
    const brokers = new InProcessBrokers();
    const one = broker(brokers.member(1), ['a']);
    const two = broker(brokers.member(2), ['b']);
    const sessions = one.admin().sessions!;
    expect(await sessions.get('b')).toEqual({ id: 'b', kind: 'session', broker: 2 });
    expect(await sessions.get('zz')).toBeNull();
    expect(await sessions.remove!('b')).toBe(true);
    expect(two.set.has('b')).toBe(false);
    expect(await sessions.remove!('b')).toBe(false);

    // Broker 3 runs the protocol but does not answer admin calls.
    brokers.member(3).announce('demo', {});
    expect((await sessions.list({ limit: 10 })).items.map((i) => i.id)).toEqual(['a']);
  });
});
