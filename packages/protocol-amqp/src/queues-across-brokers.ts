import { randomUUID } from 'node:crypto';
import { rendezvousOwner, type BrokerCluster, type Logger } from '@robustmq/core';
import type { AmqpBroker } from './broker.js';
import { ClusterQueue } from './cluster-queue.js';
import type { Outcome } from './message-queue.js';
import { RemoteConsumer, type RelayedDelivery } from './remote-consumer.js';

/** The name AMQP brokers announce themselves by to the cluster. */
/** What AMQP brokers announce to each other, and count each other by. */
export const AMQP = 'amqp';
/** Deadline of calls between brokers. */
const CALL_DEADLINE_MS = 5000;
/** How often a relayed link checks that its queue's owner still knows it. */
const REFRESH_MS = 5000;
/**
 * How long a queue given up at another broker's request stays given up while this broker's view
 * still names it the owner: views differ only until the brokers' next heartbeats.
 */
const RELEASE_HOLD_MS = 3000;

/**
 * What the AMQP brokers of one cluster (brokers on one storage) do together, so that a queue's
 * consumers may be on any of them and still compete for its messages:
 *
 * - each queue has one owner among the live AMQP brokers, by rendezvous hashing, which alone
 *   delivers its messages and keeps its settled offsets; a broker taking a queue over first asks
 *   the others to let it go, so that what they settled is saved before it reads it back;
 * - a consumer's link on another broker is relayed to the owner ({@link ClusterQueue} there,
 *   {@link RemoteConsumer} here);
 * - messages sent to a queue on any broker go to its storage shard, where the owner reads them.
 */
export class QueuesAcrossBrokers {
  readonly nodeId: number;
  private readonly handles = new Set<ClusterQueue>();
  private readonly relayed = new Map<string, ClusterQueue>();
  private readonly remotes = new Map<string, RemoteConsumer>();
  /** Queues given up at another broker's request though this view still names this broker, and until when. */
  private readonly released = new Map<string, number>();
  private view = '';
  private readonly boot = randomUUID().slice(0, 8);
  private keys = 0;
  private stopChanges: (() => void) | null = null;
  private refreshTimer: NodeJS.Timeout | null = null;
  private readonly logger: Logger;

  constructor(
    readonly broker: AmqpBroker,
    private readonly cluster: BrokerCluster,
  ) {
    this.nodeId = cluster.nodeId;
    this.logger = broker.logger;
    const handle = <T>(method: string, handler: (body: T) => unknown) =>
      cluster.handle(method, async (body) => (await handler(body as T)) ?? {});
    handle<{ q: string; k: string }>('amqp.consume', (body) => this.consume(body.q, body.k));
    handle<{ k: string; s: number; c: number; r: number }>('amqp.credit', (body) => {
      const remote = this.remotes.get(body.k);
      if (!remote) return { unknown: true };
      remote.report(body.s, body.c, body.r);
      return null;
    });
    handle<{ k: string; s: Array<[number, Outcome]> }>('amqp.settle', (body) =>
      this.remotes.get(body.k)?.settle(body.s),
    );
    handle<{ k: string }>('amqp.cancel', (body) => this.dropRemote(body.k));
    handle<{ k: string; d: RelayedDelivery[] }>('amqp.deliver', (body) => {
      const relay = this.relayed.get(body.k);
      if (!relay) return { gone: true };
      relay.take(body.k, body.d);
      return null;
    });
    handle<{ k: string }>('amqp.moved', (body) => this.relayed.get(body.k)?.moved());
    handle<{ q: string }>('amqp.release', (body) => this.release(body.q));
    handle<{ q: string }>('amqp.open', async (body) => {
      if (this.ownerOf(body.q) === this.nodeId) await this.broker.queue(body.q);
      return null;
    });
  }

  /** Takes part in the cluster: from its first view on, queues follow their owners. */
  start(): void {
    this.cluster.announce(AMQP, {});
    this.stopChanges = this.cluster.onChange(() => this.changed());
    this.refreshTimer = setInterval(() => {
      for (const handle of this.relayed.values()) handle.refresh();
    }, REFRESH_MS);
    this.refreshTimer.unref();
  }

  stop(): void {
    this.stopChanges?.();
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    for (const remote of this.remotes.values()) remote.leave();
    this.remotes.clear();
  }

  /** The broker that owns queue `name` in this broker's view; null until it has one. */
  ownerOf(name: string): number | null {
    const live = this.cluster.brokers(AMQP);
    if (!live.includes(this.nodeId)) return null;
    const owner = rendezvousOwner(name, live);
    if (owner === this.nodeId && this.released.size > 0) {
      const until = this.released.get(name);
      if (until !== undefined) {
        if (until > Date.now()) return null;
        this.released.delete(name);
      }
    }
    return owner;
  }

