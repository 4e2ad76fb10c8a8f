import type { QoS } from './codec/packets.js';

/** What a client asked for with one topic filter (SUBSCRIBE options, MQTT 5 section 3.8.3.1). */
export interface SubscriptionOptions {
  qos: QoS;
  /** MQTT 5: do not send this client its own messages. */
  noLocal: boolean;
  /** MQTT 5: keep the RETAIN flag as published instead of clearing it on live delivery. */
  retainAsPublished: boolean;
  /** MQTT 5: 0 send retained messages on subscribe, 1 only for a new subscription, 2 never. */
  retainHandling: 0 | 1 | 2;
  /** MQTT 5 subscription identifier; 0 for none. */
  subscriptionId: number;
}

/** One subscription in the tree. */
export interface Subscription<S> {
  readonly subscriber: S;
  readonly filter: string;
  readonly options: SubscriptionOptions;
}

/** Everything one subscriber holds that matches a topic: usually one subscription. */
export interface Match<S> {
  readonly subscriber: S;
  readonly subscriptions: readonly Subscription<S>[];
}

class TreeNode<S> {
  children: Map<string, TreeNode<S>> | null = null;
  /** The `+` child, kept apart so matching costs one map lookup per level. */
  plus: TreeNode<S> | null = null;
  /** Subscriptions whose filter ends at this level. */
  exact: Map<S, Subscription<S>> | null = null;
  /** Subscriptions whose filter ends with `#` right after this level. */
  rest: Map<S, Subscription<S>> | null = null;

  isEmpty(): boolean {
    return (
      (this.children === null || this.children.size === 0) &&
      this.plus === null &&
      (this.exact === null || this.exact.size === 0) &&
      (this.rest === null || this.rest.size === 0)
    );
  }
}

const MAX_CACHED_TOPICS = 16_384;

/**
 * MQTT subscriptions by topic filter, as a tree of levels: matching a topic costs its depth (plus
 * the `+` branches), not the number of subscriptions. A topic whose first level starts with `$`
 * is not matched by a wildcard in that position.
 *
 * Results are grouped by subscriber, so overlapping subscriptions of one client give one
 * delivery, and cached per topic until the subscriptions change: a publish to a known topic
 * is one map lookup.
 */
export class SubscriptionTree<S> {
  private readonly root = new TreeNode<S>();
  private readonly cache = new Map<string, readonly Match<S>[]>();
  private count = 0;

  /** Number of subscriptions held. */
  get size(): number {
    return this.count;
  }

  /**
   * Adds or replaces `subscriber`'s subscription to `filter` (a valid filter); returns true when
   * it is new.
   */
  add(subscriber: S, filter: string, options: SubscriptionOptions): boolean {
    const levels = filter.split('/');
    const last = levels.length - 1;
    const wildcardEnd = levels[last] === '#';
    let node = this.root;
    for (let i = 0; i < (wildcardEnd ? last : levels.length); i++) {
      const level = levels[i]!;
      if (level === '+') {
        node = node.plus ??= new TreeNode<S>();
      } else {
        node.children ??= new Map();
        let child = node.children.get(level);
        if (!child) {
          child = new TreeNode<S>();
          node.children.set(level, child);
        }
        node = child;
      }
    }
    const set = wildcardEnd ? (node.rest ??= new Map()) : (node.exact ??= new Map());
    const isNew = !set.has(subscriber);
    set.set(subscriber, { subscriber, filter, options });
    if (isNew) this.count++;
    this.cache.clear();
    return isNew;
  }

  /** Removes `subscriber`'s subscription to `filter`; returns whether there was one. */
  remove(subscriber: S, filter: string): boolean {
    const levels = filter.split('/');
    const last = levels.length - 1;
    const wildcardEnd = levels[last] === '#';
    const path: TreeNode<S>[] = [this.root];
    let node: TreeNode<S> | null | undefined = this.root;
    for (let i = 0; i < (wildcardEnd ? last : levels.length); i++) {
      const level = levels[i]!;
      node = level === '+' ? node.plus : node.children?.get(level);
      if (!node) return false;
      path.push(node);
    }
    const set = wildcardEnd ? node.rest : node.exact;
    if (!set?.delete(subscriber)) return false;
    this.count--;
    this.cache.clear();
    this.prune(path, levels);
    return true;
  }

  /** What matches `topic` (a topic name), one entry per subscriber. */
  match(topic: string): readonly Match<S>[] {
    const cached = this.cache.get(topic);
    if (cached) return cached;
    const found = new Map<S, Subscription<S>[]>();
    this.collect(this.root, topic.split('/'), 0, topic.charCodeAt(0) === 0x24, found);
    const matches: Match<S>[] = [];
    for (const [subscriber, subscriptions] of found) matches.push({ subscriber, subscriptions });
    if (this.cache.size >= MAX_CACHED_TOPICS) this.cache.clear();
    this.cache.set(topic, matches);
    return matches;
  }

  private collect(
    node: TreeNode<S>,
    levels: readonly string[],
    depth: number,
    dollar: boolean,
    found: Map<S, Subscription<S>[]>,
  ): void {
    const wildcardsAllowed = depth > 0 || !dollar;
    if (node.rest && wildcardsAllowed) addAll(node.rest, found);
    if (depth === levels.length) {
      if (node.exact) addAll(node.exact, found);
      return;
    }
    const child = node.children?.get(levels[depth]!);
    if (child) this.collect(child, levels, depth + 1, dollar, found);
    if (node.plus && wildcardsAllowed) this.collect(node.plus, levels, depth + 1, dollar, found);
  }

  private prune(path: TreeNode<S>[], levels: readonly string[]): void {
    for (let i = path.length - 1; i > 0; i--) {
      const node = path[i]!;
      if (!node.isEmpty()) return;
      const parent = path[i - 1]!;
      const level = levels[i - 1]!;
      if (level === '+') parent.plus = null;
      else parent.children!.delete(level);
    }
  }
}

function addAll<S>(set: Map<S, Subscription<S>>, found: Map<S, Subscription<S>[]>): void {
  for (const [subscriber, subscription] of set) {
    const list = found.get(subscriber);
    if (list) list.push(subscription);
    else found.set(subscriber, [subscription]);
  }
}
