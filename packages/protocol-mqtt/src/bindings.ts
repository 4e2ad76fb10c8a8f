import {
  DEFAULT_SHARD_CONFIG,
  decodeTopic,
  ErrorCode,
  isRobustMQError,
  shardName,
  storedCompression,
  topicKey,
  TopicCatalog,
  topicMatchesFilter,
  type BrokerContext,
  type Logger,
  type Message,
  type MetaWatch,
  type Topic,
} from '@robustmq/core';
import type { BindingSettings } from './config.js';
import { headersOf } from './message-headers.js';
import { partitionOf } from './partitioner.js';
import type { Publication } from './publication.js';
import { ShardAppender } from './shard-appender.js';
import { topicNameProblem } from './topic-names.js';

/** One stored topic that bindings write to, with the filters bound to it. */
interface BoundTopic {
  name: string;
  filters: string[];
  /** Filters whose retained messages are appended too. */
  retainedFilters: string[];
  /** One appender per partition; empty while the topic does not exist. */
  appenders: ShardAppender[];
}

const keyDecoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The `[[mqtt.bindings]]` of the MQTT plugin: MQTT messages on a bound filter are appended to the
 * stored topic (record key = the MQTT topic name, partition = its murmur2 hash), and records of a
 * bound stored topic that other protocols publish come back to subscribers of the MQTT topic their
 * key names. The mapping is written down in docs/cross-protocol.md.
 */
export class TopicBindings {
  private readonly topics = new Map<string, BoundTopic>();
  private readonly watches: MetaWatch[] = [];
  private readonly catalog: TopicCatalog;

  constructor(
    private readonly bindings: readonly BindingSettings[],
    private readonly context: BrokerContext,
    private readonly logger: Logger,
  ) {
    for (const binding of bindings) {
      let topic = this.topics.get(binding.topic);
      if (!topic) {
        topic = { name: binding.topic, filters: [], retainedFilters: [], appenders: [] };
        this.topics.set(binding.topic, topic);
      }
      topic.filters.push(binding.filter);
      if (binding.retained) topic.retainedFilters.push(binding.filter);
    }
    this.catalog = context.topics ?? new TopicCatalog(context.meta, context.storage, { logger: this.logger });
  }

  /** Whether any binding is configured (the publish path skips this class when not). */
  get active(): boolean {
    return this.topics.size > 0;
  }

  /**
   * Creates the stored topics that do not exist yet (with the binding's partition count) and
   * follows their partition count and compression from then on.
   */
  async start(): Promise<void> {
    for (const bound of this.topics.values()) {
      const wanted = this.bindings.find((b) => b.topic === bound.name)!.partitions;
      let topic = await this.catalog.get(bound.name);
      if (!topic) {
        try {
          topic = await this.catalog.create({
            name: bound.name,
            partitions: wanted,
            storageClass: 'file',
            retentionMs: DEFAULT_SHARD_CONFIG.retentionMs,
            retentionBytes: null,
            configs: {},
          });
          this.logger.info(
            { topic: bound.name, partitions: wanted },
            'stored topic created for an MQTT binding',
          );
        } catch (error) {
          if (!isRobustMQError(error, ErrorCode.AlreadyExists)) throw error;
          topic = await this.catalog.get(bound.name);
        }
      }
      this.follow(bound, topic ?? null);
      const key = topicKey(bound.name);
      this.watches.push(
        this.context.meta.watch(key, (event) => {
          if ((event.type === 'put' ? event.entry.key : event.key) !== key) return;
          const now = event.type === 'put' ? decodeTopic(event.entry.value) : null;
          // A topic marked for deletion is gone for the binding, before its entry is.
          if (now !== null && now.deletingSince === undefined) this.follow(bound, now);
          else this.deleted(bound);
        }),
      );
    }
  }

