import { createHash } from 'node:crypto';
import type { Logger, MetaEvent, MetaStore, MetaWatch } from '@robustmq/core';
import { GROUP_OPTIONS } from './shared-groups.js';
import { SubscriptionTree } from './subscription-tree.js';

/** Meta store prefix of which brokers have members of which shared group. */
const PREFIX = '/mqtt/shared/';

/** A shared group as the cluster knows it: the brokers with members, taken in turn. */
export class GroupElsewhere {
  readonly brokers = new Set<number>();
  private next = 0;

  constructor(
    readonly key: string,
    readonly filter: string,
  ) {}

  /** The next broker among `live` with members, or null when none of them has any. */
  pick(live: readonly number[]): number | null {
    const candidates = [...this.brokers].filter((id) => live.includes(id)).sort((a, b) => a - b);
    if (candidates.length === 0) return null;
    const chosen = candidates[this.next % candidates.length]!;
    this.next = (this.next + 1) % candidates.length;
    return chosen;
  }
}

/**
 * Which brokers of the cluster have members of each `$share/` group, kept in the meta store: a
 * broker writes one key per group when its first member joins and deletes it when its last leaves,
 * and every broker watches them all. A message for a group with no member on the broker it was
 * published on goes to one of the brokers that have members, so that the group gets it once.
 */
export class SharedGroupsElsewhere {
  readonly tree = new SubscriptionTree<GroupElsewhere>();
  private readonly groups = new Map<string, GroupElsewhere>();
  private watch: MetaWatch | null = null;
  /** Announcements are written one after another, so a join and a leave land in that order. */
  private writes: Promise<void> = Promise.resolve();

  constructor(
    private readonly meta: MetaStore,
    private readonly nodeId: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Drops what this broker announced in an earlier run (its members are gone or served elsewhere
   * now), then follows every broker's announcements.
   */
  async start(): Promise<void> {
    const revision = await this.meta.revision();
    for (const entry of await this.meta.list(PREFIX)) {
      if (nodeOf(entry.key) === this.nodeId) await this.meta.delete(entry.key);
      else this.apply({ type: 'put', entry, revision });
    }
    this.watch = this.meta.watch(PREFIX, (event) => this.apply(event), { afterRevision: revision });
  }

  /** This broker now has members of the group `key` (`{group}/{filter}`). */
  joined(key: string, filter: string): void {
    this.write(keyOf(key, this.nodeId), Buffer.from(JSON.stringify({ key, filter })));
  }

  /** This broker no longer has members of the group `key`. */
  left(key: string): void {
    this.write(keyOf(key, this.nodeId), null);
  }

  /** Resolves once the announcements made so far are written. */
  settled(): Promise<void> {
    return this.writes;
  }

  stop(): void {
    this.watch?.close();
    this.watch = null;
  }

  private write(key: string, value: Buffer | null): void {
    this.writes = this.writes
      .then(async () => {
        if (value === null) await this.meta.delete(key);
        else await this.meta.put(key, value);
      })
      .catch((error: unknown) =>
        this.logger.error({ err: error, key }, 'shared group membership not written'),
      );
  }

  private apply(event: MetaEvent): void {
    const key = event.type === 'put' ? event.entry.key : event.key;
    const node = nodeOf(key);
    if (node === null || node === this.nodeId) return;
    const groupHash = key.slice(PREFIX.length, key.lastIndexOf('/'));
    if (event.type === 'put') {
      let announced: { key: string; filter: string };
      try {
        announced = JSON.parse(Buffer.from(event.entry.value).toString('utf8')) as typeof announced;
      } catch {
        return;
      }
      let group = this.groups.get(groupHash);
      if (!group) {
        group = new GroupElsewhere(announced.key, announced.filter);
        this.groups.set(groupHash, group);
        this.tree.add(group, announced.filter, GROUP_OPTIONS);
      }
      group.brokers.add(node);
    } else {
      const group = this.groups.get(groupHash);
      if (!group) return;
      group.brokers.delete(node);
      if (group.brokers.size === 0) {
        this.groups.delete(groupHash);
        this.tree.remove(group, group.filter);
      }
    }
  }
}

function keyOf(groupKey: string, nodeId: number): string {
  return `${PREFIX}${createHash('sha256').update(groupKey).digest('hex')}/${nodeId}`;
}

function nodeOf(key: string): number | null {
  const id = Number(key.slice(key.lastIndexOf('/') + 1));
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}
