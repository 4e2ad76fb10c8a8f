import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_PARTITIONS } from '../src/index.js';
import { kafkaPythonAdmin, kcat, removeServerDir, startServer, type Server } from './helpers/server.js';

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    await server.stop();
    removeServerDir(server.dir);
  }
});

async function start(engine: string, dir?: string): Promise<Server> {
  const server = await startServer({ engine, ...(dir !== undefined && { dir }) });
  servers.push(server);
  return server;
}

/** Stops a server and starts it again on the same data. */
async function restart(server: Server, engine: string): Promise<Server> {
  await server.stop();
  servers.splice(servers.indexOf(server), 1);
  return start(engine, server.dir);
}

/** The journal's shard directories of topic `topic` (a `/` in a shard name is stored as %2F). */
function shardDirs(server: Server, topic: string): string[] {
  const shards = join(server.dir, 'data', 'storage', 'shards');
  if (!existsSync(shards)) return [];
  return readdirSync(shards).filter((name) => name.startsWith(`${topic}%2F`));
}

/** Consumes partition 0 of `topic` from the start to its end, one value per line. */
function consume(server: Server, topic: string, partition = 0): string[] {
  const result = kcat([
    '-C',
    '-b',
    server.broker,
    '-t',
    topic,
    '-p',
    String(partition),
    '-o',
    'beginning',
    '-e',
    '-q',
  ]);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('topics whose shards are missing', { timeout: 60_000 }, () => {
  it('get empty shards again after a restart of the memory engine: produce and list offsets work', async () => {
    const engine = '@robustmq/storage-memory';
    let server = await start(engine);
    const first = kcat(['-P', '-b', server.broker, '-t', 'f1', '-p', '0'], 'before\n');
    expect(first.status, first.stderr).toBe(0);
    expect(consume(server, 'f1')).toEqual(['before']);

    // The catalog keeps f1; the memory engine, not durable by design, comes back without its shard.
    server = await restart(server, engine);
    const offsets = kcat(['-Q', '-b', server.broker, '-t', 'f1:0:-1']);
    expect(offsets.status, offsets.stderr).toBe(0);
    expect(offsets.stdout).toMatch(/f1 \[0\] offset 0/);
    // The repair is in the node's log, with the topic it was made for.
    await vi.waitFor(() =>
      expect(server.logs).toContainEqual(
        expect.objectContaining({
          topic: 'f1',
          msg: expect.stringMatching(/^topic partitions without a shard/),
        }),
      ),
    );
    const again = kcat(['-P', '-b', server.broker, '-t', 'f1', '-p', '0'], 'after\n');
    expect(again.status, again.stderr).toBe(0);
    expect(consume(server, 'f1')).toEqual(['after']);
  });

  it('roll back a CreateTopics that failed part-way, so that a retry succeeds', async () => {
    const engine = '@robustmq/journal';
    const server = await start(engine);
    // A file where the journal puts partition 3's shard directory makes that one creation fail,
    // as a full disk or a lack of file descriptors would, after partitions 0 to 2 were made.
    const blocker = join(server.dir, 'data', 'storage', 'shards', 'r1%2F3');
    writeFileSync(blocker, 'not a shard');
    const failed = kafkaPythonAdmin(server.broker, { create: { name: 'r1', partitions: 6 } });
    expect(failed.ok).toBe(false);
    expect(kafkaPythonAdmin(server.broker, { topics: true }).topics).not.toContain('r1');
    expect(shardDirs(server, 'r1')).toEqual(['r1%2F3']);

    rmSync(blocker);
    expect(kafkaPythonAdmin(server.broker, { create: { name: 'r1', partitions: 6 } })).toEqual({ ok: true });
    expect(shardDirs(server, 'r1')).toHaveLength(6);
    const produced = kcat(['-P', '-b', server.broker, '-t', 'r1', '-p', '5'], 'last partition\n');
    expect(produced.status, produced.stderr).toBe(0);
    expect(consume(server, 'r1', 5)).toEqual(['last partition']);
  });

  it('roll back a topic auto-created by a produce whose shard could not be made', async () => {
    const server = await start('@robustmq/journal');
    const blocker = join(server.dir, 'data', 'storage', 'shards', 'auto%2F0');
    writeFileSync(blocker, 'not a shard');
    const failed = kcat(
      ['-P', '-b', server.broker, '-t', 'auto', '-p', '0', '-X', 'message.timeout.ms=3000'],
      'lost\n',
    );
    expect(failed.status).not.toBe(0);
    expect(kafkaPythonAdmin(server.broker, { topics: true }).topics).not.toContain('auto');

    // Once the disk is fine again, the next produce creates the topic and is stored.
    rmSync(blocker);
    const produced = kcat(['-P', '-b', server.broker, '-t', 'auto', '-p', '0'], 'kept\n');
    expect(produced.status, produced.stderr).toBe(0);
    expect(consume(server, 'auto')).toEqual(['kept']);
  });

  it('refuse a CreateTopics over the partition limit at once, creating nothing', async () => {
    const server = await start('@robustmq/journal');
    for (const partitions of [DEFAULT_MAX_PARTITIONS + 1, 2 ** 31 - 1]) {
      const refused = kafkaPythonAdmin(server.broker, { create: { name: 'huge', partitions } });
      expect(refused).toMatchObject({ ok: false });
      expect(refused.message).toMatch(/at most 10000 partitions/);
    }
    expect(kafkaPythonAdmin(server.broker, { topics: true }).topics).not.toContain('huge');
    expect(shardDirs(server, 'huge')).toEqual([]);
  });
});
