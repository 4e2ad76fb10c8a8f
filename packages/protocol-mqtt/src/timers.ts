/** setTimeout's longest delay; longer waits are chained. */
const MAX_DELAY = 2 ** 31 - 1;

/** A cancellable timer for delays beyond setTimeout's 24.8 days (session expiry can be 136 years). */
export class LongTimer {
  private timer: NodeJS.Timeout | null = null;

  constructor(ms: number, callback: () => void) {
    const due = Date.now() + ms;
    const arm = (left: number) => {
      this.timer = setTimeout(
        () => {
          const remaining = due - Date.now();
          if (remaining > 0) arm(remaining);
          else {
            this.timer = null;
            callback();
          }
        },
        Math.min(left, MAX_DELAY),
      );
      this.timer.unref();
    };
    arm(ms);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
