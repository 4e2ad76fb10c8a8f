/** What the keep-alive watch needs of a connection. */
export interface KeptAlive {
  /** When the client's last packet arrived, ms since the epoch. */
  readonly lastPacketAt: number;
  /** How long the client may stay silent, in ms; 0 for as long as it likes. */
  readonly silenceLimitMs: number;
  keepAliveExpired(): void;
}

/** How often the watch looks at the connections. */
const CHECK_EVERY_MS = 1000;

/**
 * Keep-alive enforcement for all of a broker's connections: one from which nothing arrives for
 * one and a half times its keep-alive is dead (MQTT 5 section 3.1.2.10). Each packet only records
 * its time, and one timer looks at every connection each second, so a connection costs no timer
 * of its own (a few hundred bytes each, which for many idle devices is much of their memory). A
 * dead connection is closed within a second of its limit.
 */
export class KeepAliveWatch {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly connections: Iterable<KeptAlive>) {
    this.timer = setInterval(() => this.check(Date.now()), CHECK_EVERY_MS);
    this.timer.unref();
  }

  /** Ends the connections that have been silent past their limit at `now`. */
  check(now: number): void {
    for (const connection of this.connections) {
      const limit = connection.silenceLimitMs;
      if (limit > 0 && now - connection.lastPacketAt >= limit) connection.keepAliveExpired();
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
