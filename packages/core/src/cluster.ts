import { ErrorCode, RobustMQError } from './errors.js';

/** Options of a call to another broker. */
export interface PeerCallOptions {
  /** Fails the call with `TIMEOUT` past this many ms (default 5 s). */
  deadlineMs?: number;
}

/** Answers calls other brokers make to `method` on this one; a `RobustMQError` reaches the caller. */
export type PeerHandler = (body: unknown) => Promise<unknown>;

/**
 * The brokers that serve one storage together, as this broker sees them. Brokers are stateless, so
 * a client may reach any of them; what must happen in one place (a session, a consumer group) is
 * given an owner among the live brokers ({@link rendezvousOwner}), and what a client on one broker
 * sends to clients on another travels between the brokers through {@link call}.
 *
 * Each protocol announces itself (with what its peers need to know, such as advertised listeners)
 * and counts only the brokers that announced the same: a broker may run other protocols.
 *
 * A broker on storage of its own, or without a shared meta service, is a cluster of one.
 */
export interface BrokerCluster {
  readonly nodeId: number;
  /**
   * Live broker ids, ascending; with `announcing`, only those that announced that name (this one
   * included once it has). Empty until this broker has joined (seen the others once), and while
   * it is cut off from peers it knew: they will have taken over what it owned.
   */
  brokers(announcing?: string): readonly number[];
  /** The same without this broker. */
  peers(announcing?: string): readonly number[];
  /**
   * Tells the other brokers `value` under `name` (JSON), with this broker's heartbeats; `undefined`
   * withdraws it. Peers see it within a heartbeat.
   */
  announce(name: string, value: unknown): void;
  /** What broker `nodeId` (this one included) announced under `name`, or undefined. */
  announced(nodeId: number, name: string): unknown;
  /**
   * Calls `listener` once this broker has joined, and whenever the live brokers or their
   * announcements change; returns what removes it.
   */
  onChange(listener: () => void): () => void;
  /**
   * Calls the handler broker `nodeId` registered for `method`. Fails `UNAVAILABLE` when the broker
   * cannot be reached; a call in flight when its connection drops may have run.
   */
  call<T>(nodeId: number, method: string, body: unknown, options?: PeerCallOptions): Promise<T>;
  /** Serves `method` to the other brokers; one handler per method. */
  handle(method: string, handler: PeerHandler): void;
}

/** The cluster of a broker that serves alone: itself, whatever it announced. */
export function soloCluster(nodeId: number): BrokerCluster {
  const self = [nodeId] as const;
  const announcements = new Map<string, unknown>();
  return {
    nodeId,
    brokers: () => self,
    peers: () => [],
    announce: (name, value) => {
      if (value === undefined) announcements.delete(name);
      else announcements.set(name, value);
    },
    announced: (id, name) => (id === nodeId ? announcements.get(name) : undefined),
    onChange: () => () => {},
    call: (id) =>
      Promise.reject(
        new RobustMQError(ErrorCode.Unavailable, `broker ${id} is not in this broker's cluster`),
      ),
    handle: () => {},
  };
}

/**
 * Which broker owns a key, chosen by rendezvous hashing over `brokers`: every broker with the same
 * view picks the same owner, and when a broker joins or leaves only the keys it gains or held move.
 */
export function rendezvousOwner(key: string, brokers: readonly number[]): number | null {
  if (brokers.length === 1) return brokers[0]!;
  let owner: number | null = null;
  let best = -1;
  const keyHash = hashString(key);
  for (const id of brokers) {
    const score = mix(keyHash ^ Math.imul(id + 1, 0x9e3779b1));
    if (score > best || (score === best && owner !== null && id < owner)) {
      best = score;
      owner = id;
    }
  }
  return owner;
}

/** FNV-1a over the UTF-16 code units. */
function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A finalizer that spreads every input bit over the whole result, as an unsigned 32-bit number. */
function mix(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