  /**
   * Appends `publication` to every stored topic whose binding matches it. QoS 0 messages are
   * appended in the background (returns null); for QoS 1 and 2 the promise resolves once every
   * append is durable.
   */
  append(publication: Publication): Promise<void> | null {
    let writes: Array<Promise<void>> | null = null;
    let message: Message | null = null;
    for (const bound of this.topics.values()) {
      if (bound.appenders.length === 0) continue;
      const filters = publication.retain ? bound.retainedFilters : bound.filters;
      if (!filters.some((filter) => topicMatchesFilter(filter, publication.topic))) continue;
      message ??= {
        topic: bound.name,
        key: Buffer.from(publication.topic, 'utf8'),
        payload: publication.payload,
        headers: headersOf(publication.properties),
        timestamp: publication.timestamp,
      };
      const stored = bound.name === message.topic ? message : { ...message, topic: bound.name };
      const appender = bound.appenders[partitionOf(stored.key!, bound.appenders.length)]!;
      if (publication.qos === 0) appender.appendLater(stored);
      else (writes ??= []).push(this.appendTo(bound, appender, stored));
    }
    if (writes === null) return null;
    return writes.length === 1 ? writes[0]! : Promise.all(writes).then(() => {});
  }

  /**
   * The MQTT topic a message from another protocol is delivered on: for a record of a bound
   * stored topic whose key is an MQTT topic name matching one of that topic's filters, the key;
   * else the message's own topic.
   */
  deliveryTopic(message: Message): string {
    const bound = this.topics.get(message.topic);
    if (!bound || message.key === null) return message.topic;
    let name: string;
    try {
      name = keyDecoder.decode(message.key);
    } catch {
      return message.topic;
    }
    if (name.includes('\u0000') || topicNameProblem(name, Number.MAX_SAFE_INTEGER) !== null) {
      return message.topic;
    }
    return bound.filters.some((filter) => topicMatchesFilter(filter, name)) ? name : message.topic;
  }

  /** Stops following the topics and resolves once every append under way has finished. */
  async stop(): Promise<void> {
    for (const watch of this.watches) watch.close();
    this.watches.length = 0;
    await Promise.all(
      [...this.topics.values()].flatMap((bound) => bound.appenders.map((appender) => appender.settled())),
    );
  }

  /**
   * Appends a QoS 1 or 2 message. When its shard is missing, the catalog tells why: the topic was
   * deleted (before the watch said so), and the message is not stored, as any message once the
   * topic is gone; or it was being made (its entry comes before its shards, and the lookup waits
   * for them or makes them), and the message is appended again, once.
   */
  private async appendTo(bound: BoundTopic, appender: ShardAppender, message: Message): Promise<void> {
    try {
      await appender.append(message);
    } catch (error) {
      if (!isRobustMQError(error, ErrorCode.NotFound)) throw error;
      if ((await this.catalog.get(bound.name)) === null) this.deleted(bound);
      else await appender.append(message);
    }
  }

  /** The bound topic is gone, or being deleted: nothing is stored until it exists again. */
  private deleted(bound: BoundTopic): void {
    if (bound.appenders.length === 0) return;
    this.logger.warn({ topic: bound.name }, 'a bound stored topic was deleted; its binding stores nothing');
    this.follow(bound, null);
  }

  /** Takes the stored topic's partition count and compression (none: the topic is gone). */
  private follow(bound: BoundTopic, topic: Topic | null): void {
    this.resize(bound, topic?.partitions ?? 0);
    const compression = topic ? storedCompression(topic) : 'none';
    for (const appender of bound.appenders) appender.compression = compression;
  }

  private resize(bound: BoundTopic, partitions: number): void {
    if (partitions === 0) {
      bound.appenders = [];
      return;
    }
    for (let partition = bound.appenders.length; partition < partitions; partition++) {
      const appender = new ShardAppender(
        this.context.storage,
        this.context.records,
        shardName(bound.name, partition),
      );
      appender.onError = (error, shard) => {
        if (!isRobustMQError(error, ErrorCode.NotFound)) {
          this.logger.error({ err: error, shard }, 'QoS 0 MQTT messages not stored in a bound topic');
          return;
        }
        // Deleted before the watch said so (nothing more is stored), or being made.
        void this.catalog.get(bound.name).then(
          (topic) => {
            if (topic === null) this.deleted(bound);
            else
              this.logger.warn(
                { err: error, shard },
                'QoS 0 MQTT messages not stored: a partition of the bound topic was missing (being made?)',
              );
          },
          (lookup: unknown) =>
            this.logger.error({ err: lookup, shard }, 'QoS 0 MQTT messages not stored in a bound topic'),
        );
      };
      bound.appenders.push(appender);
    }
  }
}
