import type { Logger, MetaEvent, MetaStore } from '@robustmq/core';
import { decodeGroupRecord, encodeGroupRecord } from './group-record.js';
import type { PersistedGroup } from './types.js';

/** An offset a group committed for one partition. */
export interface CommittedOffset {
  /** The next offset the group will consume. */
  offset: number;
  /** The leader epoch of the last consumed record, or -1. */
  leaderEpoch: number;
  /** Client-chosen text stored with the offset. */
  metadata: string;
  /** When it was committed, ms since the epoch. */
  commitTimestamp: number;
}

export interface PartitionOffset {
  topic: string;
  partition: number;
  committed: CommittedOffset;
}

/** Meta keys: `/kafka/groups/<group, URI-encoded>/group` and `.../offsets/<topic>/<partition>`. */
export const GROUPS_PREFIX = '/kafka/groups/';

const groupPrefix = (groupId: string) => `${GROUPS_PREFIX}${encodeURIComponent(groupId)}/`;
const groupKey = (groupId: string) => `${groupPrefix(groupId)}group`;
const offsetKey = (groupId: string, topic: string, partition: number) =>
  `${groupPrefix(groupId)}offsets/${topic}/${partition}`;

const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const decode = (value: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(value));

function isCommitted(value: unknown): value is CommittedOffset {
  const v = value as Partial<CommittedOffset> | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    Number.isSafeInteger(v.offset) &&
    Number.isInteger(v.leaderEpoch) &&
    typeof v.metadata === 'string' &&
    typeof v.commitTimestamp === 'number'
  );
}

/**
 * Committed offsets and group records, kept in the meta store (so they survive restarts and are
 * shared by every broker) with a write-through copy in memory for reads.
 */
export class OffsetStore {
  /** group -> "topic/partition" -> offset */
  private readonly offsets = new Map<string, Map<string, PartitionOffset>>();
  private readonly groups = new Map<string, PersistedGroup>();
  /** Each group's writes to the meta store not yet done, and the group's deletion under way. */
  private readonly writing = new Map<
    string,
    { writes: Set<Promise<void>>; deleting: Promise<void> | null }
  >();

  constructor(
    private readonly meta: MetaStore,
    private readonly logger: Logger,
  ) {}

  /** Reads every group and offset from the meta store; entries it cannot read are logged and skipped. */
  async load(): Promise<void> {
    let after: string | undefined;
    for (;;) {
      const page = await this.meta.list(GROUPS_PREFIX, { startAfter: after, limit: 1000 });
      for (const entry of page) this.loadEntry(entry.key, entry.value);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.key;
    }
  }

  /** The group a meta key under {@link GROUPS_PREFIX} belongs to, or null for another key. */
  static groupOf(key: string): string | null {
    if (!key.startsWith(GROUPS_PREFIX)) return null;
    try {
      return decodeURIComponent(key.slice(GROUPS_PREFIX.length).split('/')[0]!);
    } catch {
      return null;
    }
  }

  /**
   * Applies a change another broker made (it coordinates the group): the copy kept here follows,
   * for views of groups coordinated elsewhere.
   */
  apply(event: MetaEvent): void {
    if (event.type === 'put') {
      this.loadEntry(event.entry.key, event.entry.value);
      return;
    }
    const groupId = OffsetStore.groupOf(event.key);
    if (groupId === null) return;
    const parts = event.key.slice(GROUPS_PREFIX.length).split('/');
    if (parts.length === 2 && parts[1] === 'group') this.groups.delete(groupId);
    if (parts.length === 4 && parts[1] === 'offsets') {
      const group = this.offsets.get(groupId);
      group?.delete(`${parts[2]}/${parts[3]}`);
      if (group?.size === 0) this.offsets.delete(groupId);
    }
  }

  /**
   * Reads one group's record and offsets again from the meta store, replacing what is kept here
   * (another broker coordinated it meanwhile). Resolves whether the group has either.
   */
  async reloadGroup(groupId: string): Promise<boolean> {
    const pending = this.writing.get(groupId);
    if (pending)
      await Promise.allSettled([...pending.writes, ...(pending.deleting ? [pending.deleting] : [])]);
    const entries = await this.meta.list(groupPrefix(groupId));
    this.offsets.delete(groupId);
    this.groups.delete(groupId);
    for (const entry of entries) this.loadEntry(entry.key, entry.value);
    return entries.length > 0;
  }

