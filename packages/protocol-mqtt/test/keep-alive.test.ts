import { describe, expect, it } from 'vitest';
import { KeepAliveWatch, type KeptAlive } from '../src/keep-alive.js';

const connections = new Set<KeptAlive>();

function connection(lastPacketAt: number, silenceLimitMs: number, ended: string[], name: string) {
  const kept: KeptAlive & { lastPacketAt: number } = {
    lastPacketAt,
    silenceLimitMs,
    keepAliveExpired: () => {
      ended.push(name);
      connections.delete(kept);
    },
  };
  return kept;
}
describe('KeepAliveWatch', () => {
  it('ends only the connections silent for their whole limit, and none without a limit', () => {
    const ended: string[] = [];
    const watch = new KeepAliveWatch(connections);
    try {
      const quiet = connection(1_000, 1_500, ended, 'quiet');
      const talking = connection(1_000, 1_500, ended, 'talking');
      const unlimited = connection(0, 0, ended, 'unlimited');
      const slow = connection(1_000, 90_000, ended, 'slow');
      for (const c of [quiet, talking, unlimited, slow]) connections.add(c);

      watch.check(2_499);
      expect(ended).toEqual([]);
      talking.lastPacketAt = 2_000;
      watch.check(2_500);
      expect(ended).toEqual(['quiet']);
      watch.check(3_499);
      expect(ended).toEqual(['quiet']);
      watch.check(3_500);
      expect(ended).toEqual(['quiet', 'talking']);
      watch.check(1_000_000);
      expect(ended).toEqual(['quiet', 'talking', 'slow']);
      expect([...connections]).toEqual([unlimited]);
    } finally {
      watch.stop();
      connections.clear();
    }
  });
});
