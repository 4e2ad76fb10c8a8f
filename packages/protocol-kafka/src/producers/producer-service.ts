import {
  silentLogger,
  TOPICS_PREFIX,
  type Logger,
  type MetaStore,
  type MetaWatch,
  type StorageEngine,
} from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { ProducerIdAllocator } from './producer-ids.js';
import { ProducerStateTable } from './producer-state.js';

export interface InitProducerIdInput {
  /** Null (or empty) for an idempotent producer; a transactional producer's id otherwise. */
  transactionalId: string | null;
}

export interface InitProducerIdOutcome {
  errorCode: number;
  producerId: bigint;
  producerEpoch: number;
}

/**
 * Idempotent producers for one broker: InitProducerId (ids that survive restarts) and the
 * per-partition sequence checks Produce runs. Transactions are not offered: a transactional id is
 * refused as a Kafka cluster refuses one its ACLs do not allow, which every client treats as fatal
 * at once (librdkafka would otherwise report success and then wait forever to send).
 */
export class ProducerService {
  readonly state: ProducerStateTable;
  private readonly ids: ProducerIdAllocator;
  private readonly topicWatch: MetaWatch;

  constructor(
    meta: MetaStore,
    storage: StorageEngine,
    private readonly logger: Logger = silentLogger,
    blockSize?: number,
  ) {
    this.ids = new ProducerIdAllocator(meta, blockSize);
    this.state = new ProducerStateTable(storage, logger);
    // As in Kafka, producers are forgotten with the partitions they wrote to, however the topic
    // went (DeleteTopics here or on another broker, the admin API): a topic made again under the
    // same name starts empty, so a retry there is a new batch, not a duplicate.
    this.topicWatch = meta.watch(TOPICS_PREFIX, (event) => {
      if (event.type === 'delete') this.state.forgetTopic(event.key.slice(TOPICS_PREFIX.length));
    });
  }

  private stopFollowing: () => void = () => {};

  /**
   * Keeps sequence state only for partitions this broker leads: whenever leadership may have
   * moved (`onChange`), the others are forgotten.
   */
  followLeadership(
    onChange: (listener: () => void) => () => void,
    leads: (topic: string, partition: number) => boolean,
  ): void {
    this.stopFollowing();
    this.stopFollowing = onChange(() => this.state.retain(leads));
  }

  /** Forgets in-memory state; a later use rebuilds it from the log. */
  stop(): void {
    this.stopFollowing();
    this.topicWatch.close();
    this.state.clear();
  }

  async initProducerId(input: InitProducerIdInput): Promise<InitProducerIdOutcome> {
    if (input.transactionalId !== null && input.transactionalId !== '') {
      this.logger.warn(
        { transactionalId: input.transactionalId },
        'transactional producer refused: transactions are not supported',
      );
      return { errorCode: E.transactionalIdAuthorizationFailed, producerId: -1n, producerEpoch: -1 };
    }
    // An idempotent producer (re)starting or bumping its epoch gets a fresh id: its sequences restart at 0.
    return { errorCode: E.none, producerId: BigInt(await this.ids.allocate()), producerEpoch: 0 };
  }
}
