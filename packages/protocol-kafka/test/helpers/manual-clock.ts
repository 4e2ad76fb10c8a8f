import type { Clock, Timer } from '../../src/groups/clock.js';

/** A clock that moves only when a test calls `advance`, firing due timers in time order. */
export class ManualClock implements Clock {
  private time = 1_000_000;
  private timers: { at: number; seq: number; callback: () => void; cancelled: boolean }[] = [];
  private seq = 0;

  now(): number {
    return this.time;
  }

  schedule(delayMs: number, callback: () => void): Timer {
    const timer = { at: this.time + Math.max(0, delayMs), seq: this.seq++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time forward by `ms`, running each timer that falls due, then lets promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers
        .filter((t) => !t.cancelled && t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.time = due.at;
      due.cancelled = true;
      due.callback();
      await settle();
    }
    this.time = end;
    this.timers = this.timers.filter((t) => !t.cancelled);
    await settle();
  }

  /** Timers still pending. */
  pending(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }
}

/** Lets resolved promises run their continuations. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
