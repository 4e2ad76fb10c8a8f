/**
 * Keep-alive enforcement for one connection: if nothing arrives from the client for one and a
 * half times its keep-alive, the connection is dead (MQTT 5 section 3.1.2.10). Each packet only
 * records the time; the timer fires about once per period and re-arms for what is left.
 */
export class KeepAlive {
  private last = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private readonly limitMs: number;

  constructor(
    seconds: number,
    private readonly onTimeout: () => void,
  ) {
    this.limitMs = seconds * 1500;
    if (seconds > 0) this.arm(this.limitMs);
  }

  /** A packet arrived. */
  touch(now: number): void {
    this.last = now;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.check(), ms);
    this.timer.unref();
  }

  private check(): void {
    const idle = Date.now() - this.last;
    if (idle >= this.limitMs) {
      this.timer = null;
      this.onTimeout();
    } else {
      this.arm(this.limitMs - idle);
    }
  }
}
