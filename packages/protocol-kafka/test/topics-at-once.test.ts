import {
  encodeTopic,
  ErrorCode,
  isRobustMQError,
  RobustMQError,
  silentLogger,
  TopicCatalog,
  topicKey,
  type Logger,
  type NewTopic,
  type ShardConfig,
  type ShardInfo,
} from '@robustmq/core';
import { MemoryStorageEngine } from '@robustmq/storage-memory';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handleCreatePartitions } from '../src/broker/handlers/create-partitions.js';
import { handleCreateTopics } from '../src/broker/handlers/create-topics.js';
import { handleDeleteTopics } from '../src/broker/handlers/delete-topics.js';
import { KafkaErrorCode } from '../src/codec/index.js';
import { recordingLogger } from './helpers/faulty-node.js';
import { startInProcessBroker, type InProcessBroker } from './helpers/in-process-broker.js';

// Admin requests about one topic from several clients at once (test harnesses deleting and
// creating the same topic, two operators): each gets a Kafka answer, and no shard outlives its topic
// or is taken by the next topic of that name.

/** A memory engine whose creation or deletion of one shard can be held at the door. */
class HeldStorage extends MemoryStorageEngine {
  /** Every shard creation asked for, in order. */
  readonly creations: string[] = [];
  private readonly gates = new Map<string, { reached: () => void; opened: Promise<void> }>();

  /** Holds the next `operation` on `shard`: `reached` once it comes, until `release` is called. */
  hold(operation: 'create' | 'delete', shard: string): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const arrived = new Promise<void>((resolve) => (reached = resolve));
    const opened = new Promise<void>((resolve) => (release = resolve));
    this.gates.set(`${operation} ${shard}`, { reached, opened });
    return { reached: arrived, release };
  }

  override async createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    this.creations.push(shard);
    await this.door('create', shard);
    return super.createShard(shard, config);
  }

  override async deleteShard(shard: string): Promise<void> {
    await this.door('delete', shard);
    return super.deleteShard(shard);
  }

  private async door(operation: 'create' | 'delete', shard: string): Promise<void> {
    const gate = this.gates.get(`${operation} ${shard}`);
    if (gate === undefined) return;
    this.gates.delete(`${operation} ${shard}`);
    gate.reached();
    await gate.opened;
  }
}

let storage: HeldStorage;
let node: InProcessBroker;

beforeEach(async () => {
  storage = new HeldStorage();
  node = await startInProcessBroker(storage);
});

afterEach(async () => {
  await node.stop();
  await storage.close();
});

const createTopic = (name: string, numPartitions: number) =>
  handleCreateTopics(
    {
      topics: [{ name, numPartitions, replicationFactor: 1, assignments: [], configs: [] }],
      timeoutMs: 1000,
    },
    node.context(19, 7),
  );

const deleteTopic = (name: string) =>
  handleDeleteTopics({ topicNames: [name], timeoutMs: 1000 }, node.context(20, 4));

const growTopic = (name: string, count: number) =>
  handleCreatePartitions(
    { topics: [{ name, count, assignments: null }], timeoutMs: 1000, validateOnly: false },
    node.context(37, 3),
  );

/** Whether the storage has shard `shard`. */
async function hasShard(shard: string): Promise<boolean> {
  try {
    await storage.shardInfo(shard);
    return true;
  } catch (error) {
    if (isRobustMQError(error, ErrorCode.NotFound)) return false;
    throw error;
  }
}

