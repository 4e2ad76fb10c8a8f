import {
  ErrorCode,
  RobustMQError,
  validateTopicFilter,
  type Logger,
  type Message,
  type MessageHandler,
  type MessageOrigin,
  type Router,
  type RouterSubscription,
} from '@robustmq/core';

interface Level {
  children: Map<string, Level>;
  /** Subscriptions whose filter ends at this level. */
  exact: Set<Subscription>;
  /** Subscriptions whose filter ends with `#` right after this level. */
  rest: Set<Subscription>;
}

interface Subscription extends RouterSubscription {
  handler: MessageHandler;
}

const newLevel = (): Level => ({ children: new Map(), exact: new Set(), rest: new Set() });

/**
 * The node's live router: a tree of filter levels, so a publish costs the depth of its topic and
 * not the number of subscriptions. `+` and `#` are children named `+` and a `rest` set.
 */
export class TopicTree implements Router {
  private readonly root = newLevel();
  private count = 0;

  constructor(private readonly logger: Logger) {}

  /** Number of live subscriptions. */
  get size(): number {
    return this.count;
  }

  subscribe(filter: string, handler: MessageHandler): RouterSubscription {
    validateTopicFilter(filter);
    const levels = filter.split('/');
    const path: Level[] = [this.root];
    let level = this.root;
    for (const name of levels) {
      if (name === '#') break;
      let child = level.children.get(name);
      if (!child) {
        child = newLevel();
        level.children.set(name, child);
      }
      level = child;
      path.push(level);
    }
    const set = levels[levels.length - 1] === '#' ? level.rest : level.exact;
    let active = true;
    const subscription: Subscription = {
      filter,
      handler,
      unsubscribe: () => {
        if (!active) return;
        active = false;
        set.delete(subscription);
        this.count--;
        this.prune(path, levels);
      },
    };
    set.add(subscription);
    this.count++;
    return subscription;
  }

  publish(message: Message, origin: MessageOrigin): number {
    if (message.topic.length === 0 || /[+#]/.test(message.topic) || message.topic.includes('\u0000')) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `invalid topic name ${JSON.stringify(message.topic)}`,
      );
    }
    const levels = message.topic.split('/');
    const matched: Subscription[] = [];
    this.collect(this.root, levels, 0, message.topic.startsWith('$'), matched);
    for (const subscription of matched) {
      try {
        subscription.handler(message, origin);
      } catch (error) {
        this.logger.error(
          { err: error, filter: subscription.filter, topic: message.topic },
          'subscriber failed',
        );
      }
    }
    return matched.length;
  }

  private collect(level: Level, levels: string[], depth: number, dollar: boolean, out: Subscription[]): void {
    const wildcardsAllowed = !(dollar && depth === 0);
    if (wildcardsAllowed) for (const s of level.rest) out.push(s);
    if (depth === levels.length) {
      for (const s of level.exact) out.push(s);
      return;
    }
    const exact = level.children.get(levels[depth]!);
    if (exact) this.collect(exact, levels, depth + 1, dollar, out);
    if (wildcardsAllowed) {
      const plus = level.children.get('+');
      if (plus) this.collect(plus, levels, depth + 1, dollar, out);
    }
  }

  /** Removes levels left empty by an unsubscribe, deepest first. */
  private prune(path: Level[], levels: string[]): void {
    for (let i = path.length - 1; i > 0; i--) {
      const level = path[i]!;
      if (level.children.size > 0 || level.exact.size > 0 || level.rest.size > 0) return;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
  }
}
