import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError, RobustMQError } from '@robustmq/core';
import { createRpcServer, type RpcServer } from '@robustmq/rpc';
import { client, rejectionOf } from './helpers.js';

const servers: RpcServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A shard config as a journal node from before `segmentMs` keeps and reports it. */
const OLD_CONFIG = {
  retentionMs: 3_600_000,
  retentionBytes: null,
  segmentBytes: 1024,
  durability: 'group-commit',
  maxBatchBytes: 1024,
};

/** A journal node from before `segmentMs`: it refuses the key as unknown and never reports it. */
async function oldNode(): Promise<{ port: number; configs: unknown[] }> {
  const configs: unknown[] = [];
  const server = createRpcServer({ host: '127.0.0.1', port: 0 });
  for (const method of ['createShard', 'updateShardConfig', 'shardInfo']) {
    server.handle(`journal.${method}`, (body) => {
      const config = (body as { config?: Record<string, unknown> }).config;
      configs.push(config);
      if (config !== undefined && 'segmentMs' in config) {
        // What core's config check said then.
        throw new RobustMQError(ErrorCode.InvalidArgument, 'shard config has an unknown key "segmentMs"');
      }
      return Promise.resolve({
        name: 's',
        config: OLD_CONFIG,
        logStartOffset: 0,
        nextOffset: 0,
        sizeBytes: 0,
      });
    });
  }
  await server.listen();
  servers.push(server);
  return { port: server.port, configs };
}

describe('a journal node from before segmentMs', () => {
  it('reports segmentMs as null, as it rolls by size only', async () => {
    const node = await oldNode();
    expect((await client(node.port).shardInfo('s')).config).toEqual({ ...OLD_CONFIG, segmentMs: null });
  });

  it('is sent configs with segmentMs again without it', async () => {
    const node = await oldNode();
    const journal = client(node.port);
    const created = await journal.createShard('s', { segmentBytes: 1024, segmentMs: 60_000 });
    expect(created.config.segmentMs).toBeNull();
    const updated = await journal.updateShardConfig('s', { segmentMs: 60_000, retentionMs: 3_600_000 });
    expect(updated.config.segmentMs).toBeNull();
    expect(node.configs).toEqual([
      { segmentBytes: 1024, segmentMs: 60_000 },
      { segmentBytes: 1024 },
      { segmentMs: 60_000, retentionMs: 3_600_000 },
      { retentionMs: 3_600_000 },
    ]);
  });
});

/**
 * A journal node from before appends reported the log start: its append reply has the offsets
 * only. Its shard info says `logStartOffset`, or fails with `infoError` when set.
 */
async function nodeWithoutAppendLogStart(logStartOffset: number): Promise<{
  port: number;
  infoCalls: unknown[];
  infoError: { current: RobustMQError | null };
}> {
  const infoCalls: unknown[] = [];
  const infoError: { current: RobustMQError | null } = { current: null };
  let next = 10;
  const server = createRpcServer({ host: '127.0.0.1', port: 0 });
  server.handle('journal.append', (body) => {
    const { batches } = body as { batches: [number, number, Uint8Array][] };
    const baseOffset = next;
    for (const [recordCount] of batches) next += recordCount;
    return Promise.resolve({ baseOffset, lastOffset: next - 1 });
  });
  server.handle('journal.shardInfo', (body) => {
    infoCalls.push(body);
    if (infoError.current !== null) return Promise.reject(infoError.current);
    return Promise.resolve({ name: 's', config: OLD_CONFIG, logStartOffset, nextOffset: next, sizeBytes: 0 });
  });
  await server.listen();
  servers.push(server);
  return { port: server.port, infoCalls, infoError };
}

describe('a journal node from before appends reported the log start', () => {
  const batch = { recordCount: 2, maxTimestamp: 1, data: new Uint8Array([1, 2, 3]) };

  it('is asked for it with one shardInfo call per append', async () => {
    const node = await nodeWithoutAppendLogStart(4);
    const journal = client(node.port);
    expect(await journal.append('s', [batch])).toEqual({ baseOffset: 10, lastOffset: 11, logStartOffset: 4 });
    expect(await journal.append('s', [batch])).toEqual({ baseOffset: 12, lastOffset: 13, logStartOffset: 4 });
    expect(node.infoCalls).toEqual([{ shard: 's' }, { shard: 's' }]);
  });

  it('still acknowledges the stored append when that call fails, with the log start unknown', async () => {
    const node = await nodeWithoutAppendLogStart(4);
    node.infoError.current = new RobustMQError(ErrorCode.NotFound, 'shard s does not exist');
    const journal = client(node.port);
    expect(await journal.append('s', [batch])).toEqual({
      baseOffset: 10,
      lastOffset: 11,
      logStartOffset: -1,
    });
    expect(node.infoCalls).toHaveLength(1);
  });
});

/**
 * A journal node from before conditional appends: it stores every append at its next offset,
 * whatever `expectedOffset` the request carries, and keeps the requests it got.
 */
async function nodeWithoutConditionalAppends(): Promise<{
  port: number;
  appends: Record<string, unknown>[];
}> {
  const appends: Record<string, unknown>[] = [];
  let next = 10;
  const server = createRpcServer({ host: '127.0.0.1', port: 0 });
  server.handle('journal.append', (body) => {
    const request = body as { batches: [number, number, Uint8Array][] };
    appends.push(body as Record<string, unknown>);
    const baseOffset = next;
    for (const [recordCount] of request.batches) next += recordCount;
    return Promise.resolve({ baseOffset, lastOffset: next - 1, logStartOffset: 0 });
  });
  await server.listen();
  servers.push(server);
  return { port: server.port, appends };
}

describe('a journal node from before conditional appends', () => {
  const batch = { recordCount: 2, maxTimestamp: 1, data: new Uint8Array([1, 2, 3]) };

  it('fails a conditional append it stored elsewhere INTERNAL, saying it does not support them', async () => {
    const node = await nodeWithoutConditionalAppends();
    const journal = client(node.port);
    const error = await rejectionOf(journal.append('s', [batch], { expectedOffset: 4 }));
    expect(isRobustMQError(error, ErrorCode.Internal), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/does not support conditional appends/);
    expect(node.appends.map((append) => append.expectedOffset)).toEqual([4]);
  });

  it('acknowledges a conditional append it happened to store at the expected offset', async () => {
    const node = await nodeWithoutConditionalAppends();
    const journal = client(node.port);
    expect(await journal.append('s', [batch], { expectedOffset: 10 })).toEqual({
      baseOffset: 10,
      lastOffset: 11,
      logStartOffset: 0,
    });
  });

  it('is sent no expectedOffset with an unconditional append', async () => {
    const node = await nodeWithoutConditionalAppends();
    const journal = client(node.port);
    expect((await journal.append('s', [batch])).baseOffset).toBe(10);
    expect((await journal.append('s', [batch], {})).baseOffset).toBe(12);
    expect(node.appends.map((append) => 'expectedOffset' in append)).toEqual([false, false]);
  });

  it('is not sent an append whose expected offset is malformed, which it would store', async () => {
    const node = await nodeWithoutConditionalAppends();
    const journal = client(node.port);
    for (const expectedOffset of [-1, 1.5, Number.NaN]) {
      const error = await rejectionOf(journal.append('s', [batch], { expectedOffset }));
      expect(isRobustMQError(error, ErrorCode.InvalidArgument), String(error)).toBe(true);
    }
    expect(node.appends).toEqual([]);
  });
});
