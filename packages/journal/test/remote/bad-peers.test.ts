import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, type Logger } from '@robustmq/core';
import { connectRpc, type RpcClient } from '@robustmq/rpc';
import { batch, CountingMetrics, open, readAll, RecordingLogger, sha, tempDir } from '../helpers.js';
import { client, rejectionOf, startServer, TcpProxy, waitUntil } from './helpers.js';

const rpcClients: RpcClient[] = [];
afterEach(async () => {
  await Promise.all(rpcClients.splice(0).map((c) => c.close()));
});

/** Writes `bytes` to the port as a client would and resolves once the server closes on us. */
async function sendRaw(port: number, bytes: Uint8Array): Promise<void> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.resume();
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(bytes);
  await once(socket, 'close');
}

describe('bad peers', () => {
  it('closes a connection that sends garbage, logs it, and keeps serving the others', async () => {
    const engine = await open(await tempDir());
    const logger = new RecordingLogger();
    const metrics = new CountingMetrics();
    const server = await startServer(engine, { logger: logger as unknown as Logger, metrics });
    const good = client(server.port);
    await good.createShard('s');
    const first = batch(3000);
    await good.append('s', [first]);

    await sendRaw(server.port, randomBytes(64 * 1024));
    // The right preamble, then a frame whose length prefix claims 4 GiB.
    const preamble = Buffer.from('RMQRPC\x00\x01', 'latin1');
    await sendRaw(server.port, Buffer.concat([preamble, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 0])]));

    expect(
      logger.lines.filter((l) => l.level === 'warn' && l.message.includes('protocol error')),
    ).toHaveLength(2);
    expect(metrics.total('robustmq_rpc_server_protocol_errors_total')).toBe(2);
    const second = batch(100);
    expect(await good.append('s', [second])).toEqual({ baseOffset: 1, lastOffset: 1, logStartOffset: 0 });
    const stored = await readAll(good, 's');
    expect(stored.map((s) => sha(s.data))).toEqual([sha(first.data), sha(second.data)]);
    await waitUntil(() => server.connectionCount === 1, 'the bad connections to be gone');
  });

  it('answers well-framed calls with malformed journal bodies INVALID_ARGUMENT', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const rpc = connectRpc({ host: '127.0.0.1', port: server.port });
    rpcClients.push(rpc);
    await rpc.call('journal.createShard', { shard: 's' });

    const malformed: [string, unknown][] = [
      ['journal.append', 'garbage'],
      ['journal.append', null],
      ['journal.append', [1, 2, 3]],
      ['journal.append', { shard: 's', batches: 'nope' }],
      ['journal.append', { shard: 's', batches: [[1, 1, 'not bytes']] }],
      ['journal.append', { shard: 's', batches: [[1, 1]] }],
      ['journal.append', { shard: 's', batches: [[1, 1, new Uint8Array(4)]], epoch: -1 }],
      ['journal.append', { shard: 42, batches: [[1, 1, new Uint8Array(4)]] }],
      ['journal.read', { shard: 's', offset: 'zero', maxBytes: 10 }],
      ['journal.read', { shard: 's', offset: 0 }],
      ['journal.waitForData', { shard: 's', offset: 0, timeoutMs: 'soon' }],
      ['journal.createShard', { shard: 't', config: 'big' }],
      ['journal.deleteBefore', { shard: 's', offset: 0, epoch: 'one' }],
      ['journal.enforceRetention', { now: 'later' }],
    ];
    for (const [method, body] of malformed) {
      const error = await rejectionOf(rpc.call(method, body));
      expect(isRobustMQError(error, ErrorCode.InvalidArgument), `${method} ${String(error)}`).toBe(true);
    }
    const unknown = await rejectionOf(rpc.call('journal.compact', { shard: 's' }));
    expect(isRobustMQError(unknown, ErrorCode.NotFound)).toBe(true);
    // Nothing was stored and the connection is still good.
    expect(await rpc.call('journal.listShards', {})).toEqual(['s']);
    expect(await rpc.call('journal.shardInfo', { shard: 's' })).toMatchObject({ nextOffset: 0 });
  });

  it('refuses an append whose expectedOffset is malformed with INVALID_ARGUMENT and stores nothing', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const rpc = connectRpc({ host: '127.0.0.1', port: server.port });
    rpcClients.push(rpc);
    await rpc.call('journal.createShard', { shard: 's' });
    const batches = [[1, 1, new Uint8Array(4)]];
    for (const expectedOffset of [-1, 1.5, Number.NaN, 2 ** 53, '0', true, [0], { offset: 0 }]) {
      const error = await rejectionOf(rpc.call('journal.append', { shard: 's', batches, expectedOffset }));
      expect(
        isRobustMQError(error, ErrorCode.InvalidArgument),
        `${JSON.stringify(expectedOffset)}: ${String(error)}`,
      ).toBe(true);
    }
    expect(await rpc.call('journal.shardInfo', { shard: 's' })).toMatchObject({ nextOffset: 0 });
    // Null stands for no condition, as for an epoch.
    expect(await rpc.call('journal.append', { shard: 's', batches, expectedOffset: null })).toMatchObject({
      baseOffset: 0,
    });
    expect(await rpc.call('journal.append', { shard: 's', batches, expectedOffset: 1 })).toMatchObject({
      baseOffset: 1,
    });
  });

  it('lets a client that stops reading stall only itself', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const other = client(server.port);
    await other.createShard('big');
    for (let i = 0; i < 4; i++) await other.append('big', [batch(1024 * 1024)]);

    const proxy = await TcpProxy.start(server.port);
    const slow = client(proxy.port);
    await slow.waitConnected(10_000);
    proxy.stall();
    const slowReads = Array.from({ length: 12 }, () =>
      slow.read('big', 0, { maxBytes: 4 * 1024 * 1024 }).catch((error: unknown) => error),
    );
    await waitUntil(
      () => Math.max(...server.bufferedWriteBytes()) > 4 * 1024 * 1024,
      "the slow client's replies to back up on the server",
    );

    await other.createShard('s');
    for (let i = 0; i < 20; i++) {
      const b = batch(64 * 1024, i);
      const { baseOffset } = await other.append('s', [b]);
      const { batches } = await other.read('s', baseOffset, { maxBytes: 1 });
      expect(sha(batches[0]!.data)).toBe(sha(b.data));
      expect((await other.read('big', 0, { maxBytes: 4 * 1024 * 1024 })).batches).toHaveLength(4);
    }
    // The slow client's replies are bounded by what it asked for; the stall cost it alone.
    expect(Math.max(...server.bufferedWriteBytes())).toBeLessThan(12 * 4.2 * 1024 * 1024);
    await slow.close();
    for (const outcome of await Promise.all(slowReads)) {
      expect(isRobustMQError(outcome, ErrorCode.Closed), String(outcome)).toBe(true);
    }
  });
});
