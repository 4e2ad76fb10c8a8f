import type { Session } from './session.js';
import { SubscriptionTree, type SubscriptionOptions } from './subscription-tree.js';

/** The options a group holds in the tree; each member's own options decide its deliveries. */
export const GROUP_OPTIONS: SubscriptionOptions = {
  qos: 2,
  noLocal: false,
  retainAsPublished: false,
  retainHandling: 2,
  subscriptionId: 0,
};

/**
 * The sessions sharing one `$share/{group}/{filter}` subscription (MQTT 5 section 4.8.2). Each
 * message goes to one member, round-robin, preferring members that are connected.
 */
export class SharedGroup {
  readonly members = new Map<Session, SubscriptionOptions>();
  private order: Session[] = [];
  private next = 0;

  constructor(
    /** `{group}/{filter}`: a group name holds no `/`, so this names the group and filter once. */
    readonly key: string,
    readonly filter: string,
  ) {}

  /** Adds or replaces a member's subscription; returns true when it is new. */
  add(session: Session, options: SubscriptionOptions): boolean {
    const isNew = !this.members.has(session);
    this.members.set(session, options);
    if (isNew) this.order.push(session);
    return isNew;
  }

  remove(session: Session): boolean {
    if (!this.members.delete(session)) return false;
    const i = this.order.indexOf(session);
    this.order.splice(i, 1);
    if (i < this.next) this.next--;
    return true;
  }

  /** The member to receive the next message (never `except`), or null when there is none. */
  pick(except: Session | null = null): [Session, SubscriptionOptions] | null {
    const count = this.order.length;
    let fallback = -1;
    for (let n = 0; n < count; n++) {
      const i = (this.next + n) % count;
      const session = this.order[i]!;
      if (session === except) continue;
      if (session.connection !== null) return this.take(i);
      if (fallback < 0) fallback = i;
    }
    // Nobody connected: a persistent member queues it for when it comes back.
    return fallback < 0 ? null : this.take(fallback);
  }

  /** The first member that `accepts` takes, or null; the turns do not move. */
  firstWhere(accepts: (session: Session) => boolean): [Session, SubscriptionOptions] | null {
    for (const [session, options] of this.members) if (accepts(session)) return [session, options];
    return null;
  }

  private take(i: number): [Session, SubscriptionOptions] {
    this.next = (i + 1) % this.order.length;
    const session = this.order[i]!;
    return [session, this.members.get(session)!];
  }
}

/** Every shared group, found by topic through a tree of their filters. */
export class SharedGroups {
  readonly tree = new SubscriptionTree<SharedGroup>();
  private readonly groups = new Map<string, SharedGroup>();
  /** Told when a group gets its first member here and when its last one leaves. */
  onGroupChange: ((key: string, filter: string, exists: boolean) => void) | null = null;

  get(key: string): SharedGroup | undefined {
    return this.groups.get(key);
  }

  /** Adds `session` to the group; returns true when its subscription is new. */
  add(session: Session, group: string, filter: string, options: SubscriptionOptions): boolean {
    const key = `${group}/${filter}`;
    let shared = this.groups.get(key);
    if (!shared) {
      shared = new SharedGroup(key, filter);
      this.groups.set(key, shared);
      this.tree.add(shared, filter, GROUP_OPTIONS);
      this.onGroupChange?.(key, filter, true);
    }
    return shared.add(session, options);
  }

  /** Takes `session` out of the group; an empty group goes. */
  remove(session: Session, group: string, filter: string): boolean {
    const key = `${group}/${filter}`;
    const shared = this.groups.get(key);
    if (!shared?.remove(session)) return false;
    if (shared.members.size === 0) {
      this.groups.delete(key);
      this.tree.remove(shared, filter);
      this.onGroupChange?.(key, filter, false);
    }
    return true;
  }
}