/** Lets whatever the event loop has ready run, so a request that is not held gets as far as it can. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('admin requests about one topic at once', () => {
  it('two DeleteTopics of one topic: one deletes it, the other is told it does not exist', async () => {
    expect((await createTopic('twice', 2)).topics[0]!.errorCode).toBe(0);
    const answers = await Promise.all([deleteTopic('twice'), deleteTopic('twice')]);
    const codes = answers.map((answer) => answer.responses[0]!.errorCode).sort((a, b) => a - b);
    expect(codes).toEqual([KafkaErrorCode.none, KafkaErrorCode.unknownTopicOrPartition]);
    expect(await hasShard('twice/0')).toBe(false);
    expect(await hasShard('twice/1')).toBe(false);
  });

  it('a DeleteTopics while CreatePartitions adds partitions removes the new ones too', async () => {
    expect((await createTopic('grown', 2)).topics[0]!.errorCode).toBe(0);
    const adding = storage.hold('create', 'grown/2');
    const grown = growTopic('grown', 3);
    await adding.reached;
    const deleted = deleteTopic('grown');
    await settle();
    adding.release();
    expect((await grown).results[0]!.errorCode).toBe(0);
    expect((await deleted).responses[0]!.errorCode).toBe(0);
    for (const partition of [0, 1, 2]) expect(await hasShard(`grown/${partition}`)).toBe(false);
  });

  it('a CreateTopics while a DeleteTopics of that name removes shards gets a topic of its own, empty', async () => {
    expect((await createTopic('again', 1)).topics[0]!.errorCode).toBe(0);
    await storage.append('again/0', [{ recordCount: 1, maxTimestamp: 1, data: Buffer.from('old') }]);
    const removing = storage.hold('delete', 'again/0');
    const deleted = deleteTopic('again');
    await removing.reached;
    const created = createTopic('again', 1);
    await settle();
    removing.release();
    expect((await deleted).responses[0]!.errorCode).toBe(0);
    expect((await created).topics[0]!.errorCode).toBe(0);
    // The new topic's partition is there, without the old topic's record.
    expect((await storage.shardInfo('again/0')).nextOffset).toBe(0);
  });

  it('a listing of topics during a CreateTopics waits for it rather than make its shards too', async () => {
    const making = storage.hold('create', 'listed/1');
    const created = createTopic('listed', 2);
    await making.reached;
    const listed = node.broker.catalog.list();
    await settle();
    making.release();
    expect((await created).topics[0]!.errorCode).toBe(0);
    expect((await listed).find((topic) => topic.name === 'listed')?.partitions).toBe(2);
    expect(storage.creations.filter((shard) => shard.startsWith('listed/'))).toEqual([
      'listed/0',
      'listed/1',
    ]);
  });

  it('another broker looking a topic up while this one creates it makes the shards without warning of a loss', async () => {
    const lines: Array<{ level: string; msg: string }> = [];
    const keep =
      (level: string) =>
      (...args: unknown[]) =>
        void lines.push({ level, msg: String(args.find((a) => typeof a === 'string')) });
    const logger: Logger = { ...silentLogger, info: keep('info'), warn: keep('warn'), child: () => logger };
    const elsewhere = new TopicCatalog(node.meta, storage, { logger });
    const making = storage.hold('create', 'young/0');
    const created = createTopic('young', 1);
    await making.reached;
    const seen = await elsewhere.get('young');
    making.release();
    expect((await created).topics[0]!.errorCode).toBe(0);
    expect(seen?.partitions).toBe(1);
    expect(await hasShard('young/0')).toBe(true);
    expect(lines.filter((line) => line.level === 'warn')).toEqual([]);
    expect(lines).toContainEqual({
      level: 'info',
      msg: 'partitions of a topic just created not there yet; creating them here',
    });
  });

  it("a CreateTopics waits for a deletion of that name through the node's other protocols, sharing its catalog", async () => {
    await node.stop();
    node = await startInProcessBroker(storage, {}, { sharedTopics: true });
    const shared = node.topics!;
    expect(node.broker.catalog).toBe(shared);
    expect((await createTopic('across', 1)).topics[0]!.errorCode).toBe(0);
    await storage.append('across/0', [{ recordCount: 1, maxTimestamp: 1, data: Buffer.from('old') }]);
    // The admin API or AMQP deleting it, through the node's catalog.
    const removing = storage.hold('delete', 'across/0');
    const deleted = shared.delete('across');
    await removing.reached;
    const created = createTopic('across', 1);
    await settle();
    removing.release();
    expect(await deleted).toBe(true);
    expect((await created).topics[0]!.errorCode).toBe(0);
    expect((await storage.shardInfo('across/0')).nextOffset).toBe(0);
  });
});

describe('one topic deleted through one broker and created or deleted through another at once', () => {
  // Two brokers of a cluster: one meta service and one journal, a topic catalog each.
  const otherBroker = (logger: Logger = silentLogger) => new TopicCatalog(node.meta, storage, { logger });
  const withRecord = async (shard: string) =>
    storage.append(shard, [{ recordCount: 1, maxTimestamp: 1, data: Buffer.from('old') }]);

  it('a CreateTopics waits for the deletion, then gets a topic of its own, whole and empty', async () => {
    const other = otherBroker();
    expect((await createTopic('crossed', 2)).topics[0]!.errorCode).toBe(0);
    for (const partition of [0, 1]) await withRecord(`crossed/${partition}`);
    const removing = storage.hold('delete', 'crossed/1');
    const deleted = other.delete('crossed');
    await removing.reached;
    // Half deleted: this broker knows no such topic.
    expect(await node.broker.catalog.get('crossed')).toBeNull();
    expect((await node.broker.catalog.list()).map((topic) => topic.name)).not.toContain('crossed');
    let createdFirst = false;
    const created = createTopic('crossed', 2).then((answer) => ((createdFirst = true), answer));
    await settle();
    expect(createdFirst).toBe(false);
    removing.release();
    expect(await deleted).toBe(true);
    expect((await created).topics[0]!.errorCode).toBe(0);
    for (const partition of [0, 1])
      expect((await storage.shardInfo(`crossed/${partition}`)).nextOffset).toBe(0);
  });

  it('a DeleteTopics or CreatePartitions meanwhile is told the topic does not exist', async () => {
    const other = otherBroker();
    expect((await createTopic('going', 2)).topics[0]!.errorCode).toBe(0);
    const removing = storage.hold('delete', 'going/1');
    const deleted = other.delete('going');
    await removing.reached;
    const grown = growTopic('going', 3);
    const deletedHere = deleteTopic('going');
    expect((await grown).results[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
    removing.release();
    expect(await deleted).toBe(true);
    expect((await deletedHere).responses[0]!.errorCode).toBe(KafkaErrorCode.unknownTopicOrPartition);
    for (const partition of [0, 1, 2]) expect(await hasShard(`going/${partition}`)).toBe(false);
  });

  /** What a stopped broker left: the entry of `left` marked two minutes ago, its second shard still there. */
  async function leftByStoppedBroker(): Promise<NewTopic> {
    await storage.createShard('left/1');
    await withRecord('left/1');
    const topic: NewTopic = {
      name: 'left',
      partitions: 2,
      storageClass: 'memory',
      retentionMs: null,
      retentionBytes: null,
      configs: {},
    };
    const marked = { ...topic, createdAt: Date.now() - 600_000, deletingSince: Date.now() - 120_000 };
    await node.meta.put(topicKey('left'), encodeTopic(marked));
    return topic;
  }

  const finishing = expect.objectContaining({
    level: 'warn',
    msg: 'finishing the deletion of a topic that a stopped node began',
  });

  it('a deletion left part-way by a stopped broker is finished by the next creation of the name', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const other = otherBroker(recordingLogger(lines));
    const topic = await leftByStoppedBroker();
    const created = await other.create({ ...topic, partitions: 1 });
    expect(created.partitions).toBe(1);
    expect((await storage.shardInfo('left/0')).nextOffset).toBe(0);
    expect(await hasShard('left/1')).toBe(false);
    expect(lines).toContainEqual(finishing);
  });

  it('a deletion left part-way by a stopped broker is finished once a listing meets it', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const other = otherBroker(recordingLogger(lines));
    await leftByStoppedBroker();
    expect((await other.list()).map((topic) => topic.name)).not.toContain('left');
    for (let i = 0; i < 40 && (await node.meta.get(topicKey('left'))) !== null; i++) await settle();
    expect(await node.meta.get(topicKey('left'))).toBeNull();
    expect(await hasShard('left/1')).toBe(false);
    expect(lines).toContainEqual(finishing);
  });

  it('a deletion that storage failed part-way is finished by the next try at once', async () => {
    expect((await createTopic('failing', 2)).topics[0]!.errorCode).toBe(0);
    const deleteShard = vi
      .spyOn(storage, 'deleteShard')
      .mockRejectedValueOnce(new RobustMQError(ErrorCode.Unavailable, 'journal node unreachable'));
    await expect(node.broker.catalog.delete('failing')).rejects.toThrow(/unreachable/);
    deleteShard.mockRestore();
    expect(await node.broker.catalog.get('failing')).toBeNull();
    const started = Date.now();
    expect((await createTopic('failing', 1)).topics[0]!.errorCode).toBe(0);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await hasShard('failing/1')).toBe(false);
  });
});
