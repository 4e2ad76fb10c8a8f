/*
 * The shape every Kafka API handler has, and what it can reach.
 *
 * Who owns what in this package (two people work here at once):
 * - codec, connection, dispatch, plugin, config: scripts/, src/codec/**, src/index.ts,
 *   src/plugin.ts, src/config.ts, src/broker/{connection,dispatch,broker,handler}.ts, and the
 *   handlers for ApiVersions, Metadata, Produce, Fetch, ListOffsets, CreateTopics, DeleteTopics,
 *   CreatePartitions, DeleteRecords, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
 *   DescribeCluster, OffsetForLeaderEpoch.
 * - groups, offsets, idempotent producers, SASL: src/groups/**, src/producers/**, src/sasl/**, and
 *   src/broker/handlers/{find-coordinator,join-group,sync-group,heartbeat,leave-group,
 *   describe-groups,list-groups,delete-groups,offset-commit,offset-fetch,offset-delete,
 *   init-producer-id,sasl-handshake,sasl-authenticate}.ts, and src/broker/group-apis.ts, the list of
 *   their dispatch entries (API key, name, versions, handler) that dispatch.ts merges into its table.
 *
 * Conventions the dispatch table relies on:
 * - A handler file `handlers/join-group.ts` exports `handleJoinGroup: ApiHandler<JoinGroupRequest,
 *   JoinGroupResponse>`; the request/response types come from `../../codec/messages/<kebab>.js`
 *   (`join-group-request.js` exports the interface and codec `JoinGroupRequest`). int64 fields are
 *   `bigint`, bytes and records `Buffer` (records in a response may be pieces, `Records`), uuid a
 *   lower-case hyphenated string.
 * - A handler answers every request with a response body (errors go in error codes, per topic or
 *   partition where the API has them: see errors.ts); it throws only for a bug or to close the
 *   connection (`CloseConnection`). A bug is answered with the API's top-level error code when it
 *   has one at that version, else the connection closes. The throttle time is 0.
 * - State that lives as long as the broker (group coordinator, producer table) is a service:
 *   `broker.service('groups', () => new GroupCoordinator(broker))` creates it on first use; its
 *   `stop()` runs when the plugin stops.
 * - `src/producers/index.ts` exports `producerStateCheck(broker: KafkaBroker): ProducerStateCheck`,
 *   which Produce calls for batches with a producer id.
 */
import type { BrokerContext, Logger, Principal, TopicCatalog } from '@robustmq/core';
import type { KafkaCluster } from '../cluster/kafka-cluster.js';
import type { KafkaSettings } from '../config.js';
import type { KafkaMetrics } from './metrics.js';

/** One connection as handlers see it. Fields a handler may change are not readonly. */
export interface ConnectionState {
  /** Unique per plugin run, for logs. */
  readonly id: number;
  readonly listener: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * The address and port the client connected to, when the transport has one: what it is told to
   * connect to again when no advertised_host or advertised_port is set.
   */
  readonly localAddress?: string;
  readonly localPort?: number;
  /** The client id of the latest request header. */
  clientId: string | null;
  /**
   * Who the client is. Anonymous (`username: null`) until SASL succeeds; when SASL is off the
   * connection starts authenticated as anonymous.
   */
  principal: Principal;
  /** False until SASL succeeds when `sasl_enabled`; until then only ApiVersions and SASL pass. */
  authenticated: boolean;
  /** The SASL exchange in progress, owned by src/sasl (mechanism chosen, SCRAM step, nonces). */
  sasl: unknown;
  /**
   * Set by SaslHandshake v0: the frames that follow are raw SASL tokens, not requests. Each one is
   * handed here; the resolved bytes go back as one size-prefixed frame, null sends nothing. The
   * handler sets this back to null when the exchange ends. Throwing closes the connection.
   */
  rawSasl: ((token: Buffer) => Promise<Buffer | null>) | null;
}

/** The listener a connection came in on, and the address and port it reached. */
export type ConnectionAddress = Pick<ConnectionState, 'listener' | 'localAddress' | 'localPort'>;

