/**
 * The one time limit of a node's shutdown (`shutdown_timeout_ms`), shared by every step that waits
 * for other nodes or for clients: the protocols finishing their work, the broker leaving the
 * cluster. With the meta service gone each such step would otherwise wait out its own timeout, one
 * after the other, past what a service manager allows before it kills the process.
 */
export class ShutdownDeadline {
  #at: number | null = null;

  constructor(readonly ms: number) {}

  /** Shutdown began: the time left counts down from now. */
  start(): void {
    this.#at ??= Date.now() + this.ms;
  }

  /** Time left; the whole limit while shutdown has not begun (a node that failed to start). */
  remaining(): number {
    return this.#at === null ? this.ms : Math.max(0, this.#at - Date.now());
  }

  /**
   * Waits for `work` for the time left, then calls `onLate` and returns; the work goes on, or not,
   * with nothing waiting for it.
   */
  async wait(work: Promise<void>, onLate: () => void): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        onLate();
        resolve();
      }, this.remaining());
    });
    try {
      await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
