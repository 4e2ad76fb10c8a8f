// A MetaStore for nodes without the meta role: every call goes over RPC to the meta nodes.
import type { ConnectionOptions } from 'node:tls';
import type {
  Logger,
  MetaEntry,
  MetaEvent,
  MetaListOptions,
  MetaPutOptions,
  MetaStore,
  MetaWatch,
  MetaWatchOptions,
} from '@robustmq/core';
import { ErrorCode, isRobustMQError, RobustMQError, silentLogger } from '@robustmq/core';
import type { RpcClient, RpcStream } from '@robustmq/rpc';
import { connectRpc } from '@robustmq/rpc';
import type { MetaOp } from '../command.js';
import { deleteThroughTxn, putThroughTxn } from '../meta-ops.js';
import type { MetaOpResult } from '../state-machine.js';
import type {
  GetReply,
  LeaderHint,
  ListReply,
  ListRequest,
  RevisionReply,
  TxnReply,
  WatchItem,
  WatchRequest,
} from './wire.js';
import {
  META_CLIENT_GET_METHOD,
  META_CLIENT_LIST_METHOD,
  META_CLIENT_REVISION_METHOD,
  META_CLIENT_TXN_METHOD,
  META_CLIENT_WATCH_METHOD,
} from './wire.js';

/** A meta node and the address of its RPC server (the `[cluster] meta_nodes` entries). */
export interface RemoteMetaNode {
  id: number;
  host: string;
  port: number;
}

export interface RemoteMetaStoreOptions {
  /** The meta nodes; calls go to the leader once a node has named it. */
  nodes: readonly RemoteMetaNode[];
  /** How long a call may take, moving between nodes included, before it fails (default 10 s). */
  requestTimeoutMs?: number;
  /** How long to wait for a node's connection before trying the next one (default 1 s). */
  connectTimeoutMs?: number;
  /** The RPC frame limit of the meta nodes' servers (default @robustmq/rpc's). */
  maxFrameBytes?: number;
  /** Connect to the meta nodes with TLS (their `[rpc]` TLS settings); unset, plain TCP. */
  tls?: ConnectionOptions;
  logger?: Logger;
}

const FIRST_RETRY_MS = 20;
const LAST_RETRY_MS = 1000;

/** Connects (lazily, in the background) a {@link RemoteMetaStore} to the meta nodes. */
export function connectRemoteMetaStore(options: RemoteMetaStoreOptions): RemoteMetaStore {
  return new RemoteMetaStore(options);
}

/**
 * A {@link MetaStore} served by the meta nodes, for a node that is not one of them. It talks to the
 * leader when known (any node answers: a follower forwards writes to the leader and serves
 * linearizable reads itself) and moves to another node when one cannot be reached. Reads are
 * retried there; a write that may have reached a node is not, and fails `UNAVAILABLE` (its outcome
 * is unknown), as with `RaftMetaStore`. A watch whose node goes away resumes on another from the
 * last revision it delivered, so it sees every event once and in order; it ends (with an error
 * logged) only if that history is gone from the node it resumes on.
 */
export class RemoteMetaStore implements MetaStore {
  private readonly nodes: ReadonlyMap<number, RemoteMetaNode>;
  private readonly order: readonly number[];
  private readonly clients = new Map<number, RpcClient>();
  private readonly watches = new Set<RemoteWatch>();
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly logger: Logger;
  /** The node calls go to: the leader when one was named, else the next one to try. */
  private preferred: number;
  private closed = false;

  constructor(private readonly options: RemoteMetaStoreOptions) {
    if (options.nodes.length === 0) {
      throw new RobustMQError(ErrorCode.InvalidArgument, 'a remote meta store needs at least one meta node');
    }
    this.nodes = new Map(options.nodes.map((node) => [node.id, node]));
    this.order = options.nodes.map((node) => node.id);
    this.preferred = this.order[0]!;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.logger = (options.logger ?? silentLogger).child({ component: 'meta-remote' });
  }

  /** The meta node calls go to now. */
  get currentNode(): number {
    return this.preferred;
  }

  async get(key: string): Promise<MetaEntry | null> {
    const reply = await this.request<GetReply>(META_CLIENT_GET_METHOD, { key }, true);
    return reply.entry;
  }

  put(key: string, value: Uint8Array, options?: MetaPutOptions): Promise<number> {
    return putThroughTxn((ops) => this.txn(ops), key, value, options);
  }

  delete(key: string, options?: MetaPutOptions): Promise<boolean> {
    return deleteThroughTxn((ops) => this.txn(ops), key, options);
  }

  /** Several puts and deletes applied atomically at one revision, as `RaftMetaStore.txn`. */
  async txn(ops: MetaOp[]): Promise<MetaOpResult[]> {
    const reply = await this.request<TxnReply>(META_CLIENT_TXN_METHOD, { ops }, false);
    return reply.results;
  }

  async list(prefix: string, options: MetaListOptions = {}): Promise<MetaEntry[]> {
    const request: ListRequest = { prefix };
    if (options.startAfter !== undefined) request.startAfter = options.startAfter;
    if (options.limit !== undefined) request.limit = options.limit;
    const reply = await this.request<ListReply>(META_CLIENT_LIST_METHOD, request, true);
    return reply.entries;
  }

  async revision(): Promise<number> {
    const reply = await this.request<RevisionReply>(META_CLIENT_REVISION_METHOD, {}, true);
    return reply.revision;
  }

  watch(prefix: string, listener: (event: MetaEvent) => void, options: MetaWatchOptions = {}): MetaWatch {
    this.checkOpen();
    const { afterRevision } = options;
    if (afterRevision !== undefined && !(Number.isSafeInteger(afterRevision) && afterRevision >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `afterRevision must be a non-negative integer, got ${afterRevision}`,
      );
    }
    const watch = new RemoteWatch(this, prefix, listener, afterRevision, this.logger);
    this.watches.add(watch);
    watch.start();
    return watch;
  }

