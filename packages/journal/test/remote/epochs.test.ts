import { describe, expect, it } from 'vitest';
import { ErrorCode, isRobustMQError } from '@robustmq/core';
import { batch, open, tempDir } from '../helpers.js';
import { client, rejectionOf, startServer } from './helpers.js';

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  const error = await rejectionOf(promise);
  expect(isRobustMQError(error, code), String(error)).toBe(true);
}

describe('leader epochs', () => {
  it('refuses writes under an older epoch than the shard has seen', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    let oldLeaderEpoch = 1;
    const oldLeader = client(server.port, { shardEpoch: () => oldLeaderEpoch });
    const newLeader = client(server.port, { shardEpoch: (shard) => (shard === 'p/0' ? 2 : undefined) });
    const tool = client(server.port);
    await tool.createShard('p/0');

    expect(await oldLeader.append('p/0', [batch(100)])).toEqual({
      baseOffset: 0,
      lastOffset: 0,
      logStartOffset: 0,
    });
    expect(server.epochOf('p/0')).toBe(1);
    expect(await newLeader.append('p/0', [batch(100)])).toEqual({
      baseOffset: 1,
      lastOffset: 1,
      logStartOffset: 0,
    });
    expect(server.epochOf('p/0')).toBe(2);

    // The deposed leader is fenced off; nothing it sends is stored.
    await expectCode(oldLeader.append('p/0', [batch(100)]), ErrorCode.Conflict);
    await expectCode(oldLeader.deleteBefore('p/0', 1), ErrorCode.Conflict);
    expect(await tool.shardInfo('p/0')).toMatchObject({ logStartOffset: 0, nextOffset: 2 });
    // Writers that track no placement are not fenced.
    expect(await tool.append('p/0', [batch(100)])).toEqual({
      baseOffset: 2,
      lastOffset: 2,
      logStartOffset: 0,
    });

    // The node raises the fence from the placement, before the next leader writes.
    server.fence('p/0', 5);
    server.fence('p/0', 3);
    expect(server.epochOf('p/0')).toBe(5);
    await expectCode(newLeader.append('p/0', [batch(100)]), ErrorCode.Conflict);
    oldLeaderEpoch = 5;
    expect(await oldLeader.append('p/0', [batch(100)])).toEqual({
      baseOffset: 3,
      lastOffset: 3,
      logStartOffset: 0,
    });
    expect(await oldLeader.deleteBefore('p/0', 1)).toBe(1);
  });

  it('forgets the epoch of a deleted shard and of a shard that does not exist', async () => {
    const engine = await open(await tempDir());
    const server = await startServer(engine);
    const leader = client(server.port, { shardEpoch: () => 7 });
    await expectCode(leader.append('missing', [batch(10)]), ErrorCode.NotFound);
    expect(server.epochOf('missing')).toBeUndefined();
    await expectCode(leader.append('../escape', [batch(10)]), ErrorCode.InvalidArgument);

    await leader.createShard('s');
    await leader.append('s', [batch(10)]);
    expect(server.epochOf('s')).toBe(7);
    await leader.deleteShard('s');
    expect(server.epochOf('s')).toBeUndefined();
    expect(() => server.fence('s', -1)).toThrow(/epoch/);
    expect(() => server.fence('bad name', 1)).toThrow(/shard name/);
  });
});
