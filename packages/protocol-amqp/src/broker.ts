import { randomUUID } from 'node:crypto';
import {
  decodeTopic,
  DEFAULT_SHARD_CONFIG,
  ErrorCode,
  isRobustMQError,
  shardConfigOf,
  shardName,
  storedCompression,
  TopicCatalog,
  TOPICS_PREFIX,
  TopicViews,
  validateTopicName,
  type BrokerCluster,
  type BrokerContext,
  type Logger,
  type Message,
  type MetaWatch,
  type Principal,
  type RecordCompression,
} from '@robustmq/core';
import { AttachedLinks, type AttachStamp, type LinkPeers } from './attached-links.js';
import type { AddressKind, AmqpSettings } from './config.js';
import { AmqpHeader, withHeader } from './message-format.js';
import { asError, ShardLog, type MessageLog } from './message-log.js';
import { MessageQueue, type AckState, type ConsumedQueue, type Entry } from './message-queue.js';
import type { AmqpMetrics } from './metrics.js';
import type { RecordCodec } from '@robustmq/core';
import { AMQP, QueuesAcrossBrokers } from './queues-across-brokers.js';
import { TemporaryLog, TemporaryLogElsewhere } from './temporary-log.js';

/** A link or connection refused with an AMQP error condition. */
export class AmqpRefusal extends Error {
  override name = 'AmqpRefusal';
  constructor(
    readonly condition: string,
    description: string,
  ) {
    super(description);
  }
}

/** An address after the address model has been applied. */
export interface ResolvedAddress {
  /** The topic in the unified namespace, or a temporary queue's name. */
  name: string;
  kind: AddressKind | 'temporary';
}

/** An open link, as the admin API lists it. */
export interface LinkView {
  id: string;
  connection: string;
  address: string;
  role: 'sender' | 'receiver';
  credit(): number;
  unsettled(): number;
  /** The stored topic the link sends to or takes from, once its address is checked; null for none. */
  topic: string | null;
  /** Detaches the link with `amqp:link:detach-forced`. */
  close(): void;
  /** Detaches the link with an error, as when its address is deleted. */
  end(condition: string, description: string): void;
}

const QUEUES_KEY = '/amqp/queues/';
const AMQP_ORIGIN = Object.freeze({ protocol: 'amqp' });
/** Between brokers: a link was attached, which takes an older attachment of its name elsewhere. */
const LINK_ATTACHED = 'amqp.link.attached';

/** A temporary address's name: the broker that made it, then a unique part. */
const TEMPORARY_NAME = /^amqp-tmp-(\d+)-[0-9a-f-]{36}$/;
/** Logs of temporary addresses on other brokers that messages were sent to lately. */
const MAX_TEMPORARIES_ELSEWHERE = 1024;

/** Sending to a temporary address whose link has closed. */
const gone = (name: string) => new AmqpRefusal('amqp:not-found', `temporary address ${name} is gone`);

/**
 * The node-wide AMQP state: which addresses exist, their logs, the shared queues, topic
 * subscriptions and temporary queues, and publishing into them.
 */
export class AmqpBroker {
  readonly catalog: TopicCatalog;
  /** Each address's `compression.type`, which its stored batches are written with. */
  private readonly compressions: TopicViews<RecordCompression>;
  readonly logger: Logger;
  readonly links = new Map<string, LinkView>();
  /** Attached links by client container and name, for link stealing (told across brokers). */
  readonly attachedLinks: AttachedLinks;
  readonly subscriptions = new Set<MessageQueue>();
  private readonly logs = new Map<string, ShardLog>();
  private readonly queues = new Map<string, Promise<MessageQueue>>();
  private readonly openQueues = new Map<string, MessageQueue>();
  private readonly temporaries = new Map<string, { log: TemporaryLog; queue: MessageQueue }>();
  private readonly temporariesElsewhere = new Map<string, TemporaryLogElsewhere>();
  /** In a cluster: each queue's owner, and links relayed to it. */
  private readonly acrossBrokers: QueuesAcrossBrokers | null;
  /** Temporary shards being deleted, which stopping waits for. */
  private readonly deleting = new Set<Promise<void>>();
  private readonly known = new Set<string>();
  private readonly ensuring = new Map<string, Promise<void>>();
  private readonly deadLetterName: string | null;
  /** Follows topic deletions, which end the addresses on them. */
  private readonly topicWatch: MetaWatch;
  private stopped = false;

