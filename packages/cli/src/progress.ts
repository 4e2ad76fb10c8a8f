/**
 * Counts messages for a long run: a progress line on stderr while it runs (rewritten in place on a
 * terminal, one line a second otherwise) and the rate at the end.
 */
export class Progress {
  private done = 0;
  private readonly started = process.hrtime.bigint();
  private timer: NodeJS.Timeout | undefined;
  /** A line is on the terminal without its newline. */
  private shown = false;

  constructor(
    private readonly verb: string,
    private readonly total: number | undefined,
    private readonly enabled: boolean,
    private readonly err: (text: string) => void,
    private readonly terminal = process.stderr.isTTY,
  ) {
    if (enabled) {
      this.timer = setInterval(() => this.show(), terminal ? 250 : 1000);
      this.timer.unref();
    }
  }

  get count(): number {
    return this.done;
  }

  add(n = 1): void {
    this.done += n;
  }

  private seconds(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e9;
  }

  private line(): string {
    const seconds = this.seconds();
    const rate = formatRate(seconds > 0 ? this.done / seconds : 0);
    const of = this.total === undefined ? '' : `/${this.total}`;
    return `${this.verb} ${this.done}${of} ${messages(this.total ?? this.done)}, ${rate} msg/s`;
  }

  private show(): void {
    if (this.terminal) {
      this.shown = true;
      this.err(`\r\x1b[K${this.line()}`);
    } else {
      this.err(`${this.line()}\n`);
    }
  }

  /**
   * Takes the progress line off the terminal before a received message is printed, so the two do
   * not run into each other when stdout and stderr share the terminal; the next tick redraws it.
   */
  clear(): void {
    if (!this.shown) return;
    this.shown = false;
    this.err('\r\x1b[K');
  }

  /** Stops the line; prints the final count and rate for a counted run or when progress is shown. */
  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
    if (this.total === undefined && !this.enabled) return;
    const seconds = this.seconds();
    const rate = formatRate(seconds > 0 ? this.done / seconds : this.done);
    this.err(`${this.verb} ${this.done} ${messages(this.done)} in ${seconds.toFixed(2)}s (${rate} msg/s)\n`);
  }

  /** Why a receive that timed out ended: what it got of what it wanted. */
  timedOut(seconds: number): string {
    const of = this.total === undefined ? '' : ` of ${this.total}`;
    return `${this.verb} ${this.done}${of} ${messages(this.done)} within ${seconds}s`;
  }
}

const messages = (n: number) => (n === 1 ? 'message' : 'messages');

/** A rate in messages a second: whole numbers from 10 up, one decimal below (so 1 in 2 s is 0.5, not 0). */
function formatRate(perSecond: number): string {
  return perSecond >= 10 ? String(Math.round(perSecond)) : perSecond.toFixed(1);
}
