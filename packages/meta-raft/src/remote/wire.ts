// What meta clients without a Raft member of their own (brokers without the meta role) and the meta
// nodes say to each other over @robustmq/rpc.
import type { MetaEntry, MetaEvent, MetaListOptions } from '@robustmq/core';
import type { MetaOp } from '../command.js';
import type { MetaOpResult } from '../state-machine.js';

/** `{ key }` → `{ entry }`: a linearizable read. */
export const META_CLIENT_GET_METHOD = 'meta.client.get';
/** `{ ops }` → `{ results }`: puts and deletes applied atomically, as `RaftMetaStore.txn`. */
export const META_CLIENT_TXN_METHOD = 'meta.client.txn';
/** `{ prefix, startAfter?, limit? }` → `{ entries }`. */
export const META_CLIENT_LIST_METHOD = 'meta.client.list';
/** `{}` → `{ revision }`. */
export const META_CLIENT_REVISION_METHOD = 'meta.client.revision';
/** Stream `{ prefix, afterRevision? }` → a {@link WatchStart}, then {@link WatchEvent}s. */
export const META_CLIENT_WATCH_METHOD = 'meta.client.watch';

/** Every answer names the leader the node knows (0 for none), so clients can go to it next. */
export interface LeaderHint {
  leader: number;
}

export interface GetReply extends LeaderHint {
  entry: MetaEntry | null;
}

export interface TxnRequest {
  ops: MetaOp[];
}

export interface TxnReply extends LeaderHint {
  results: MetaOpResult[];
}

export interface ListRequest extends MetaListOptions {
  prefix: string;
}

export interface ListReply extends LeaderHint {
  entries: MetaEntry[];
}

export interface RevisionReply extends LeaderHint {
  revision: number;
}

export interface WatchRequest {
  prefix: string;
  /** Events after this revision; without it, events after the node's revision when it starts. */
  afterRevision?: number;
}

/** The first item of a watch stream: the revision its events follow. */
export interface WatchStart {
  start: number;
}

export interface WatchEvent {
  event: MetaEvent;
}

export type WatchItem = WatchStart | WatchEvent;
