import type { BrokerCluster, PeerCallOptions, PeerHandler } from './cluster.js';
import { ErrorCode, RobustMQError } from './errors.js';

/** A call's deadline when it names none, as between brokers over the network. */
const DEFAULT_DEADLINE_MS = 5000;

interface Member {
  handlers: Map<string, PeerHandler>;
  announced: Map<string, unknown>;
  listeners: Set<() => void>;
}

/**
 * Brokers in one process that call each other's handlers directly: a {@link BrokerCluster} for
 * each, for running a protocol plugin as several brokers on one storage and meta store (tests,
 * embedding). Calls to a method can be held back, to see what happens while they are on their way.
 */
export class InProcessBrokers {
  private readonly members = new Map<number, Member>();
  private held: { method: string; until: Promise<void> } | null = null;

  /** The cluster as broker `nodeId` sees it; it has joined at once. */
  member(nodeId: number): BrokerCluster {
    const self: Member = { handlers: new Map(), announced: new Map(), listeners: new Set() };
    this.members.set(nodeId, self);
    const brokers = (name?: string) => this.brokers(name);
    const cluster: BrokerCluster = {
      nodeId,
      brokers,
      peers: (name) => brokers(name).filter((id) => id !== nodeId),
      announce: (name, value) => {
        if (value === undefined) self.announced.delete(name);
        else self.announced.set(name, value);
        this.changed();
      },
      announced: (id, name) => this.members.get(id)?.announced.get(name),
      onChange: (listener) => {
        self.listeners.add(listener);
        setImmediate(() => {
          if (self.listeners.has(listener)) listener();
        });
        return () => self.listeners.delete(listener);
      },
      call: async <T>(id: number, method: string, body: unknown, options?: PeerCallOptions): Promise<T> => {
        if (this.held?.method === method) await this.held.until;
        const handler = this.members.get(id)?.handlers.get(method);
        if (!handler) throw new RobustMQError(ErrorCode.Unavailable, `broker ${id} does not serve ${method}`);
        // A broker that stopped or hangs answers nothing: the caller gets TIMEOUT, as over a network.
        const deadlineMs = options?.deadlineMs ?? DEFAULT_DEADLINE_MS;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const late = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new RobustMQError(
                  ErrorCode.Timeout,
                  `broker ${id} did not answer ${method} in ${deadlineMs} ms`,
                ),
              ),
            deadlineMs,
          );
        });
        try {
          return (await Promise.race([handler(body), late])) as T;
        } finally {
          clearTimeout(timer);
        }
      },
      handle: (method, handler) => void self.handlers.set(method, handler),
    };
    return cluster;
  }

  /** Broker `nodeId` is gone (stopped or crashed): the others see it leave, and it is not reached. */
  remove(nodeId: number): void {
    this.members.delete(nodeId);
    this.changed();
  }

  /** Holds calls to `method` until `until` settles; `null` lets calls through again. */
  hold(method: string | null, until?: Promise<void>): void {
    this.held = method === null ? null : { method, until: until ?? Promise.resolve() };
  }

  private brokers(name?: string): number[] {
    return [...this.members]
      .filter(([, member]) => name === undefined || member.announced.has(name))
      .map(([id]) => id)
      .sort((a, b) => a - b);
  }

  private changed(): void {
    setImmediate(() => {
      for (const member of this.members.values()) for (const listener of member.listeners) listener();
    });
  }
}