  /** The queue for a consumer's link on this broker. */
  queue(name: string): ClusterQueue {
    const handle = new ClusterQueue(name, this);
    this.handles.add(handle);
    return handle;
  }

  forget(handle: ClusterQueue): void {
    this.handles.delete(handle);
  }

  /** A key the owner knows a relayed link by, new for each time it reaches an owner. */
  register(handle: ClusterQueue): string {
    const key = `${this.nodeId}.${this.boot}.${(this.keys++).toString(36)}`;
    this.relayed.set(key, handle);
    return key;
  }

  unregister(key: string): void {
    this.relayed.delete(key);
  }

  call<T>(node: number, method: string, body: unknown): Promise<T> {
    return this.cluster.call<T>(node, method, body, { deadlineMs: CALL_DEADLINE_MS });
  }

  /** A link could not take its queue from `owner`; it tries again shortly. */
  failed(name: string, owner: number, error: unknown): void {
    if (owner === this.nodeId) {
      this.logger.info({ err: error, queue: name }, 'a queue did not open here; trying again');
    } else {
      this.logger.warn(
        { err: error, queue: name, owner },
        'the owner of a queue could not be reached; trying again',
      );
    }
  }

  /**
   * Makes sure a queue owned here or elsewhere is open at its owner, so that it counts for metrics
   * and comes back after a restart even before a consumer attaches.
   */
  async touch(name: string): Promise<void> {
    const owner = this.ownerOf(name);
    if (owner === this.nodeId) await this.broker.queue(name);
    else if (owner !== null) {
      await this.call(owner, 'amqp.open', { q: name }).catch((error: unknown) =>
        this.logger.debug({ err: error, queue: name, owner }, 'opening a queue at its owner failed'),
      );
    }
  }

  /** Before this broker opens a queue it owns: any other broker that has it open lets it go. */
  async takeOver(name: string): Promise<void> {
    await Promise.all(
      this.cluster
        .peers(AMQP)
        .map((peer) =>
          this.call(peer, 'amqp.release', { q: name }).catch((error: unknown) =>
            this.logger.warn(
              { err: error, queue: name, broker: peer },
              'a broker did not let go of a queue; taking it over anyway',
            ),
          ),
        ),
    );
  }

  /** A queue closed here: its consumers follow it to its owner. */
  closed(name: string): void {
    for (const remote of [...this.remotes.values()]) {
      if (remote.queue.name !== name) continue;
      this.dropRemote(remote.key);
      this.call(remote.node, 'amqp.moved', { k: remote.key }).catch(() => {});
    }
    for (const handle of this.handles) if (handle.name === name) handle.reattach();
  }

  private async consume(name: string, key: string): Promise<{ ok: boolean }> {
    if (this.ownerOf(name) !== this.nodeId) return { ok: false };
    let queue;
    try {
      queue = await this.broker.queue(name);
    } catch (error) {
      this.logger.warn(
        { err: error, queue: name },
        'opening a queue for a consumer on another broker failed',
      );
      return { ok: false };
    }
    if (this.ownerOf(name) !== this.nodeId) return { ok: false };
    const node = Number(key.slice(0, key.indexOf('.')));
    const remote = new RemoteConsumer(key, node, queue, (consumer, deliveries) =>
      this.send(consumer, deliveries),
    );
    this.remotes.set(key, remote);
    queue.addConsumer(remote);
    return { ok: true };
  }

  private send(remote: RemoteConsumer, deliveries: RelayedDelivery[]): void {
    this.call<{ gone?: boolean }>(remote.node, 'amqp.deliver', { k: remote.key, d: deliveries }).then(
      (answer) => {
        if (answer.gone) this.dropRemote(remote.key);
      },
      (error: unknown) => {
        // Its messages go to the other consumers; that broker's link finds out when it next reports.
        this.logger.warn(
          { err: error, queue: remote.queue.name, broker: remote.node },
          'a consumer on another broker could not be reached; its messages go to the others',
        );
        this.dropRemote(remote.key);
      },
    );
  }

  private dropRemote(key: string): void {
    const remote = this.remotes.get(key);
    if (!remote) return;
    this.remotes.delete(key);
    remote.leave();
  }

  /** Another broker takes queue `name` over: this one saves what was settled and lets it go. */
  private async release(name: string): Promise<void> {
    if (rendezvousOwner(name, this.cluster.brokers(AMQP)) === this.nodeId) {
      this.released.set(name, Date.now() + RELEASE_HOLD_MS);
    }
    await this.broker.closeQueue(name);
  }

  private changed(): void {
    const view = this.cluster.brokers(AMQP).join();
    if (view !== this.view) this.released.clear();
    this.view = view;
    for (const handle of this.handles) handle.recheck();
    void this.broker
      .followOwners()
      .catch((error: unknown) => this.logger.error({ err: error }, 'moving queues to their owners failed'));
  }
}