  private loadEntry(key: string, value: Uint8Array): void {
    const parts = key.slice(GROUPS_PREFIX.length).split('/');
    try {
      const groupId = decodeURIComponent(parts[0]!);
      if (parts.length === 2 && parts[1] === 'group') {
        const group = decodeGroupRecord(value);
        if (group) {
          this.groups.set(groupId, group);
          return;
        }
      }
      if (parts.length === 4 && parts[1] === 'offsets') {
        const committed = decode(value);
        const partition = Number(parts[3]);
        if (isCommitted(committed) && Number.isInteger(partition)) {
          this.put(groupId, { topic: parts[2]!, partition, committed });
          return;
        }
      }
    } catch {
      // Falls through to the warning below.
    }
    this.logger.warn({ key }, 'skipping an unreadable consumer group entry in the meta store');
  }

  private put(groupId: string, entry: PartitionOffset): void {
    let group = this.offsets.get(groupId);
    if (!group) this.offsets.set(groupId, (group = new Map<string, PartitionOffset>()));
    group.set(`${entry.topic}/${entry.partition}`, entry);
  }

  /** Groups with a record or committed offsets. */
  groupIds(): string[] {
    return [...new Set([...this.groups.keys(), ...this.offsets.keys()])];
  }

  persistedGroup(groupId: string): PersistedGroup | null {
    return this.groups.get(groupId) ?? null;
  }

  get(groupId: string, topic: string, partition: number): CommittedOffset | null {
    return this.offsets.get(groupId)?.get(`${topic}/${partition}`)?.committed ?? null;
  }

  /** Every committed offset of a group, by topic then partition. */
  list(groupId: string): PartitionOffset[] {
    return [...(this.offsets.get(groupId)?.values() ?? [])].sort((a, b) =>
      a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1,
    );
  }

  /**
   * Runs a write of the group's entries. Writes run at once and together (the meta store applies
   * them in the order they are issued), except while the group is being deleted: then they wait,
   * so nothing the deletion removes comes back.
   */
  private write(groupId: string, run: () => Promise<void>): Promise<void> {
    let group = this.writing.get(groupId);
    if (!group) this.writing.set(groupId, (group = { writes: new Set(), deleting: null }));
    const writing = group.deleting ? group.deleting.then(run, run) : run();
    const tracked = writing.finally(() => {
      group.writes.delete(tracked);
      if (group.writes.size === 0 && group.deleting === null) this.writing.delete(groupId);
    });
    // The deletion waits for this write whether it succeeds or not; the caller learns the outcome.
    tracked.catch(() => {});
    group.writes.add(tracked);
    return writing;
  }

  /** Stores offsets durably; resolves once all are committed to the meta store. */
  commit(groupId: string, entries: readonly PartitionOffset[]): Promise<void> {
    return this.write(groupId, async () => {
      await Promise.all(
        entries.map((e) => this.meta.put(offsetKey(groupId, e.topic, e.partition), encode(e.committed))),
      );
      for (const entry of entries) this.put(groupId, entry);
    });
  }

  /** Forgets offsets (OffsetDelete, reset); resolves once the meta store has dropped them. */
  delete(groupId: string, partitions: readonly { topic: string; partition: number }[]): Promise<void> {
    return this.write(groupId, async () => {
      await Promise.all(partitions.map((p) => this.meta.delete(offsetKey(groupId, p.topic, p.partition))));
      const group = this.offsets.get(groupId);
      for (const p of partitions) group?.delete(`${p.topic}/${p.partition}`);
      if (group?.size === 0) this.offsets.delete(groupId);
    });
  }

  /** Stores a group's record (its last completed generation); resolves once the meta store has it. */
  saveGroup(groupId: string, group: PersistedGroup): Promise<void> {
    return this.write(groupId, async () => {
      this.groups.set(groupId, group);
      await this.meta.put(groupKey(groupId), encodeGroupRecord(group));
    });
  }

  /**
   * Drops a group's record and all its offsets. Writes of the group issued before (a record written
   * as the group emptied) are waited for, so none lands after the deletion and brings it back.
   */
  deleteGroup(groupId: string): Promise<void> {
    let group = this.writing.get(groupId);
    if (!group) this.writing.set(groupId, (group = { writes: new Set(), deleting: null }));
    const earlier = [...group.writes, ...(group.deleting ? [group.deleting] : [])];
    const deleting = Promise.allSettled(earlier).then(async () => {
      const keys = (await this.meta.list(groupPrefix(groupId))).map((e) => e.key);
      await Promise.all(keys.map((key) => this.meta.delete(key)));
      this.offsets.delete(groupId);
      this.groups.delete(groupId);
    });
    const settled = deleting.finally(() => {
      if (group.deleting === settled) group.deleting = null;
      if (group.writes.size === 0 && group.deleting === null) this.writing.delete(groupId);
    });
    settled.catch(() => {});
    group.deleting = settled;
    return deleting;
  }
}
