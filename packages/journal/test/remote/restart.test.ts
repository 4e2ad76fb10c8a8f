import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, type AppendResult, type RecordBatch } from '@robustmq/core';
import { batch, open, readAll, sha, tempDir } from '../helpers.js';
import { CallGate, client, rejectionOf, startServer, waitUntil } from './helpers.js';

describe('journal server restart', () => {
  it('fails appends in flight with UNAVAILABLE and serves later calls once reconnected', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    const gate = new CallGate('append');
    let server = await startServer(gate.wrap(engine));
    const port = server.port;
    const journal = client(port);
    await journal.createShard('orders/0');

    const acked: { batch: RecordBatch; result: AppendResult }[] = [];
    for (let i = 0; i < 5; i++) {
      const b = batch(500 + i * 1000, 1_000 + i);
      acked.push({ batch: b, result: await journal.append('orders/0', [b]) });
    }

    gate.hold();
    const before = gate.arrived;
    const inFlight = [batch(100), batch(5000), batch(64 * 1024)];
    const pending = inFlight.map((b) => journal.append('orders/0', [b]));
    await waitUntil(() => gate.arrived === before + inFlight.length, 'appends to reach the server');

    await server.close();
    for (const outcome of pending) {
      const error = await rejectionOf(outcome);
      expect(isRobustMQError(error, ErrorCode.Unavailable), String(error)).toBe(true);
    }
    // They were sent, so they may still be carried out after the client gave up: let them.
    gate.release();
    await waitUntil(() => gate.settled === gate.arrived, 'held appends to finish');
    await engine.close();
    expect(journal.connected).toBe(false);

    // Calls made while no server is up wait for one, for at most the connect wait (5 s here).
    const late = batch(2048, 9_000);
    const infoWhileDown = journal.shardInfo('orders/0');
    const appendWhileDown = journal.append('orders/0', [late]);

    engine = await open(dir);
    server = await startServer(engine, { port });
    const info = await infoWhileDown;
    const lateResult = await appendWhileDown;
    expect(journal.connected).toBe(true);
    expect(lateResult.baseOffset).toBe(info.nextOffset);

    const stored = await readAll(journal, 'orders/0');
    for (const { batch: b, result } of [...acked, { batch: late, result: lateResult }]) {
      const found = stored.find((s) => s.baseOffset === result.baseOffset);
      expect(found && sha(found.data)).toBe(sha(b.data));
      expect(found?.maxTimestamp).toBe(b.maxTimestamp);
    }
    // The failed appends were never resent: each is stored once (the gate let them all run).
    const hashes = stored.map((s) => sha(s.data));
    for (const b of inFlight) expect(hashes.filter((h) => h === sha(b.data))).toHaveLength(1);
    expect(stored).toHaveLength(acked.length + inFlight.length + 1);
  });

  it('keeps serving a client through several restarts', async () => {
    const dir = await tempDir();
    let engine = await open(dir);
    let server = await startServer(engine);
    const port = server.port;
    const journal = client(port);
    await journal.createShard('s');
    const written: RecordBatch[] = [];
    for (let round = 0; round < 3; round++) {
      const b = batch(3000, round);
      await journal.append('s', [b]);
      written.push(b);
      await server.close();
      await engine.close();
      engine = await open(dir);
      server = await startServer(engine, { port });
    }
    const stored = await readAll(journal, 's');
    expect(stored.map((s) => sha(s.data))).toEqual(written.map((b) => sha(b.data)));
  });
});