  constructor(
    readonly settings: AmqpSettings,
    readonly context: BrokerContext,
    private readonly codec: RecordCodec,
    readonly metrics: AmqpMetrics,
  ) {
    this.logger = context.logger.child({ protocol: 'amqp' });
    this.catalog = context.topics ?? new TopicCatalog(context.meta, context.storage, { logger: this.logger });
    this.compressions = new TopicViews(context.meta, this.catalog, storedCompression, 'none');
    this.deadLetterName =
      settings.deadLetterAddress === undefined ? null : this.parse(settings.deadLetterAddress, []).name;
    this.acrossBrokers = context.cluster ? new QueuesAcrossBrokers(this, context.cluster) : null;
    this.attachedLinks = new AttachedLinks(context.cluster ? this.linkPeers(context.cluster) : null);
    this.topicWatch = context.meta.watch(TOPICS_PREFIX, (event) => {
      const name = (event.type === 'put' ? event.entry.key : event.key).slice(TOPICS_PREFIX.length);
      if (!this.known.has(name) && !this.queues.has(name) && !this.logs.has(name)) return;
      if (event.type === 'delete' || decodeTopic(event.entry.value).deletingSince !== undefined) {
        this.addressDeleted(name);
      }
    });
  }

  /**
   * Opens the queues that existed before a restart, so their messages are ready again; in a
   * cluster, those this broker owns, once it has joined.
   */
  async start(): Promise<void> {
    await TemporaryLog.deleteLeftovers(this.context.storage, this.context.nodeId, this.logger);
    if (this.acrossBrokers) {
      this.acrossBrokers.start();
      return;
    }
    for (const name of await this.storedQueues()) await this.queue(name);
  }

  private async storedQueues(): Promise<string[]> {
    const entries = await this.context.meta.list(QUEUES_KEY);
    return entries.map((entry) => entry.key.slice(QUEUES_KEY.length));
  }

  /** Stops delivering, then saves what each queue settled and delivered. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.topicWatch.close();
    this.compressions.stop();
    this.acrossBrokers?.stop();
    // Closed first, so that what they delivered is saved as it stands.
    for (const queue of this.openQueues.values()) queue.close();
    await Promise.all([...this.openQueues.values()].map((queue) => queue.flush()));
    for (const queue of this.subscriptions) queue.close();
    for (const name of [...this.temporaries.keys()]) this.deleteTemporary(name);
    await Promise.all([...this.deleting]);
  }

  /**
   * The other AMQP brokers, told of each link attached here (a stealing attach may reach any of
   * them) and telling this one of theirs.
   */
  private linkPeers(cluster: BrokerCluster): LinkPeers {
    cluster.handle(LINK_ATTACHED, (body) => {
      const { k, s } = body as { k: string; s: AttachStamp };
      this.attachedLinks.attachedElsewhere(k, s);
      return Promise.resolve({});
    });
    return {
      nodeId: cluster.nodeId,
      tell: (key, stamp) => {
        for (const peer of cluster.peers(AMQP)) {
          cluster
            .call(peer, LINK_ATTACHED, { k: key, s: stamp }, { deadlineMs: 5000 })
            .catch((error: unknown) => {
              this.logger.warn(
                { err: error, broker: peer },
                'another broker was not told of an attached link',
              );
            });
        }
      },
    };
  }

  /**
   * Applies the address model: a configured prefix names the kind, else a `queue` or `topic`
   * capability on the terminus, else the configured default. Temporary addresses are used as
   * they are.
   */
  parse(address: string, capabilities: readonly string[]): ResolvedAddress {
    if (this.temporaries.has(address) || TEMPORARY_NAME.test(address)) {
      return { name: address, kind: 'temporary' };
    }
    const { queuePrefix, topicPrefix } = this.settings;
    let name = address;
    let kind: AddressKind = this.settings.defaultAddressKind;
    if (address.startsWith(queuePrefix)) {
      name = address.slice(queuePrefix.length);
      kind = 'queue';
    } else if (address.startsWith(topicPrefix)) {
      name = address.slice(topicPrefix.length);
      kind = 'topic';
    } else if (capabilities.includes('topic')) {
      kind = 'topic';
    } else if (capabilities.includes('queue')) {
      kind = 'queue';
    }
    try {
      validateTopicName(name);
    } catch {
      throw new AmqpRefusal(
        'amqp:invalid-field',
        `invalid address ${JSON.stringify(address)}: a name of 1 to 249 of A-Z a-z 0-9 . _ - after an optional prefix`,
      );
    }
    return { name, kind };
  }

