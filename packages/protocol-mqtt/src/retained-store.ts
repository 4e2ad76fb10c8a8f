import type { Publication } from './publication.js';

class RetainedNode {
  children: Map<string, RetainedNode> | null = null;
  message: Publication | null = null;
}

/**
 * The last retained message of each topic, in a tree of topic levels so that a subscription
 * finds its retained messages by walking its filter, not by scanning every topic. Messages past
 * their expiry are dropped when met.
 */
export class RetainedStore {
  private readonly root = new RetainedNode();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Stores `message` as the retained message of its topic; an empty payload deletes it. */
  set(message: Publication): void {
    if (message.payload.length === 0) {
      this.delete(message.topic);
      return;
    }
    let node = this.root;
    for (const level of message.topic.split('/')) {
      node.children ??= new Map();
      let child = node.children.get(level);
      if (!child) {
        child = new RetainedNode();
        node.children.set(level, child);
      }
      node = child;
    }
    if (node.message === null) this.count++;
    message.detach();
    node.message = message;
  }

  get(topic: string): Publication | null {
    let node: RetainedNode | undefined = this.root;
    for (const level of topic.split('/')) {
      node = node.children?.get(level);
      if (!node) return null;
    }
    return node.message;
  }

  delete(topic: string): boolean {
    const levels = topic.split('/');
    const path: RetainedNode[] = [this.root];
    let node: RetainedNode | undefined = this.root;
    for (const level of levels) {
      node = node.children?.get(level);
      if (!node) return false;
      path.push(node);
    }
    if (node.message === null) return false;
    node.message = null;
    this.count--;
    for (let i = path.length - 1; i > 0; i--) {
      const n = path[i]!;
      if (n.message !== null || (n.children !== null && n.children.size > 0)) break;
      path[i - 1]!.children!.delete(levels[i - 1]!);
    }
    return true;
  }

  /** The unexpired retained messages matching `filter` (a valid topic filter). */
  match(filter: string, now: number): Publication[] {
    const found: Publication[] = [];
    this.walk(this.root, filter.split('/'), 0, found);
    const live: Publication[] = [];
    for (const message of found) {
      if (message.isExpired(now)) this.delete(message.topic);
      else live.push(message);
    }
    return live;
  }

  private walk(node: RetainedNode, levels: readonly string[], depth: number, found: Publication[]): void {
    if (depth === levels.length) {
      if (node.message) found.push(node.message);
      return;
    }
    const level = levels[depth]!;
    if (level === '#') {
      if (node.message && depth > 0) found.push(node.message);
      this.everything(node, depth, found);
    } else if (level === '+') {
      if (!node.children) return;
      for (const [name, child] of node.children) {
        if (depth === 0 && name.startsWith('$')) continue;
        this.walk(child, levels, depth + 1, found);
      }
    } else {
      const child = node.children?.get(level);
      if (child) this.walk(child, levels, depth + 1, found);
    }
  }

  /** Every retained message held (expired ones included until met), in no particular order. */
  all(): Publication[] {
    const found: Publication[] = [];
    const visit = (node: RetainedNode) => {
      if (node.message) found.push(node.message);
      if (node.children) for (const child of node.children.values()) visit(child);
    };
    visit(this.root);
    return found;
  }

  private everything(node: RetainedNode, depth: number, found: Publication[]): void {
    if (!node.children) return;
    for (const [name, child] of node.children) {
      if (depth === 0 && name.startsWith('$')) continue;
      if (child.message) found.push(child.message);
      this.everything(child, depth + 1, found);
    }
  }
}
