/**
 * One member of the meta suite's Raft group in its own process (forked by the suite, never run by
 * hand): opens a RaftMetaStore on the address and directory it is given and, when asked, drives a
 * closed-loop put workload against its own store (see meta-node-protocol.ts).
 */
import { randomFillSync } from 'node:crypto';
import { openRaftMetaStore, type RaftMetaStore } from '@robustmq/meta-raft';
import { LatencyHistogram } from './latency-histogram.js';
import type { FromNode, LoadReport, ToNode, WriteLoad } from './meta-node-protocol.js';

/** Keys each writer cycles through, so the state (and its snapshots) stays a realistic size. */
const KEYS_PER_WRITER = 1000;

let store: RaftMetaStore | null = null;

function send(message: FromNode): void {
  process.send?.(message);
}

async function runLoad(meta: RaftMetaStore, load: WriteLoad): Promise<LoadReport> {
  const value = randomFillSync(new Uint8Array(load.valueBytes));
  const histogram = new LatencyHistogram();
  const started = process.hrtime.bigint();
  const markAt = started + BigInt(load.warmupMs) * 1_000_000n;
  const endAt = markAt + BigInt(load.measureMs) * 1_000_000n;
  let writes = 0;
  let errors = 0;
  let commitAtMark = 0;
  let commitAtEnd = 0;
  const marker = setTimeout(() => (commitAtMark = meta.status().commitIndex), load.warmupMs);
  const ender = setTimeout(() => (commitAtEnd = meta.status().commitIndex), load.warmupMs + load.measureMs);
  const writer = async (index: number): Promise<void> => {
    for (let sequence = 0; ; sequence++) {
      const begun = process.hrtime.bigint();
      if (begun >= endAt) return;
      try {
        await meta.put(`/bench/${index}/${sequence % KEYS_PER_WRITER}`, value);
      } catch {
        errors++;
        continue;
      }
      const done = process.hrtime.bigint();
      // A put counts in the window it both starts and ends in.
      if (begun >= markAt && done <= endAt) {
        writes++;
        histogram.record(Number(done - begun));
      }
    }
  };
  await Promise.all(Array.from({ length: load.writers }, (_, index) => writer(index)));
  clearTimeout(marker);
  clearTimeout(ender);
  // A store whose loop blocks on fsync may run the writers past the end before the timer fires.
  if (commitAtEnd === 0) commitAtEnd = meta.status().commitIndex;
  return {
    type: 'load',
    writes,
    elapsedNs: load.measureMs * 1_000_000,
    histogram: histogram.toPairs(),
    errors,
    entries: commitAtEnd - commitAtMark,
  };
}

async function handle(message: ToNode): Promise<void> {
  switch (message.type) {
    case 'open':
      store = await openRaftMetaStore({ id: message.id, peers: message.peers, dir: message.dir });
      return send({ type: 'opened' });
    case 'status': {
      const status = store?.status();
      const cpu = process.cpuUsage();
      return send({
        type: 'status',
        role: status?.role ?? 'closed',
        leader: status?.leader ?? 0,
        cpuMicros: cpu.user + cpu.system,
      });
    }
    case 'load':
      if (store === null) throw new Error('load before open');
      return send(await runLoad(store, message));
    case 'close':
      await store?.close();
      store = null;
      send({ type: 'closed' });
      process.disconnect();
      return;
  }
}

process.on('message', (message: ToNode) => {
  handle(message).catch((error: unknown) => {
    send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
  });
});
// Without the suite there is nothing to do: exit with it.
process.on('disconnect', () => {
  void store?.close().finally(() => process.exit(0));
  if (store === null) process.exit(0);
});