  /** Checks `action` on the address for `principal`; refuses with unauthorized-access. */
  async authorize(
    principal: Principal,
    action: 'publish' | 'subscribe',
    address: ResolvedAddress,
  ): Promise<void> {
    if (address.kind === 'temporary') return;
    if (!(await this.context.auth.authorize(principal, action, address.name))) {
      this.metrics.refused('forbidden');
      throw new AmqpRefusal('amqp:unauthorized-access', `not allowed to ${action} on ${address.name}`);
    }
  }

  /** Makes sure the topic behind an address exists, creating it when `auto_create` allows. */
  ensure(address: ResolvedAddress, principal: Principal): Promise<void> {
    if (address.kind === 'temporary' || this.known.has(address.name)) return Promise.resolve();
    // Links attaching together to a new address wait for the one creation.
    let pending = this.ensuring.get(address.name);
    if (!pending) {
      pending = this.create(address, principal).finally(() => this.ensuring.delete(address.name));
      this.ensuring.set(address.name, pending);
    }
    return pending;
  }

  private async create(address: ResolvedAddress, principal: Principal): Promise<void> {
    let topic = await this.catalog.get(address.name);
    if (!topic) {
      if (!this.settings.autoCreate) {
        throw new AmqpRefusal('amqp:not-found', `no address ${address.name} (auto_create is off)`);
      }
      if (!(await this.context.auth.authorize(principal, 'create', address.name))) {
        this.metrics.refused('forbidden');
        throw new AmqpRefusal('amqp:unauthorized-access', `not allowed to create ${address.name}`);
      }
      try {
        topic = await this.catalog.create({
          name: address.name,
          partitions: 1,
          storageClass: 'file',
          retentionMs: DEFAULT_SHARD_CONFIG.retentionMs,
          retentionBytes: null,
          configs: {},
        });
        this.logger.info({ address: address.name }, 'address created');
      } catch (error) {
        if (!isRobustMQError(error, ErrorCode.AlreadyExists)) throw error;
        topic = await this.catalog.get(address.name);
      }
    }
    // The catalog entry is written before the shards: a topic being created elsewhere may lack one yet.
    const shard = shardName(address.name, 0);
    try {
      await this.context.storage.shardInfo(shard);
    } catch (error) {
      if (!isRobustMQError(error, ErrorCode.NotFound) || !topic) throw error;
      try {
        await this.context.storage.createShard(shard, shardConfigOf(topic));
      } catch (again) {
        if (!isRobustMQError(again, ErrorCode.AlreadyExists)) throw again;
      }
    }
    this.known.add(address.name);
  }

  private log(address: ResolvedAddress): MessageLog {
    if (address.kind === 'temporary') {
      const temporary = this.temporaries.get(address.name);
      if (temporary) return temporary.log;
      return this.temporaryElsewhere(address.name);
    }
    let log = this.logs.get(address.name);
    if (!log) {
      log = new ShardLog(
        this.context.storage,
        this.codec,
        address.name,
        shardName(address.name, 0),
        (topic) => this.compressions.of(topic),
      );
      this.logs.set(address.name, log);
    }
    return log;
  }

  /**
   * The log of a temporary address another broker of the cluster made (a reply-to address): the
   * messages go to its shard, where that broker's queue reads them.
   */
  private temporaryElsewhere(name: string): TemporaryLogElsewhere {
    const node = Number(TEMPORARY_NAME.exec(name)?.[1] ?? this.context.nodeId);
    if (node === this.context.nodeId || !this.acrossBrokers) throw gone(name);
    let log = this.temporariesElsewhere.get(name);
    if (!log) {
      if (this.temporariesElsewhere.size >= MAX_TEMPORARIES_ELSEWHERE) {
        this.temporariesElsewhere.delete(this.temporariesElsewhere.keys().next().value!);
      }
      log = new TemporaryLogElsewhere(this.context.storage, this.codec, name, node);
      this.temporariesElsewhere.set(name, log);
    }
    return log;
  }

  /** The queue a consumer's link takes messages from: in a cluster, relayed from its owner. */
  async consumerQueue(name: string): Promise<ConsumedQueue> {
    return this.acrossBrokers ? this.acrossBrokers.queue(name) : await this.queue(name);
  }

  /** Makes sure the queue on an address is open (at its owner, in a cluster). */
  async touchQueue(name: string): Promise<void> {
    if (this.acrossBrokers) await this.acrossBrokers.touch(name);
    else await this.queue(name);
  }

