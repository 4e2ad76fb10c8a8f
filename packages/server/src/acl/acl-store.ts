import { randomUUID } from 'node:crypto';
import {
  validateTopicFilter,
  type Logger,
  type MetaEvent,
  type MetaStore,
  type MetaWatch,
} from '@robustmq/core';
import { ACL_ACTIONS, type AclRule } from './rules.js';

const ACLS_PREFIX = '/acls/';
const aclKey = (id: string) => ACLS_PREFIX + id;
const ID = /^[A-Za-z0-9-]{1,64}$/;

export type NewAclRule = Omit<AclRule, 'id'>;

function decodeRule(value: Uint8Array): AclRule | null {
  try {
    const rule = JSON.parse(Buffer.from(value).toString('utf8')) as AclRule;
    const ok =
      typeof rule.id === 'string' &&
      typeof rule.principal === 'string' &&
      (ACL_ACTIONS as readonly string[]).includes(rule.action) &&
      typeof rule.topic === 'string' &&
      (rule.permission === 'allow' || rule.permission === 'deny');
    return ok ? rule : null;
  } catch {
    return null;
  }
}

/**
 * ACL rules in the meta service (`/acls/<id>`), with an in-memory copy kept current by a meta
 * watch, so that `authorize` (on every publish and subscribe) never waits on the meta store.
 */
export class AclStore {
  private readonly cache = new Map<string, AclRule>();
  private watch: MetaWatch | null = null;

  private constructor(
    private readonly meta: MetaStore,
    private readonly logger: Logger,
  ) {}

  /** Loads the rules and starts following changes. */
  static async open(meta: MetaStore, logger: Logger): Promise<AclStore> {
    const store = new AclStore(meta, logger);
    // Events after `revision` replay anything the list already saw; applying one twice is harmless.
    const revision = await meta.revision();
    for (const entry of await meta.list(ACLS_PREFIX)) store.apply({ type: 'put', entry, revision });
    store.watch = meta.watch(ACLS_PREFIX, (event) => store.apply(event), { afterRevision: revision });
    return store;
  }

  /** The current rules, from memory. */
  rules(): Iterable<AclRule> {
    return this.cache.values();
  }

  /** Rules in id order after `after`, at most `limit`, read from the meta store. */
  async list(page: { after?: string; limit: number }): Promise<AclRule[]> {
    const entries = await this.meta.list(ACLS_PREFIX, {
      ...(page.after !== undefined && { startAfter: aclKey(page.after) }),
      limit: page.limit,
    });
    return entries.map((entry) => decodeRule(entry.value)).filter((rule) => rule !== null);
  }

  /** Stores a new rule under a fresh id and returns it. */
  async create(rule: NewAclRule): Promise<AclRule> {
    validateTopicFilter(rule.topic);
    const stored: AclRule = { id: randomUUID(), ...rule };
    await this.meta.put(aclKey(stored.id), Buffer.from(JSON.stringify(stored)), { ifRevision: 0 });
    this.cache.set(stored.id, stored);
    return stored;
  }

  /** Removes a rule; false when it did not exist. */
  async delete(id: string): Promise<boolean> {
    if (!ID.test(id)) return false;
    const removed = await this.meta.delete(aclKey(id));
    this.cache.delete(id);
    return removed;
  }

  close(): void {
    this.watch?.close();
  }

  private apply(event: MetaEvent): void {
    if (event.type === 'delete') {
      this.cache.delete(event.key.slice(ACLS_PREFIX.length));
      return;
    }
    const rule = decodeRule(event.entry.value);
    if (rule === null) {
      this.logger.warn({ key: event.entry.key }, 'ignoring a malformed ACL rule');
      return;
    }
    this.cache.set(rule.id, rule);
  }
}
