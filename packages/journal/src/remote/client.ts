import type { ConnectionOptions } from 'node:tls';
import {
  ErrorCode,
  isRobustMQError,
  RobustMQError,
  silentLogger,
  type AppendOptions,
  type AppendResult,
  type Logger,
  type ReadOptions,
  type ReadResult,
  type RecordBatch,
  type ShardConfig,
  type ShardInfo,
  type StorageEngine,
} from '@robustmq/core';
import { connectRpc, type RpcClient, type RpcClientOptions } from '@robustmq/rpc';
import {
  decodeAppendReply,
  decodeDeleteBeforeReply,
  decodeListShardsReply,
  decodeOffsetForTimestampReply,
  decodeReadReply,
  decodeShardInfoReply,
  encodeBatches,
  Method,
  type AppendRequest,
  type DeleteBeforeRequest,
  type ReadRequest,
  type WaitRequest,
} from './wire.js';

export interface JournalClientOptions {
  host: string;
  port: number;
  /** Connect with TLS: `true` for the system's CAs, or options (ca, cert, key, servername...). */
  tls?: boolean | ConnectionOptions;
  logger?: Logger;
  /**
   * Deadline of each call sent on a live connection; `waitForData` gets its own timeout plus this.
   * Default 30 s.
   */
  requestTimeoutMs?: number;
  /**
   * How long to wait for a connection: the limit of one connection attempt, and how long calls
   * wait while there is none, counted from when it was lost. Past it they fail UNAVAILABLE at
   * once, without being sent, until the client has reconnected. Default 5 s.
   */
  connectTimeoutMs?: number;
  /** First delay before reconnecting; doubles per failed attempt. Default 50 ms. */
  reconnectDelayMs?: number;
  /** Longest delay between reconnection attempts; default 5 s. */
  maxReconnectDelayMs?: number;
  /** Largest RPC frame sent or accepted; must match the server's. Default 64 MiB. */
  maxFrameBytes?: number;
  /**
   * The leader epoch this client writes `shard` under (from the shard's `ShardPlacement`), or
   * undefined to send none. Appends and deleteBefore carry it; the server refuses, with CONFLICT,
   * writes whose epoch is older than one it has seen for the shard.
   */
  shardEpoch?: (shard: string) => number | undefined;
}

/** A StorageEngine whose shards live on a journal server. */
export interface JournalClient extends StorageEngine {
  /** True while the connection for calls is up. */
  readonly connected: boolean;
  /**
   * Resolves once connected (and the long-poll connection too, once `waitForData` has opened it);
   * rejects UNAVAILABLE after `timeoutMs`, CLOSED if closed first.
   */
  waitConnected(timeoutMs: number): Promise<void>;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/**
 * Connects to a journal server ({@link createJournalServer}) and returns a StorageEngine over it.
 * It returns at once and connects in the background, reconnecting with backoff whenever the
 * connection drops. Calls made meanwhile wait for it, but only `connectTimeoutMs` into the outage:
 * then they fail UNAVAILABLE (not sent, so not carried out), and later ones at once, until the
 * client has reconnected. A server that is down thus costs callers a few seconds, not a deadline.
 *
 * Every call has a deadline (`requestTimeoutMs`; TIMEOUT past it, its effect unknown). A call in
 * flight when the connection drops fails UNAVAILABLE. Calls that change nothing (read, shardInfo,
 * listShards, offsetForTimestamp, waitForData) are then tried once more after reconnecting, within
 * the same deadline; the others, above all `append`, which is not idempotent, are never resent:
 * their UNAVAILABLE means "may or may not have been carried out". `close()` closes this client
 * only, never the engine behind the server.
 *
 * Long polls (`waitForData`) use a second connection of their own, opened on first use, so that
 * however many of them wait, appends and reads never queue behind them.
 */
export function connectJournal(options: JournalClientOptions): JournalClient {
  return new RemoteJournal(options);
}

class RemoteJournal implements JournalClient {
  readonly #options: JournalClientOptions;
  readonly #logger: Logger;
  readonly #requestTimeoutMs: number;
  readonly #calls: RpcClient;
  #waits: RpcClient | undefined;
  #closed = false;