  /**
   * In a cluster, after the live brokers changed: closes the queues another broker owns now, and
   * opens the stored queues this one owns.
   */
  async followOwners(): Promise<void> {
    const across = this.acrossBrokers;
    if (!across || this.stopped) return;
    for (const name of [...this.queues.keys()]) {
      const owner = across.ownerOf(name);
      if (owner !== null && owner !== this.context.nodeId) await this.closeQueue(name);
    }
    for (const name of await this.storedQueues()) {
      if (across.ownerOf(name) !== this.context.nodeId) continue;
      // One that cannot open now opens with its first consumer.
      await this.queue(name).catch((error: unknown) =>
        this.logger.info({ err: error, queue: name }, 'a queue owned here did not open yet'),
      );
    }
  }

  /**
   * The topic behind an address was deleted (through Kafka, the admin API or another broker): its
   * links are detached with `amqp:resource-deleted`, as RabbitMQ does for a deleted queue, its
   * shared queue closes and forgets what was settled (a topic made again starts empty), and the
   * next attach to the address makes it again where `auto_create` allows.
   */
  private addressDeleted(name: string): void {
    this.known.delete(name);
    this.logs.delete(name);
    let detached = 0;
    for (const link of [...this.links.values()]) {
      if (link.topic !== name) continue;
      link.end('amqp:resource-deleted', `address ${name} was deleted`);
      detached++;
    }
    const queue = this.openQueues.get(name);
    this.queues.delete(name);
    this.openQueues.delete(name);
    queue?.close();
    if (queue) {
      this.context.meta.delete(QUEUES_KEY + name).catch((error: unknown) => {
        this.logger.warn({ err: error, queue: name }, 'the settled state of a deleted queue was not removed');
      });
    }
    this.logger.info({ address: name, links: detached }, 'address deleted; its links detached');
  }

  /** Stops serving a queue here (another broker owns it now), once what was settled is saved. */
  async closeQueue(name: string): Promise<void> {
    if (!this.queues.delete(name)) return;
    // One still opening closes itself when done, unawaited: it may be waiting for the broker
    // that asks, to let go of it.
    const queue = this.openQueues.get(name);
    if (!queue) return;
    this.openQueues.delete(name);
    // Its consumers leave first, so that nothing more is delivered from here.
    this.acrossBrokers?.closed(name);
    queue.close();
    await queue.flush();
    this.logger.info({ queue: name }, 'queue handed over to its owner');
  }

  /** The shared queue on an address (competing consumers, acks persisted). */
  queue(name: string): Promise<MessageQueue> {
    let queue = this.queues.get(name);
    if (!queue) {
      const opening: Promise<MessageQueue> = this.openQueue(name).then((opened) => {
        if (this.queues.get(name) === opening) {
          this.openQueues.set(name, opened);
          return opened;
        }
        // Let go while it opened (another broker took it over): it never served here.
        opened.close();
        throw new AmqpRefusal('amqp:resource-limit-exceeded', `queue ${name} moved to another broker`);
      });
      queue = opening;
      this.queues.set(name, queue);
      queue.catch(() => {
        if (this.queues.get(name) === opening) this.queues.delete(name);
      });
    }
    return queue;
  }

  private async openQueue(name: string): Promise<MessageQueue> {
    await this.acrossBrokers?.takeOver(name);
    const key = QUEUES_KEY + name;
    const meta = this.context.meta;
    const encoder = new TextEncoder();
    const queue = new MessageQueue(name, this.log({ name, kind: 'queue' }), {
      window: this.settings.queueMemoryMessages,
      maxBytes: this.settings.queueMemoryBytes,
      fromEnd: false,
      persistence: {
        async load() {
          const entry = await meta.get(key);
          return entry ? (JSON.parse(new TextDecoder().decode(entry.value)) as AckState) : null;
        },
        async save(state) {
          await meta.put(key, encoder.encode(JSON.stringify(state)));
        },
      },
      deadLetter:
        this.deadLetterName === null ? null : (entry, reason) => this.deadLetter(name, entry, reason),
      onDropped: (reason, count) => this.metrics.dropped(reason, count),
      logger: this.logger,
    });
    await queue.open();
    return queue;
  }

  /**
   * A subscription on a topic: its own cursor from the end, kept while the link lives. It sees
   * every message appended from this call on; `open` it once the address is checked.
   */
  subscribe(name: string): MessageQueue {
    const queue = new MessageQueue(name, this.log({ name, kind: 'topic' }), {
      window: this.settings.queueMemoryMessages,
      maxBytes: this.settings.queueMemoryBytes,
      fromEnd: true,
      persistence: null,
      deadLetter:
        this.deadLetterName === null ? null : (entry, reason) => this.deadLetter(name, entry, reason),
      onDropped: (reason, count) => this.metrics.dropped(reason, count),
      logger: this.logger,
    });
    queue.listen();
    this.subscriptions.add(queue);
    return queue;
  }

