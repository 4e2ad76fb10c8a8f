import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { batch, open, tempDir } from '../helpers.js';
import { CallGate, client, rejectionOf, startServer, TcpProxy, waitUntil } from './helpers.js';

const LONG = 120_000;

describe('waitForData over RPC', () => {
  it('lets appends and reads through while more long polls wait than the server runs at once', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine, { maxConcurrentCalls: 8 });
    const journal = client(server.port);
    await journal.createShard('s');
    let woken = 0;
    const waits = Array.from({ length: 40 }, () => journal.waitForData('s', 0, LONG).then(() => woken++));
    expect(await journal.append('s', [batch(100)])).toEqual({
      baseOffset: 0,
      lastOffset: 0,
      logStartOffset: 0,
    });
    expect((await journal.read('s', 0, { maxBytes: 1024 })).batches).toHaveLength(1);
    await Promise.all(waits);
    expect(woken).toBe(40);
  });

  it('resolves on its timeout, and a pending wait fails CLOSED when the client closes', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const journal = client(server.port);
    await journal.createShard('s');
    await journal.waitForData('s', 0, 30);
    const pending = rejectionOf(journal.waitForData('s', 0, LONG));
    await journal.close();
    const error = await pending;
    expect(isRobustMQError(error, ErrorCode.Closed), String(error)).toBe(true);
  });

  it('waits again after a dropped connection, and wakes on data', async () => {
    const engine = await open(await tempDir());
    const gate = new CallGate('waitForData');
    const server = await startServer(gate.wrap(engine));
    const proxy = await TcpProxy.start(server.port);
    const viaProxy = client(proxy.port);
    const direct = client(server.port);
    await direct.createShard('s');
    let done = false;
    const waiting = viaProxy.waitForData('s', 0, LONG).then(() => (done = true));
    await waitUntil(() => gate.arrived === 1, 'the wait to reach the server');
    proxy.cut();
    await waitUntil(() => gate.arrived === 2, 'the wait to be sent again');
    expect(done).toBe(false);
    await direct.append('s', [batch(10)]);
    await waiting;
    expect(done).toBe(true);
  });
});