  /** Ends every watch and connection; calls in flight and later fail `CLOSED`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches]) watch.close();
    await Promise.allSettled([...this.clients.values()].map((client) => client.close()));
    this.clients.clear();
  }

  // ---- for RemoteWatch ------------------------------------------------------------------------------

  /** Opens a watch stream on the preferred node; cancelled if that node cannot be reached. */
  openWatch(request: WatchRequest): { node: number; stream: RpcStream<WatchItem> } {
    const node = this.preferred;
    const client = this.client(node);
    const stream = client.stream<WatchItem>(META_CLIENT_WATCH_METHOD, request, { deadlineMs: Infinity });
    if (!client.connected) client.waitConnected(this.connectTimeoutMs).catch(() => stream.cancel());
    return { node, stream };
  }

  forget(watch: RemoteWatch): void {
    this.watches.delete(watch);
  }

  /** After trouble with `node`: try the next one, unless calls already went elsewhere. */
  moveOn(node: number): void {
    if (this.preferred !== node) return;
    const at = this.order.indexOf(node);
    this.preferred = this.order[(at + 1) % this.order.length]!;
  }

  // ---- calls ----------------------------------------------------------------------------------------

  private async request<Reply extends LeaderHint>(
    method: string,
    body: unknown,
    idempotent: boolean,
  ): Promise<Reply> {
    this.checkOpen();
    const deadline = Date.now() + this.requestTimeoutMs;
    let wait = FIRST_RETRY_MS;
    let lastError: unknown;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new RobustMQError(
          ErrorCode.Unavailable,
          `no meta node answered ${method} within ${this.requestTimeoutMs} ms`,
          { cause: lastError },
        );
      }
      const node = this.preferred;
      const client = this.client(node);
      try {
        // A call made without a connection would wait for one until its deadline: try elsewhere.
        if (!client.connected) await client.waitConnected(Math.min(left, this.connectTimeoutMs));
        this.checkOpen();
      } catch (error) {
        this.checkOpen();
        lastError = error;
        this.moveOn(node);
        await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
        wait = Math.min(wait * 2, LAST_RETRY_MS);
        continue;
      }
      try {
        const reply = await client.call<Reply>(method, body, { deadlineMs: left });
        this.follow(reply.leader);
        return reply;
      } catch (error) {
        this.checkOpen();
        if (!idempotent || !isRobustMQError(error, ErrorCode.Unavailable)) throw error;
        lastError = error;
        this.logger.debug({ err: error, node, method }, 'meta node unavailable; trying another');
        this.moveOn(node);
        await sleep(Math.min(wait, Math.max(0, deadline - Date.now())));
        wait = Math.min(wait * 2, LAST_RETRY_MS);
      }
    }
  }

  /** Goes to the leader a node named. */
  private follow(leader: number): void {
    if (leader !== 0 && this.nodes.has(leader)) this.preferred = leader;
  }

  private client(id: number): RpcClient {
    let client = this.clients.get(id);
    if (client === undefined) {
      const node = this.nodes.get(id)!;
      client = connectRpc({
        host: node.host,
        port: node.port,
        logger: this.logger,
        ...(this.options.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.options.maxFrameBytes }),
        ...(this.options.tls === undefined ? {} : { tls: this.options.tls }),
      });
      this.clients.set(id, client);
    }
    return client;
  }

  private checkOpen(): void {
    if (this.closed) throw new RobustMQError(ErrorCode.Closed, 'meta store is closed');
  }
}

/** One watch over the network, reopened on another node from its last revision when its node goes. */
class RemoteWatch implements MetaWatch {
  private closed = false;
  private stream: RpcStream<WatchItem> | null = null;

  constructor(
    private readonly store: RemoteMetaStore,
    private readonly prefix: string,
    private readonly listener: (event: MetaEvent) => void,
    /** The last revision delivered or skipped; undefined until the first node says where it starts. */
    private after: number | undefined,
    private readonly logger: Logger,
  ) {}

  /** Opens the first stream now, so it is registered before any call made after `watch()` returns. */
  start(): void {
    this.run().catch((error: unknown) => {
      this.logger.error({ err: error, prefix: this.prefix }, 'meta watch ended');
      this.close();
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream?.cancel();
    this.store.forget(this);
  }

  private async run(): Promise<void> {
    let wait = FIRST_RETRY_MS;
    while (!this.closed) {
      const request: WatchRequest = { prefix: this.prefix };
      if (this.after !== undefined) request.afterRevision = this.after;
      const { node, stream } = this.store.openWatch(request);
      this.stream = stream;
      try {
        for await (const item of stream) {
          if (this.closed) return;
          wait = FIRST_RETRY_MS;
          if ('start' in item) {
            this.after ??= item.start;
            continue;
          }
          const { event } = item;
          if (this.after !== undefined && event.revision <= this.after) continue;
          this.after = event.revision;
          try {
            this.listener(event);
          } catch (error) {
            this.logger.warn({ err: error, prefix: this.prefix }, 'meta watch listener threw');
          }
        }
      } catch (error) {
        if (this.closed) return;
        // The history to resume from is gone: resuming would skip events, so the watch ends.
        if (isRobustMQError(error, ErrorCode.NotFound)) throw error;
        this.logger.debug({ err: error, node, prefix: this.prefix }, 'meta watch stream lost; resuming');
      }
      if (this.closed) return;
      this.store.moveOn(node);
      await sleep(wait);
      wait = Math.min(wait * 2, LAST_RETRY_MS);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
