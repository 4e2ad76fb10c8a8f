// The meta nodes' side of the remote meta client: the MetaStore calls, served over @robustmq/rpc.
import type { MetaEvent, MetaListOptions, MetaStore, MetaWatch } from '@robustmq/core';
import type { CallContext, RpcServer } from '@robustmq/rpc';
import type { MetaOp } from '../command.js';
import type { MetaOpResult } from '../state-machine.js';
import type {
  GetReply,
  ListReply,
  ListRequest,
  RevisionReply,
  TxnReply,
  TxnRequest,
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

/** What a meta node serves remote clients from. */
export interface ServedMetaStore extends MetaStore {
  txn(ops: MetaOp[]): Promise<MetaOpResult[]>;
}

/** What the node knows without asking the group. */
export interface ServedNodeView {
  /** The leader this node knows, 0 when none. */
  leader(): number;
  /** The revision this node has applied: a new watch without `afterRevision` starts after it. */
  appliedRevision(): number;
}

/**
 * Serves `store` to remote meta clients on `server` (the methods in `wire.ts`). Reads are as
 * linearizable as the store's; writes go wherever the store sends them (a follower forwards them
 * to the leader).
 */
export function serveMetaClients(server: RpcServer, store: ServedMetaStore, view: ServedNodeView): void {
  server.handle(META_CLIENT_GET_METHOD, async ({ key }: { key: string }): Promise<GetReply> => {
    const entry = await store.get(key);
    return { entry, leader: view.leader() };
  });
  server.handle(META_CLIENT_TXN_METHOD, async ({ ops }: TxnRequest): Promise<TxnReply> => {
    const results = await store.txn(ops);
    return { results, leader: view.leader() };
  });
  server.handle(META_CLIENT_LIST_METHOD, async (request: ListRequest): Promise<ListReply> => {
    const options: MetaListOptions = {};
    if (request.startAfter != null) options.startAfter = request.startAfter;
    if (request.limit != null) options.limit = request.limit;
    const entries = await store.list(request.prefix, options);
    return { entries, leader: view.leader() };
  });
  server.handle(META_CLIENT_REVISION_METHOD, async (): Promise<RevisionReply> => {
    const revision = await store.revision();
    return { revision, leader: view.leader() };
  });
  server.handleStream(META_CLIENT_WATCH_METHOD, (request: WatchRequest, ctx: CallContext) => {
    const start = request.afterRevision ?? view.appliedRevision();
    // Registered now, before any later call on the connection runs, so none of its writes is missed.
    const stream = new WatchStream(ctx.signal, { start });
    stream.attach(store.watch(request.prefix, (event) => stream.push({ event }), { afterRevision: start }));
    return stream;
  });
}

/** A watch's events as an async iterable, ending when the call is cancelled or abandoned. */
class WatchStream implements AsyncIterable<WatchItem>, AsyncIterator<WatchItem> {
  private readonly items: WatchItem[];
  private waiter: ((result: IteratorResult<WatchItem>) => void) | null = null;
  private watch: MetaWatch | null = null;
  private ended = false;

  constructor(
    private readonly signal: AbortSignal,
    first: WatchItem,
  ) {
    this.items = [first];
    signal.addEventListener('abort', () => void this.return(), { once: true });
  }

  attach(watch: MetaWatch): void {
    if (this.ended) watch.close();
    else this.watch = watch;
  }

  push(item: { event: MetaEvent }): void {
    if (this.ended) return;
    const waiter = this.waiter;
    if (waiter !== null) {
      this.waiter = null;
      waiter({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchItem> {
    return this;
  }

  next(): Promise<IteratorResult<WatchItem>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.ended || this.signal.aborted) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiter = resolve));
  }

  return(): Promise<IteratorResult<WatchItem>> {
    if (!this.ended) {
      this.ended = true;
      this.watch?.close();
      this.items.length = 0;
      const waiter = this.waiter;
      this.waiter = null;
      waiter?.({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }
}
