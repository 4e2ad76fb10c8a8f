import type { Authorizer, Logger, Principal } from '@robustmq/core';

interface Answer {
  allowed: boolean;
  until: number;
}

const MAX_ANSWERS = 1024;

/**
 * A client's authorization checks, with answers reused for a while so that publishing to the
 * same topic again does not wait on the authorizer: the hot path stays synchronous. A superuser
 * is never checked.
 */
export class ClientAuthorization {
  /** Answers by topic, made at the first answer kept: most clients never need one. */
  private publish: Map<string, Answer> | null = null;
  private subscribe: Map<string, Answer> | null = null;

  constructor(
    private readonly authorizer: Authorizer,
    readonly principal: Principal,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Whether the client may `action` on `topic`: an answer now, or a promise of one. `$SYS` topics
   * are the broker's own: no client publishes there (a superuser neither), as with Mosquitto, so
   * that what subscribers read there is the broker's word.
   */
  check(action: 'publish' | 'subscribe', topic: string, now: number): boolean | Promise<boolean> {
    if (action === 'publish' && (topic === '$SYS' || topic.startsWith('$SYS/'))) return false;
    if (this.principal.superuser) return true;
    const known = (action === 'publish' ? this.publish : this.subscribe)?.get(topic);
    if (known !== undefined && known.until > now) return known.allowed;
    return this.ask(action, topic);
  }

  private async ask(action: 'publish' | 'subscribe', topic: string): Promise<boolean> {
    let allowed: boolean;
    try {
      allowed = await this.authorizer.authorize(this.principal, action, topic);
    } catch (error) {
      this.logger.error({ err: error, action, topic }, 'authorization failed; refusing');
      return false;
    }
    if (this.ttlMs > 0) {
      const answers = action === 'publish' ? (this.publish ??= new Map()) : (this.subscribe ??= new Map());
      if (answers.size >= MAX_ANSWERS) answers.clear();
      answers.set(topic, { allowed, until: Date.now() + this.ttlMs });
    }
    return allowed;
  }
}