/** What every request handler receives besides its decoded request. */
export interface RequestContext {
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly correlationId: number;
  readonly clientId: string | null;
  readonly connection: ConnectionState;
  readonly broker: KafkaBroker;
  /** Bound to the connection and the API. */
  readonly logger: Logger;
  /**
   * Called by a handler once what it does is ordered before anything a later request on this
   * connection does (Produce: every partition's append has its place in the shard's queue). The
   * connection may then start the next Produce while this one awaits durability; responses still
   * go out in request order. Handlers that never call it run alone, as in Kafka.
   */
  readonly queued?: () => void;
  /**
   * Runs `done` once the response has been handed to the socket (or will never be sent): buffers
   * the response refers to may be used again from then on.
   */
  readonly afterResponse?: (done: () => void) => void;
  /**
   * Aborted once the connection closes: what a handler keeps for the connection between requests
   * (Fetch's reads ahead) is let go then.
   */
  readonly closed?: AbortSignal;
}

/** Handles one decoded request and resolves with its response body. */
export type ApiHandler<Req, Res> = (request: Req, context: RequestContext) => Promise<Res>;

/** Thrown by a handler to drop the connection (a protocol violation with no error code). */
export class CloseConnection extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CloseConnection';
  }
}

/** A broker-lifetime object created on first use; stopped with the plugin. */
export interface BrokerService {
  stop?(): Promise<void> | void;
}

/** The broker state shared by every connection of one plugin run. */
export interface KafkaBroker {
  readonly context: BrokerContext;
  readonly settings: KafkaSettings;
  /** Topics of the unified namespace, shared with the other protocols and the admin API. */
  readonly catalog: TopicCatalog;
  readonly logger: Logger;
  /** The plugin's metrics; `bad(listener, reason)` counts refused input. */
  readonly metrics: KafkaMetrics;
  /** This broker's node id. */
  readonly nodeId: number;
  /** The cluster's live Kafka brokers: who coordinates each group and leads each partition. */
  readonly cluster: KafkaCluster;
  /** Host and port a client of this connection is told to connect to, for this broker. */
  advertised(connection: ConnectionAddress): { host: string; port: number };
  /**
   * Where a client of this connection reaches broker `nodeId` on the connection's listener (this
   * one: {@link advertised}), if known.
   */
  endpointOf(nodeId: number, connection: ConnectionAddress): { host: string; port: number } | null;
  /**
   * The service called `name`, created by `create` on first use. If it has a `stop()` (see
   * {@link BrokerService}), that runs when the plugin stops.
   */
  service<T extends object>(name: string, create: () => T): T;
  /** Stops once the plugin stops; long waits (parked joins, fetches) end early on this. */
  readonly stopped: AbortSignal;
}

/** A produced batch as the idempotent-producer check sees it. */
export interface ProducedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  /** Records in the batch minus one: the sequence of the last record is baseSequence + this. */
  readonly lastOffsetDelta: number;
  readonly transactional: boolean;
  /** The batch's max timestamp as stored (the broker's time on a LogAppendTime topic). */
  readonly maxTimestamp: number;
  /** The batch as it is to be stored. */
  readonly data: Uint8Array;
}

/** What to do with a batch that carries a producer id. */
export type ProducerCheckResult =
  /**
   * A new batch in sequence: append it at `expectedOffset`, where the log was read up to, and
   * only there (storage's conditional append).
   */
  | { readonly kind: 'append'; readonly expectedOffset: number }
  /**
   * A retry of a batch already stored: answer success with its original base offset and, as Kafka
   * does for a retry whatever the topic's timestamp type, its max timestamp as the append time.
   */
  | { readonly kind: 'duplicate'; readonly baseOffset: number; readonly maxTimestamp: number }
  /** Refuse with this Kafka error code (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, ...). */
  | { readonly kind: 'error'; readonly errorCode: number };

/**
 * Idempotent-producer state, implemented in src/producers. Produce serializes the calls per
 * partition: `check`, then the append, then `appended`, `behind` or `appendFailed`, before the
 * next batch of that partition is checked.
 */
export interface ProducerStateCheck {
  check(batch: ProducedBatch): ProducerCheckResult | Promise<ProducerCheckResult>;
  /** The batch was stored at `baseOffset`. */
  appended(batch: ProducedBatch, baseOffset: number): void | Promise<void>;
  /** Storage refused the batch because something was stored at its expected offset first. */
  behind(batch: ProducedBatch): void;
  /**
   * Storing the batch failed, so it may or may not be stored (a journal node that died before it
   * answered): what is known of its partition no longer holds.
   */
  appendFailed(batch: ProducedBatch): void;
}
