import { ErrorCode, isRobustMQError, type BrokerCluster, type Logger, type MetaStore } from '@robustmq/core';

/** Who holds each `$exclusive/` filter in the cluster: `/mqtt/exclusive/<filter>`. */
const PREFIX = '/mqtt/exclusive/';
const MQTT = 'mqtt';

interface Claim {
  /** The client id of the session holding the filter. */
  c: string;
  /** The broker serving that session when it claimed. */
  n: number;
}

const keyOf = (filter: string) => PREFIX + encodeURIComponent(filter);
const encode = (claim: Claim) => Buffer.from(JSON.stringify(claim));
const decode = (value: Uint8Array) => JSON.parse(Buffer.from(value).toString()) as Claim;

/**
 * `$exclusive/` subscriptions across the brokers of a cluster: one session in the whole cluster
 * holds each filter. A claim is a meta record written by compare-and-set; one left by a broker
 * that is gone, or naming a session its broker no longer holds the filter for, is taken over.
 */
export class ExclusiveAcrossBrokers {
  constructor(
    private readonly meta: MetaStore,
    private readonly cluster: BrokerCluster,
    /** Whether a session of this broker holds `filter`, for another broker's question. */
    private readonly holdsHere: (filter: string, clientId: string) => boolean,
    private readonly logger: Logger,
  ) {
    cluster.handle('mqtt.exclusive.held', (body) => {
      const { f, c } = body as { f: string; c: string };
      return Promise.resolve({ held: this.holdsHere(f, c) });
    });
  }

  /** Whether the session of `clientId` may hold `filter`; claims it when it may. */
  async claim(filter: string, clientId: string): Promise<boolean> {
    const key = keyOf(filter);
    const mine: Claim = { c: clientId, n: this.cluster.nodeId };
    for (let attempt = 0; attempt < 3; attempt++) {
      const entry = await this.meta.get(key);
      if (entry !== null) {
        const held = decode(entry.value);
        const same = held.c === clientId;
        if (same && held.n === mine.n) return true;
        if (!same && (await this.stillHeld(filter, held))) return false;
      }
      try {
        await this.meta.put(key, encode(mine), { ifRevision: entry?.modRevision ?? 0 });
        return true;
      } catch (error) {
        // Another broker wrote the claim meanwhile: look again.
        if (!isRobustMQError(error, ErrorCode.Conflict)) throw error;
      }
    }
    return false;
  }

  /** The session of `clientId` on this broker gave `filter` up. */
  release(filter: string, clientId: string): void {
    const key = keyOf(filter);
    void (async () => {
      const entry = await this.meta.get(key);
      if (entry === null) return;
      const held = decode(entry.value);
      if (held.c !== clientId || held.n !== this.cluster.nodeId) return;
      await this.meta.delete(key, { ifRevision: entry.modRevision });
    })().catch((error: unknown) => {
      // A claim left behind is taken over once its broker says it does not hold the filter.
      if (!isRobustMQError(error, ErrorCode.Conflict)) {
        this.logger.warn({ err: error, filter }, 'an exclusive subscription was not released in the cluster');
      }
    });
  }

  private async stillHeld(filter: string, held: Claim): Promise<boolean> {
    if (!this.cluster.brokers(MQTT).includes(held.n)) return false;
    if (held.n === this.cluster.nodeId) return this.holdsHere(filter, held.c);
    try {
      const answer = await this.cluster.call<{ held: boolean }>(held.n, 'mqtt.exclusive.held', {
        f: filter,
        c: held.c,
      });
      return answer.held;
    } catch {
      // Not reached: the claim stands, as the broker may still serve the session.
      return true;
    }
  }
}