  unsubscribe(queue: MessageQueue): void {
    queue.close();
    this.subscriptions.delete(queue);
  }

  /** A fresh name for a temporary address. */
  temporaryName(): string {
    return `amqp-tmp-${this.context.nodeId}-${randomUUID()}`;
  }

  /**
   * A temporary queue for a dynamic terminus, on a storage shard of its own; it ends with the link
   * that made it. Its name is known (and may be sent to) at once; messages wait for the shard.
   */
  async createTemporary(name: string): Promise<MessageQueue> {
    const log = new TemporaryLog(this.context.storage, this.codec, name, this.context.nodeId, this.logger);
    const queue = new MessageQueue(name, log, {
      window: this.settings.queueMemoryMessages,
      maxBytes: this.settings.queueMemoryBytes,
      fromEnd: false,
      persistence: null,
      deadLetter: null,
      onDropped: (reason, count) => this.metrics.dropped(reason, count),
      logger: this.logger,
    });
    this.temporaries.set(name, { log, queue });
    try {
      await log.created;
    } catch (error) {
      if (this.temporaries.get(name)?.log === log) this.temporaries.delete(name);
      queue.close();
      throw error;
    }
    // Deleted meanwhile (its link closed): the queue stays closed.
    if (this.temporaries.get(name)?.queue === queue) await queue.open();
    return queue;
  }

  /** The queue of a temporary address, for a second consumer of it. */
  temporary(name: string): MessageQueue | undefined {
    return this.temporaries.get(name)?.queue;
  }

  deleteTemporary(name: string): void {
    const temporary = this.temporaries.get(name);
    if (!temporary) return;
    this.temporaries.delete(name);
    temporary.queue.close();
    const deletion = temporary.log.delete().finally(() => this.deleting.delete(deletion));
    this.deleting.add(deletion);
  }

  /** Stores a message on an address; resolves once it is durable. Then routes it live to other protocols. */
  publish(address: ResolvedAddress, message: Message): Promise<void> {
    return new Promise((resolve, reject) =>
      this.publishThen(address, message, (error) => (error === null ? resolve() : reject(asError(error)))),
    );
  }

  /** {@link publish} with a callback: `done(null)` once durable, `done(error)` when refused or failed. */
  publishThen(address: ResolvedAddress, message: Message, done: (error: unknown) => void): void {
    if (this.stopped) {
      done(new AmqpRefusal('amqp:connection:forced', 'the node is stopping'));
      return;
    }
    let log: MessageLog;
    try {
      log = this.log(address);
    } catch (error) {
      done(error);
      return;
    }
    log.appendThen(message, (error) => {
      if (error !== null) {
        if (!isRobustMQError(error, ErrorCode.NotFound)) done(error);
        else if (address.kind === 'temporary') {
          this.temporariesElsewhere.delete(address.name);
          done(gone(address.name));
        } else {
          // Deleted before the watch said so, or its shard lost: the catalog tells which.
          this.known.delete(address.name);
          void this.catalog.get(address.name).then(
            (topic) => (topic === null ? this.addressDeleted(address.name) : undefined),
            () => {},
          );
          done(error);
        }
        return;
      }
      if (address.kind !== 'temporary') {
        try {
          this.context.router.publish(message, AMQP_ORIGIN);
        } catch (routeError) {
          this.logger.error({ err: routeError, address: address.name }, 'router refused an AMQP message');
        }
      }
      done(null);
    });
  }

  private async deadLetter(from: string, entry: Entry, reason: string): Promise<void> {
    const name = this.deadLetterName!;
    const address: ResolvedAddress = { name, kind: 'queue' };
    await this.ensure(address, { username: null, superuser: true });
    await this.touchQueue(name);
    const message = withHeader({ ...entry.message, topic: name }, AmqpHeader.deadLetteredFrom, from);
    await this.publish(address, message);
    this.logger.debug({ queue: from, offset: entry.offset, reason }, 'message dead-lettered');
  }

  /** Shared queues, topic subscriptions and temporary queues, for metrics and the admin API. */
  allQueues(): Array<{ id: string; kind: string; queue: MessageQueue }> {
    const all: Array<{ id: string; kind: string; queue: MessageQueue }> = [];
    for (const [name, queue] of this.openQueues) all.push({ id: name, kind: 'queue', queue });
    for (const [name, { queue }] of this.temporaries) all.push({ id: name, kind: 'temporary', queue });
    return all;
  }
}
