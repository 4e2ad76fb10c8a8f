import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { createRpcServer, type RpcServer } from '@robustmq/rpc';
import type { JournalClient } from '../../src/index.js';
import { client, rejectionOf } from './helpers.js';

const servers: RpcServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An RPC server that answers every journal call with the reply the test sets. */
async function lyingServer(): Promise<{ port: number; reply: (method: string, body: unknown) => void }> {
  const replies = new Map<string, unknown>();
  const server = createRpcServer({ host: '127.0.0.1', port: 0 });
  for (const method of [
    'createShard',
    'listShards',
    'shardInfo',
    'updateShardConfig',
    'append',
    'read',
    'offsetForTimestamp',
    'deleteBefore',
  ]) {
    server.handle(`journal.${method}`, () => Promise.resolve(replies.get(method)));
  }
  await server.listen();
  servers.push(server);
  return { port: server.port, reply: (method, body) => replies.set(method, body) };
}

const data = new Uint8Array([1, 2, 3]);
const config = {
  retentionMs: null,
  retentionBytes: null,
  segmentBytes: 1024,
  durability: 'fsync',
  maxBatchBytes: 1024,
};
const info = { name: 's', config, logStartOffset: 0, nextOffset: 3, sizeBytes: 100 };

/** Calls of the client, each with replies a server must never send, and one it may. */
const cases: {
  method: string;
  call: (journal: JournalClient) => Promise<unknown>;
  bad: unknown[];
  good: unknown;
}[] = [
  {
    method: 'append',
    call: (j) => j.append('s', [{ recordCount: 1, maxTimestamp: 1, data }]),
    bad: [
      { baseOffset: Number.NaN, lastOffset: 0 },
      { baseOffset: -1, lastOffset: 0 },
      { baseOffset: 0.5, lastOffset: 1 },
      { baseOffset: 5, lastOffset: 4 },
      { baseOffset: 3, lastOffset: 3, logStartOffset: -1 },
      { baseOffset: 3, lastOffset: 3, logStartOffset: '0' },
      { baseOffset: 3, lastOffset: 3, logStartOffset: null },
    ],
    good: { baseOffset: 3, lastOffset: 3, logStartOffset: 0 },
  },
  {
    method: 'read',
    call: (j) => j.read('s', 0, { maxBytes: 100 }),
    bad: [
      { batches: [['0', 1, 1, data]], logStartOffset: 0, nextOffset: 1 },
      { batches: [[0, 0, 1, data]], logStartOffset: 0, nextOffset: 1 },
      { batches: [[0, 1, 'late', data]], logStartOffset: 0, nextOffset: 1 },
      { batches: [[-2, 1, 1, data]], logStartOffset: 0, nextOffset: 1 },
      { batches: [[0, 1, 1, data]] },
      { batches: [], logStartOffset: 0, nextOffset: 'ten' },
      { batches: [], logStartOffset: 4, nextOffset: 2 },
    ],
    good: { batches: [[0, 1, 1, data]], logStartOffset: 0, nextOffset: 1 },
  },
  {
    method: 'shardInfo',
    call: (j) => j.shardInfo('s'),
    bad: [null, 'info', { ...info, nextOffset: '3' }, { ...info, name: 7 }, { ...info, config: null }],
    good: info,
  },
  {
    method: 'createShard',
    call: (j) => j.createShard('s'),
    bad: [undefined, { ...info, sizeBytes: -5 }],
    good: info,
  },
  {
    method: 'updateShardConfig',
    call: (j) => j.updateShardConfig('s', { retentionMs: 5 }),
    bad: [[], { ...info, logStartOffset: Number.POSITIVE_INFINITY }],
    good: info,
  },
  {
    method: 'listShards',
    call: (j) => j.listShards(),
    bad: [null, 's', [1, 2], { 0: 's' }],
    good: ['a', 'b'],
  },
  {
    method: 'offsetForTimestamp',
    call: (j) => j.offsetForTimestamp('s', 5),
    bad: [undefined, '7', -1, 2.5],
    good: null,
  },
  {
    method: 'deleteBefore',
    call: (j) => j.deleteBefore('s', 1),
    bad: [null, 'one', -3, Number.NaN],
    good: 1,
  },
];

describe('a journal server that sends malformed replies', () => {
  it.each(cases)('fails $method with INTERNAL rather than handing the reply on', async (c) => {
    const server = await lyingServer();
    const journal = client(server.port);
    for (const reply of c.bad) {
      server.reply(c.method, reply);
      const error = await rejectionOf(c.call(journal));
      expect(isRobustMQError(error, ErrorCode.Internal), `${JSON.stringify(reply)}: ${String(error)}`).toBe(
        true,
      );
    }
    server.reply(c.method, c.good);
    await expect(c.call(journal)).resolves.toBeDefined();
  });
});
