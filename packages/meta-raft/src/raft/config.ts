// The settings of a Raft node, with their defaults and checks.
import type { Logger } from '@robustmq/core';
import { ConfigError } from '@robustmq/core';
import { isNodeId } from './conf-change.js';
import type { RaftStorage } from './storage.js';
import type { NodeId } from './types.js';

/** How a leader confirms it still leads before serving a read. */
export type ReadOnlyOption =
  /** ReadIndex: a heartbeat round answered by a majority (the default). */
  | 'safe'
  /**
   * Lease: no round trip while a majority answered a heartbeat sent less than an election timeout
   * ago. Needs `checkQuorum`, clocks that tick at nearly the same rate, and restarts slower than
   * an election timeout.
   */
  | 'lease';

export interface RaftOptions {
  id: NodeId;
  storage: RaftStorage;
  /** Uniform in [0, 1): drives the randomized election timeout. Seed it to replay a run. */
  random: () => number;
  /** Ticks without a leader before a follower campaigns; randomized up to twice this (default 10). */
  electionTick?: number;
  /** Ticks between a leader's heartbeats (default 1); must be below `electionTick`. */
  heartbeatTick?: number;
  /** The last index the host's state machine holds (after a restart); default: the snapshot's. */
  applied?: number;
  /** Bytes of entries in one append message (default 1 MiB; one entry always goes). */
  maxSizePerMsg?: number;
  /** Append messages in flight to one follower (default 256). */
  maxInflightMsgs?: number;
  /** Bytes of append messages in flight to one follower (default unlimited). */
  maxInflightBytes?: number;
  /** Bytes of committed entries in one Ready (default 64 MiB; one entry always goes). */
  maxCommittedSizePerReady?: number;
  /** Ask "would you vote?" before disrupting a group with a new term (default true). */
  preVote?: boolean;
  /** A leader steps down when it has not heard from a majority for an election timeout (default true). */
  checkQuorum?: boolean;
  /** Default `safe`. */
  readOnly?: ReadOnlyOption;
  /**
   * When true, a leader counts its own entries toward a commit only once the host reports them
   * durable with `RawNode.persisted`, so the host may make them durable after the Ready is
   * advanced, while the followers' answers are stepped (Raft thesis §10.2.1): entries held by a
   * majority of followers commit without the leader's write. The host then reports every durable
   * write of entries or snapshot, as leader or not. Default false: a leader counts its entries
   * once appended, and the host must make them durable before stepping any answer to them.
   */
  asyncLeaderPersistence?: boolean;
  logger?: Logger;
}

export type ResolvedRaftOptions = Required<Omit<RaftOptions, 'logger' | 'applied'>> &
  Pick<RaftOptions, 'logger' | 'applied'>;

const positiveInteger = (value: number): boolean => Number.isSafeInteger(value) && value > 0;

/** Fills in defaults and rejects impossible settings with a `ConfigError` naming the setting. */
export function resolveRaftOptions(options: RaftOptions): ResolvedRaftOptions {
  const resolved: ResolvedRaftOptions = {
    electionTick: 10,
    heartbeatTick: 1,
    maxSizePerMsg: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: Infinity,
    maxCommittedSizePerReady: 64 * 1024 * 1024,
    preVote: true,
    checkQuorum: true,
    readOnly: 'safe',
    asyncLeaderPersistence: false,
    ...options,
  };
  if (!isNodeId(resolved.id)) throw new ConfigError('raft.id', 'must be a positive integer');
  for (const key of ['electionTick', 'heartbeatTick', 'maxInflightMsgs'] as const) {
    if (!positiveInteger(resolved[key])) throw new ConfigError(`raft.${key}`, 'must be a positive integer');
  }
  for (const key of ['maxSizePerMsg', 'maxInflightBytes', 'maxCommittedSizePerReady'] as const) {
    if (!(resolved[key] > 0)) throw new ConfigError(`raft.${key}`, 'must be positive');
  }
  if (resolved.heartbeatTick >= resolved.electionTick) {
    throw new ConfigError('raft.heartbeatTick', 'must be below electionTick');
  }
  if (resolved.readOnly !== 'safe' && resolved.readOnly !== 'lease') {
    throw new ConfigError('raft.readOnly', "must be 'safe' or 'lease'");
  }
  if (resolved.readOnly === 'lease' && !resolved.checkQuorum) {
    throw new ConfigError('raft.readOnly', "'lease' needs checkQuorum");
  }
  return resolved;
}
