import {
  ErrorCode,
  isRobustMQError,
  silentLogger,
  type Logger,
  type MetaStore,
  type StorageEngine,
} from '@robustmq/core';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import { ProducerIdAllocator } from './producer-ids.js';
import { ProducerStateTable } from './producer-state.js';

/** Kafka's `transaction.max.timeout.ms`: 15 minutes. */
const MAX_TRANSACTION_TIMEOUT_MS = 900_000;
/** Epochs are int16; at the last usable one a producer gets a fresh id instead. */
const MAX_EPOCH = 32_766;

export interface InitProducerIdInput {
  transactionalId: string | null;
  transactionTimeoutMs: number;
  /** InitProducerId v3+: the id and epoch the producer had, or -1. */
  producerId: bigint;
  producerEpoch: number;
}

export interface InitProducerIdOutcome {
  errorCode: number;
  producerId: bigint;
  producerEpoch: number;
}

interface TransactionalProducer {
  producerId: number;
  epoch: number;
}

const transactionalKey = (id: string) => `/kafka/producers/transactional/${encodeURIComponent(id)}`;

/**
 * Idempotent producers for one broker: InitProducerId (ids that survive restarts; for a
 * transactional id, the same id with a higher epoch each time, fencing the previous instance) and
 * the per-partition sequence checks Produce runs.
 */
export class ProducerService {
  readonly state: ProducerStateTable;
  private readonly ids: ProducerIdAllocator;

  constructor(
    private readonly meta: MetaStore,
    storage: StorageEngine,
    private readonly logger: Logger = silentLogger,
    blockSize?: number,
  ) {
    this.ids = new ProducerIdAllocator(meta, blockSize);
    this.state = new ProducerStateTable(storage, logger);
  }

  /** Forgets in-memory state; a later use rebuilds it from the log. */
  stop(): void {
    this.state.clear();
  }

  async initProducerId(input: InitProducerIdInput): Promise<InitProducerIdOutcome> {
    const failed = (errorCode: number) => ({ errorCode, producerId: -1n, producerEpoch: -1 });
    if (input.transactionalId === null || input.transactionalId === '') {
      // An idempotent producer (re)starting or bumping its epoch gets a fresh id: its sequences restart at 0.
      return { errorCode: E.none, producerId: BigInt(await this.ids.allocate()), producerEpoch: 0 };
    }
    if (input.transactionTimeoutMs <= 0 || input.transactionTimeoutMs > MAX_TRANSACTION_TIMEOUT_MS) {
      return failed(E.invalidTransactionTimeout);
    }
    const key = transactionalKey(input.transactionalId);
    for (;;) {
      const entry = await this.meta.get(key);
      const current = entry
        ? (JSON.parse(new TextDecoder().decode(entry.value)) as TransactionalProducer)
        : null;
      if (
        current &&
        input.producerId >= 0n &&
        (BigInt(current.producerId) !== input.producerId || current.epoch !== input.producerEpoch)
      ) {
        return failed(E.producerFenced);
      }
      const next: TransactionalProducer =
        current && current.epoch < MAX_EPOCH
          ? { producerId: current.producerId, epoch: current.epoch + 1 }
          : { producerId: await this.ids.allocate(), epoch: 0 };
      try {
        await this.meta.put(key, new TextEncoder().encode(JSON.stringify(next)), {
          ifRevision: entry?.modRevision ?? 0,
        });
      } catch (error) {
        if (isRobustMQError(error, ErrorCode.Conflict)) continue; // a concurrent InitProducerId: try again
        throw error;
      }
      this.logger.debug(
        { transactionalId: input.transactionalId, ...next },
        'transactional producer initialised',
      );
      return { errorCode: E.none, producerId: BigInt(next.producerId), producerEpoch: next.epoch };
    }
  }
}
