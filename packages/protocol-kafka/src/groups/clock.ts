/** A pending timer; `cancel` is harmless after it fired. */
export interface Timer {
  cancel(): void;
}

/**
 * Time as the coordinator sees it, injected so that tests drive rebalance and session timeouts
 * without waiting.
 */
export interface Clock {
  now(): number;
  schedule(delayMs: number, callback: () => void): Timer;
}

/** The real clock: `Date.now` and unref'ed `setTimeout`s, so idle groups never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  schedule(delayMs, callback) {
    const handle = setTimeout(callback, Math.max(0, delayMs));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};
