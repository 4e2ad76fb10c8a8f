import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, type AppendResult, type RecordBatch } from '@robustmq/core';
import { batch, open, readAll, sha, tempDir } from '../helpers.js';
import { CallGate, client, rejectionOf, startServer, TcpProxy, waitUntil } from './helpers.js';

/** A small deterministic PRNG (mulberry32), so a failing round can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

describe('connection drops', () => {
  it('fails an append sent before the drop with UNAVAILABLE and never resends it', async () => {
    const engine = await open(await tempDir());
    const gate = new CallGate('append');
    const server = await startServer(gate.wrap(engine));
    const proxy = await TcpProxy.start(server.port);
    const viaProxy = client(proxy.port);
    const direct = client(server.port);
    await direct.createShard('s');

    gate.hold();
    const sent = batch(10_000);
    const outcome = viaProxy.append('s', [sent]);
    await waitUntil(() => gate.arrived === 1, 'the append to reach the server');
    proxy.cut();
    const error = await rejectionOf(outcome);
    expect(isRobustMQError(error, ErrorCode.Unavailable), String(error)).toBe(true);

    // The server still carries it out: failed on the client's side does not mean not stored.
    gate.release();
    await waitUntil(() => gate.settled === 1, 'the append to finish');
    const next = batch(200);
    expect(await viaProxy.append('s', [next])).toEqual({ baseOffset: 1, lastOffset: 1, logStartOffset: 0 });
    expect(gate.arrived).toBe(2);
    const stored = await readAll(direct, 's');
    expect(stored.map((s) => sha(s.data))).toEqual([sha(sent.data), sha(next.data)]);
  });

  it('tries a read in flight once more after reconnecting', async () => {
    const engine = await open(await tempDir());
    const gate = new CallGate('read');
    const server = await startServer(gate.wrap(engine));
    const proxy = await TcpProxy.start(server.port);
    const journal = client(proxy.port);
    await journal.createShard('s');
    const b = batch(4096, 77);
    await journal.append('s', [b]);

    gate.hold();
    const reading = journal.read('s', 0, { maxBytes: 1 << 20 });
    await waitUntil(() => gate.arrived === 1, 'the read to reach the server');
    proxy.cut();
    await waitUntil(() => gate.arrived === 2, 'the read to be sent again');
    gate.release();
    const { batches } = await reading;
    expect(batches).toHaveLength(1);
    expect(sha(batches[0]!.data)).toBe(sha(b.data));
  });

  it('never loses an acknowledged append when connections drop mid-traffic', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const proxy = await TcpProxy.start(server.port);
    const viaProxy = client(proxy.port);
    const direct = client(server.port);
    await direct.createShard('s', { durability: 'group-commit' });

    const acked: { batch: RecordBatch; result: AppendResult }[] = [];
    const sent: RecordBatch[] = [];
    for (let round = 0; round < 8; round++) {
      const next = random(round + 1);
      const count = 60;
      // Round 0 cuts before any answer, so some appends surely fail; the others cut at random.
      const cutAfter = round === 0 ? 0 : Math.floor(next() * count);
      await viaProxy.waitConnected(10_000);
      let answered = 0;
      const outcomes = Array.from({ length: count }, async () => {
        const b: RecordBatch = {
          recordCount: 1 + Math.floor(next() * 4),
          maxTimestamp: Date.now(),
          data: randomBytes(1 + Math.floor(next() * 48 * 1024)),
        };
        sent.push(b);
        try {
          const result = await viaProxy.append('s', [b]);
          acked.push({ batch: b, result });
        } catch (error) {
          expect(isRobustMQError(error, ErrorCode.Unavailable), `round ${round}: ${String(error)}`).toBe(
            true,
          );
        } finally {
          if (++answered === cutAfter) proxy.cut();
        }
      });
      if (cutAfter === 0) proxy.cut();
      await Promise.all(outcomes);
    }

    const stored = await readAll(direct, 's');
    const byOffset = new Map(stored.map((s) => [s.baseOffset, s]));
    for (const { batch: b, result } of acked) {
      const found = byOffset.get(result.baseOffset);
      expect(found && sha(found.data)).toBe(sha(b.data));
      expect(result.lastOffset).toBe(result.baseOffset + b.recordCount - 1);
    }
    // Whatever was stored was sent, and exactly once: nothing was resent behind the caller's back.
    const sentHashes = new Set(sent.map((b) => sha(b.data)));
    const storedHashes = stored.map((s) => sha(s.data));
    expect(storedHashes.every((h) => sentHashes.has(h))).toBe(true);
    expect(new Set(storedHashes).size).toBe(storedHashes.length);
    expect(stored.length).toBeGreaterThanOrEqual(acked.length);
    expect(acked.length).toBeLessThan(sent.length);
  });
});
