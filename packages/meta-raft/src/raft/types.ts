// The values the Raft core takes in and gives out: log entries, durable state, snapshots, messages.

/** A node's id in a Raft group: a positive safe integer, never reused. 0 means "none". */
export type NodeId = number;

/** No node: no vote cast, no leader known. */
export const NONE: NodeId = 0;

/** A `normal` entry carries an application command; a `conf` entry an encoded {@link ConfChange}. */
export type EntryType = 'normal' | 'conf';

/** One log entry. Entries are shared between the log, messages and `Ready`; never mutate one. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before a node sends any message that depends on it. */
export interface HardState {
  readonly term: number;
  /** Whom this node voted for in `term` ({@link NONE} if nobody). */
  readonly vote: NodeId;
  /** The highest index known committed. */
  readonly commit: number;
}

/** The members of a group: voters count in elections and commits, learners only receive the log. */
export interface ConfState {
  /** Sorted ascending. */
  readonly voters: readonly NodeId[];
  /** Sorted ascending, disjoint from `voters`. */
  readonly learners: readonly NodeId[];
}

/** One membership change: the group changes by at most one voter at a time. */
export type ConfChange =
  /** Adds a voter, or promotes a learner to voter. */
  | { readonly type: 'addVoter'; readonly nodeId: NodeId }
  /** Adds a learner, or demotes a voter to learner. */
  | { readonly type: 'addLearner'; readonly nodeId: NodeId }
  /** Removes a voter or a learner. */
  | { readonly type: 'removeNode'; readonly nodeId: NodeId };

export interface SnapshotMetadata {
  /** The last log index the snapshot covers. */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The membership in force at `index`. */
  readonly conf: ConfState;
}

/** The application state as of `metadata.index`, standing in for the log up to there. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** A linearizable read point: once the node has applied `index`, a read for `context` may be served. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

export type RaftRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** State that need not be durable: who leads and what this node is. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: RaftRole;
}

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** Leader to follower: entries after (`logTerm`, `index`), and the leader's commit index. */
export interface AppendMessage extends MessageBase {
  readonly type: 'append';
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * Follower to leader. Accepted: the follower's log matches the leader's up to `index`. Rejected:
 * the append after `index` did not match; the follower's log may match up to `rejectHint`, whose
 * term is `logTerm`, so the leader can skip a whole term of mismatch in one round trip.
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: 'appendResponse';
  readonly index: number;
  readonly reject: boolean;
  readonly rejectHint: number;
  readonly logTerm: number;
}

/**
 * A request for a vote (or, for `preVote`, an ask whether a vote would be granted in `term`),
 * from a candidate whose last entry is (`logTerm`, `index`). `transfer` marks an election a leader
 * asked for, which may interrupt a leader's lease.
 */
export interface VoteMessage extends MessageBase {
  readonly type: 'vote' | 'preVote';
  readonly logTerm: number;
  readonly index: number;
  readonly transfer: boolean;
}

export interface VoteResponseMessage extends MessageBase {
  readonly type: 'voteResponse' | 'preVoteResponse';
  readonly reject: boolean;
}

/**
 * Leader to follower: "I still lead". `context` ties it to a ReadIndex round ('' when none);
 * `round` numbers the leader's heartbeat broadcasts, for lease reads.
 */
export interface HeartbeatMessage extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: string;
  readonly round: number;
}

/** Echoes the heartbeat's `context` and `round`. */
export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: 'heartbeatResponse';
  readonly context: string;
  readonly round: number;
}

/** Leader to a follower too far behind for the log: the state as a snapshot (InstallSnapshot). */
export interface SnapshotMessage extends MessageBase {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

/** Leader to its chosen successor: campaign now, without waiting for the election timeout. */
export interface TimeoutNowMessage extends MessageBase {
  readonly type: 'timeoutNow';
}

/** Follower to leader: a ReadIndex request on behalf of the follower's client. */
export interface ReadIndexMessage extends MessageBase {
  readonly type: 'readIndex';
  readonly context: string;
}

/** Leader to follower: the read point for a forwarded ReadIndex request. */
export interface ReadIndexResponseMessage extends MessageBase {
  readonly type: 'readIndexResponse';
  readonly index: number;
  readonly context: string;
}

/** Follower to leader: please hand leadership to `target`. */
export interface TransferLeaderMessage extends MessageBase {
  readonly type: 'transferLeader';
  readonly target: NodeId;
}

/** Everything nodes of a group send each other. */
export type Message =
  | AppendMessage
  | AppendResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | SnapshotMessage
  | TimeoutNowMessage
  | ReadIndexMessage
  | ReadIndexResponseMessage
  | TransferLeaderMessage;

export type MessageType = Message['type'];

/**
 * What a node asks of its host, handled in this order: (1) persist `snapshot`, then `entries`
 * (which may replace a suffix of the stored log), then `hardState`, syncing to disk when
 * `mustSync`; (2) only then send `messages`; (3) apply `snapshot` and then `committedEntries` to the
 * state machine and serve `readStates` once applied; (4) call `advance()`.
 */
export interface Ready {
  /** Set when the leader or this node's role changed. */
  readonly softState?: SoftState;
  /** Set when term, vote or commit changed. */
  readonly hardState?: HardState;
  /** Entries to append to durable storage. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader, to persist and apply. */
  readonly snapshot?: Snapshot;
  /** Committed entries to apply, in order. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send once the above is durable. */
  readonly messages: readonly Message[];
  /** ReadIndex results, to serve once the state machine has applied their index. */
  readonly readStates: readonly ReadState[];
  /** Whether the write must be synced (fsync) before the messages go out. */
  readonly mustSync: boolean;
}