  constructor(options: JournalClientOptions) {
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger).child({
      component: 'journal-client',
      server: `${options.host}:${options.port}`,
    });
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#calls = this.#connect('calls');
  }

  /** Brokers that name the same journal node share its shards. */
  get location(): string {
    return `journal@${this.#options.host}:${this.#options.port}`;
  }

  get connected(): boolean {
    return this.#calls.connected;
  }

  async waitConnected(timeoutMs: number): Promise<void> {
    await Promise.all([this.#calls.waitConnected(timeoutMs), this.#waits?.waitConnected(timeoutMs)]);
  }

  async createShard(shard: string, config?: Partial<ShardConfig>): Promise<ShardInfo> {
    return decodeShardInfoReply(
      await this.#sendConfig(Method.createShard, shard, config),
      Method.createShard,
    );
  }

  async deleteShard(shard: string): Promise<void> {
    await this.#once(Method.deleteShard, { shard });
  }

  async listShards(): Promise<string[]> {
    return decodeListShardsReply(await this.#retrying(Method.listShards, () => ({})));
  }

  async shardInfo(shard: string): Promise<ShardInfo> {
    return decodeShardInfoReply(await this.#retrying(Method.shardInfo, () => ({ shard })), Method.shardInfo);
  }

  async updateShardConfig(shard: string, config: Partial<ShardConfig>): Promise<ShardInfo> {
    return decodeShardInfoReply(
      await this.#sendConfig(Method.updateShardConfig, shard, config),
      Method.updateShardConfig,
    );
  }

  /**
   * Sends a shard config. A journal node from before `segmentMs` refuses it as an unknown key
   * before changing anything: it is sent again without it, so that the shard rolls by size only,
   * as everything did before, rather than a topic with `segment.ms` failing until the node is
   * upgraded.
   */
  async #sendConfig(
    method: string,
    shard: string,
    config: Partial<ShardConfig> | undefined,
  ): Promise<unknown> {
    try {
      return await this.#once(method, { shard, config });
    } catch (error) {
      if (
        config?.segmentMs === undefined ||
        !isRobustMQError(error, ErrorCode.InvalidArgument) ||
        !error.message.includes('unknown key "segmentMs"')
      ) {
        throw error;
      }
      this.#logger.warn({ shard }, 'journal node does not know segmentMs; the shard rolls by size only');
      const { segmentMs: _ignored, ...rest } = config;
      return this.#once(method, { shard, config: rest });
    }
  }

  async append(
    shard: string,
    batches: readonly RecordBatch[],
    options?: AppendOptions,
  ): Promise<AppendResult> {
    const expectedOffset = options?.expectedOffset;
    // Checked before sending too, as a journal node from before conditional appends would store
    // the batches whatever the value.
    if (expectedOffset !== undefined && !(Number.isSafeInteger(expectedOffset) && expectedOffset >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `expectedOffset must be a non-negative integer, got ${String(expectedOffset)}`,
      );
    }
    const body: AppendRequest = {
      shard,
      batches: encodeBatches(batches),
      epoch: this.#epoch(shard),
      expectedOffset,
    };
    const { baseOffset, lastOffset, logStartOffset } = decodeAppendReply(
      await this.#once(Method.append, body),
    );
    if (expectedOffset !== undefined && baseOffset !== expectedOffset) {
      // A node from before conditional appends ignores the field and stores the batches wherever
      // they land. INTERNAL has the caller treat the append as one of unknown outcome, never as
      // stored where it checked the log.
      this.#logger.error(
        { shard, expectedOffset, baseOffset },
        'journal node ignored the expected offset of an append: it does not support conditional appends',
      );
      throw new RobustMQError(
        ErrorCode.Internal,
        `journal node ${this.#options.host}:${this.#options.port} does not support conditional appends: ` +
          `the append to ${shard} expecting offset ${expectedOffset} was stored at ${baseOffset}`,
      );
    }
    if (logStartOffset !== undefined) return { baseOffset, lastOffset, logStartOffset };
    return { baseOffset, lastOffset, logStartOffset: await this.#logStartAfterAppend(shard) };
  }

  /**
   * The log start for the reply of a journal node from before appends reported it: asked for
   * separately. The batches are stored by then, so failing to learn it must not fail the append
   * (a retry would store them twice): it is reported as unknown, -1.
   */
  async #logStartAfterAppend(shard: string): Promise<number> {
    try {
      return (await this.shardInfo(shard)).logStartOffset;
    } catch (error) {
      this.#logger.warn({ err: error, shard }, 'could not learn the log start after an append');
      return -1;
    }
  }

  async read(shard: string, offset: number, options: ReadOptions): Promise<ReadResult> {
    const maxBytes = (options as Partial<ReadOptions> | undefined)?.maxBytes as number;
    const body: ReadRequest = { shard, offset, maxBytes };
    return decodeReadReply(await this.#retrying(Method.read, () => body));
  }

  async waitForData(shard: string, offset: number, timeoutMs: number): Promise<void> {
    const valid = typeof timeoutMs === 'number' && timeoutMs >= 0;
    // The server's answer may take up to a request timeout beyond the wait itself.
    const deadlineMs = valid ? timeoutMs + this.#requestTimeoutMs : this.#requestTimeoutMs;
    const body = (elapsed: number): WaitRequest => ({
      shard,
      offset,
      timeoutMs: valid ? Math.max(0, timeoutMs - elapsed) : timeoutMs,
    });
    await this.#retrying(Method.waitForData, body, deadlineMs, this.#waitLane());
  }

  async offsetForTimestamp(shard: string, timestamp: number): Promise<number | null> {
    return decodeOffsetForTimestampReply(
      await this.#retrying(Method.offsetForTimestamp, () => ({ shard, timestamp })),
    );
  }

  async deleteBefore(shard: string, offset: number): Promise<number> {
    const body: DeleteBeforeRequest = { shard, offset, epoch: this.#epoch(shard) };
    return decodeDeleteBeforeReply(await this.#once(Method.deleteBefore, body));
  }

  async enforceRetention(now: number): Promise<void> {
    await this.#once(Method.enforceRetention, { now });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([this.#calls.close(), this.#waits?.close()]);
  }

  #connect(lane: string): RpcClient {
    const { host, port, tls, connectTimeoutMs, reconnectDelayMs, maxReconnectDelayMs, maxFrameBytes } =
      this.#options;
    const options: RpcClientOptions = {
      host,
      port,
      tls,
      logger: this.#logger.child({ lane }),
      defaultDeadlineMs: this.#requestTimeoutMs,
      connectTimeoutMs: connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      connectWaitMs: connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      reconnectDelayMs,
      maxReconnectDelayMs,
      maxFrameBytes,
    };
    return connectRpc(options);
  }

  #waitLane(): RpcClient {
    if (this.#closed) return this.#calls;
    this.#waits ??= this.#connect('waits');
    return this.#waits;
  }

  #epoch(shard: string): number | undefined {
    return this.#options.shardEpoch?.(shard);
  }

  /** A call that is never resent: if the connection drops under it, it fails UNAVAILABLE. */
  #once<Res = unknown>(method: string, body: unknown): Promise<Res> {
    return this.#calls.call<Res>(method, body, { deadlineMs: this.#requestTimeoutMs });
  }

  /**
   * A call that changes nothing, so it is sent once more when the connection drops under it (or
   * the server is restarting), as soon as a connection is back and within the original deadline.
   * `body` gets the ms elapsed since the first try.
   */
  async #retrying<Res = unknown>(
    method: string,
    body: (elapsedMs: number) => unknown,
    deadlineMs = this.#requestTimeoutMs,
    lane = this.#calls,
  ): Promise<Res> {
    const started = Date.now();
    try {
      return await lane.call<Res>(method, body(0), { deadlineMs });
    } catch (error) {
      const elapsed = Date.now() - started;
      const remaining = deadlineMs - elapsed;
      if (!isRobustMQError(error, ErrorCode.Unavailable) || this.#closed || !(remaining > 0)) throw error;
      this.#logger.debug({ method, err: error.message }, 'journal call failed, trying once more');
      return lane.call<Res>(method, body(elapsed), { deadlineMs: remaining });
    }
  }
}
