// The host-facing face of a Raft node: feed it input, take a Ready, do what it says, advance.
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type { RaftOptions } from './config.js';
import type { ProgressState } from './progress.js';
import { Raft } from './raft.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftRole,
  Ready,
  SoftState,
} from './types.js';

/** Where a leader believes one member's log is. */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly isLearner: boolean;
  readonly inflight: number;
  readonly recentActive: boolean;
}

/** A snapshot of a node's state, for tests, metrics and admin views. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: RaftRole;
  readonly leader: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
  /** On a leader: each member's progress. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
}

/** Where a proposal landed: it is committed once an entry with this index and term is. */
export interface Proposed {
  readonly index: number;
  readonly term: number;
}

const sameHardState = (a: HardState, b: HardState): boolean =>
  a.term === b.term && a.vote === b.vote && a.commit === b.commit;

/**
 * A Raft node driven synchronously by its host. Input: {@link tick} (the host's clock),
 * {@link step} (messages from peers), {@link propose}, {@link readIndex} and the rest. Output:
 * {@link ready}, handled as {@link Ready} describes and acknowledged with {@link advance}. Input may
 * keep coming between `ready()` and `advance()`, but a second `ready()` waits for the advance.
 */
export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pending: Ready | null = null;

  constructor(options: RaftOptions) {
    this.raft = new Raft(options);
    this.prevSoftState = this.softState();
    this.prevHardState = this.hardState();
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Advances the node's clock by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (after a PreVote round when PreVote is on). */
  campaign(): void {
    this.raft.hup(false);
  }

  /** Handles a message from a peer. Messages for another node are refused with `INVALID_ARGUMENT`. */
  step(message: Message): void {
    if (message.to !== this.raft.id) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `raft: message for node ${message.to} given to node ${this.raft.id}`,
      );
    }
    this.raft.step(message);
  }

  /**
   * Appends one command (or several, as one batch) to the leader's log. Throws `UNAVAILABLE` on a
   * node that is not the leader or is handing leadership over. The command is committed once an
   * entry with the returned index and term is; a different term there means it was lost.
   */
  propose(data: Uint8Array | readonly Uint8Array[]): Proposed {
    const batch = data instanceof Uint8Array ? [data] : data;
    if (batch.length === 0) throw new RobustMQError(ErrorCode.InvalidArgument, 'raft: empty proposal');
    const index = this.raft.propose(batch);
    return { index, term: this.raft.term };
  }

  /** Proposes a membership change (see {@link Raft.proposeConfChange} for when it is refused). */
  proposeConfChange(change: ConfChange): Proposed {
    const index = this.raft.proposeConfChange(change);
    return { index, term: this.raft.term };
  }

  /**
   * Asks for a linearizable read point; a {@link Ready.readStates} entry with this `context` answers
   * it. Contexts must be unique among outstanding requests. Throws `UNAVAILABLE` with no leader
   * known; the request may also be lost (a new leader, a lost message), so the host times it out.
   */
  readIndex(context: string): void {
    if (context === '')
      throw new RobustMQError(ErrorCode.InvalidArgument, 'raft: read context must not be empty');
    this.raft.readIndex(context);
  }

  /** Hands leadership to `target`; a follower forwards the request to the leader. */
  transferLeader(target: NodeId): void {
    this.raft.transferLeader(target);
  }

  /**
   * With `asyncLeaderPersistence`: this node's log is durable up to `index`, whose entry has
   * `term` (a report about entries the log no longer holds is ignored). Report every durable write
   * of entries, and an installed snapshot by its index and term.
   */
  persisted(index: number, term: number): void {
    this.raft.persisted(index, term);
  }

  /** The transport could not reach `id`. */
  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /** The snapshot message sent to `id` was delivered (`ok`) or lost. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  /** The membership in force at `index` (at or above the snapshot), for snapshots the host takes. */
  confStateAt(index: number): ConfState {
    return this.raft.confStateAt(index);
  }

  /** Whether {@link ready} has anything to do. */
  hasReady(): boolean {
    if (this.pending !== null) return false;
    const raft = this.raft;
    raft.flush();
    const soft = this.softState();
    return (
      soft.leader !== this.prevSoftState.leader ||
      soft.role !== this.prevSoftState.role ||
      !sameHardState(this.hardState(), this.prevHardState) ||
      raft.log.unstable.snapshot !== undefined ||
      raft.log.unstableEntries().length > 0 ||
      raft.log.hasNextCommittedEntries() ||
      raft.msgs.length > 0 ||
      raft.readStates.length > 0
    );
  }

  /** What the host must do now. Throws `INVALID_ARGUMENT` if the previous Ready is not advanced. */
  ready(): Ready {
    if (this.pending !== null) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        'raft: ready() before advance() of the previous Ready',
      );
    }
    const raft = this.raft;
    raft.flush();
    const soft = this.softState();
    const hard = this.hardState();
    const softChanged = soft.leader !== this.prevSoftState.leader || soft.role !== this.prevSoftState.role;
    const hardChanged = !sameHardState(hard, this.prevHardState);
    const snapshot = raft.log.unstable.snapshot;
    const entries = [...raft.log.unstableEntries()];
    const ready: Ready = {
      ...(softChanged ? { softState: soft } : {}),
      ...(hardChanged ? { hardState: hard } : {}),
      entries,
      ...(snapshot !== undefined ? { snapshot } : {}),
      committedEntries: raft.log.nextCommittedEntries(raft.maxCommittedSizePerReady),
      messages: raft.msgs,
      readStates: raft.readStates,
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hard.term !== this.prevHardState.term ||
        hard.vote !== this.prevHardState.vote,
    };
    raft.msgs = [];
    raft.readStates = [];
    this.pending = ready;
    return ready;
  }

  /** Acknowledges the last {@link ready}: its writes are durable and its entries applied. */
  advance(): void {
    const ready = this.pending;
    if (ready === null) throw new RobustMQError(ErrorCode.InvalidArgument, 'raft: advance() without a Ready');
    this.pending = null;
    const log = this.raft.log;
    if (ready.softState !== undefined) this.prevSoftState = ready.softState;
    if (ready.hardState !== undefined) this.prevHardState = ready.hardState;
    if (ready.snapshot !== undefined) {
      log.stableSnapTo(ready.snapshot.metadata.index);
      log.appliedTo(ready.snapshot.metadata.index);
    }
    const last = ready.entries[ready.entries.length - 1];
    if (last !== undefined) log.stableTo(last.index, last.term);
    const applied = ready.committedEntries[ready.committedEntries.length - 1];
    if (applied !== undefined) log.appliedTo(applied.index);
    this.raft.pruneConfsBelow(log.storage.firstIndex() - 1);
  }

  status(): RaftStatus {
    const raft = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    for (const [id, p] of raft.progress) {
      progress.set(id, {
        match: p.match,
        next: p.next,
        state: p.state,
        isLearner: p.isLearner,
        inflight: p.inflights.count,
        recentActive: p.recentActive,
      });
    }
    return {
      id: raft.id,
      role: raft.role,
      leader: raft.lead,
      term: raft.term,
      vote: raft.vote,
      commit: raft.log.committed,
      applied: raft.log.applied,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      lastTerm: raft.log.lastTerm(),
      conf: raft.conf,
      leadTransferee: raft.leadTransferee,
      progress,
    };
  }

  /** Entry terms and data for `[lo, hi)` of this node's log (undefined where compacted). */
  entries(lo: number, hi: number): Entry[] | undefined {
    return this.raft.log.slice(lo, hi);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}
