/** What {@link RepeatLimiter.admit} decided for one occurrence. */
export type Admission = { log: true; repeats: number } | { log: false };

/** Kinds kept at most; past it those not seen for an interval are forgotten. */
const MAX_KINDS = 1000;

/**
 * Lets one log line per kind of failure through per interval: the first at once, later ones once
 * the interval has passed, each saying how many were held back since the last. A failure that
 * repeats on every pass and shard (wrong credentials) then does not flood the log.
 */
export class RepeatLimiter {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #kinds = new Map<string, { loggedAt: number; held: number }>();

  constructor(intervalMs = 60_000, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  admit(kind: string): Admission {
    const now = this.#now();
    const seen = this.#kinds.get(kind);
    if (seen !== undefined && now - seen.loggedAt < this.#intervalMs) {
      seen.held++;
      return { log: false };
    }
    if (seen === undefined && this.#kinds.size >= MAX_KINDS) this.#forgetOld(now);
    this.#kinds.set(kind, { loggedAt: now, held: 0 });
    return { log: true, repeats: seen?.held ?? 0 };
  }

  #forgetOld(now: number): void {
    for (const [kind, seen] of this.#kinds) {
      if (now - seen.loggedAt >= this.#intervalMs) this.#kinds.delete(kind);
    }
  }
}
