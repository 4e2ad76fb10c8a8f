/** One key of the meta store with its revisions (etcd's model). */
export interface MetaEntry {
  key: string;
  value: Uint8Array;
  /** Store revision at which the key was created. */
  createRevision: number;
  /** Store revision of the last write to the key: the value compare-and-set compares. */
  modRevision: number;
  /** Number of writes since the key was created, starting at 1. */
  version: number;
}

export type MetaEvent =
  { type: 'put'; entry: MetaEntry; revision: number } | { type: 'delete'; key: string; revision: number };

export interface MetaPutOptions {
  /**
   * Compare-and-set: write only if the key's `modRevision` equals this; 0 means "only if the key
   * does not exist". A mismatch throws `CONFLICT` and writes nothing.
   */
  ifRevision?: number;
}

export interface MetaListOptions {
  /** Return keys strictly after this one (for paging). */
  startAfter?: string;
  /** At most this many entries. */
  limit?: number;
}

export interface MetaWatchOptions {
  /**
   * Deliver events after this store revision first, then live ones. Fails with `NOT_FOUND` if the
   * store has compacted that history away.
   */
  afterRevision?: number;
}

export interface MetaWatch {
  close(): void;
}

/**
 * The cluster's versioned key-value view: nodes and roles, topics and shard placement, users and
 * ACLs, protocol state. Standalone it is a one-node group in-process; in a cluster, the Raft group
 * over the network. Reads are linearizable. Keys are `/`-separated paths, e.g. `/topics/orders`.
 */
export interface MetaStore {
  get(key: string): Promise<MetaEntry | null>;
  /** Writes `value` and resolves with the new store revision once it is committed. */
  put(key: string, value: Uint8Array, options?: MetaPutOptions): Promise<number>;
  /** Deletes `key`; resolves false when it did not exist. `ifRevision` as for put. */
  delete(key: string, options?: MetaPutOptions): Promise<boolean>;
  /** Entries whose key starts with `prefix`, in key order. */
  list(prefix: string, options?: MetaListOptions): Promise<MetaEntry[]>;
  /** Calls `listener` for every change under `prefix`, in revision order. */
  watch(prefix: string, listener: (event: MetaEvent) => void, options?: MetaWatchOptions): MetaWatch;
  /** The store's current revision. */
  revision(): Promise<number>;
  close(): Promise<void>;
}
