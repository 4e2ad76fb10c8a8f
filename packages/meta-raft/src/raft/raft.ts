// The Raft protocol as a deterministic state machine: messages, ticks and proposals in; messages,
// log writes and commits out. No clocks, timers, randomness or I/O: the host injects them all.
import type { Logger } from '@robustmq/core';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type { ResolvedRaftOptions, RaftOptions } from './config.js';
import { resolveRaftOptions } from './config.js';
import {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  invalidConfChangeReason,
} from './conf-change.js';
import { entrySize } from './entries.js';
import { Progress } from './progress.js';
import { hasQuorum, majorityValue, voteResult } from './quorum.js';
import { RaftLog } from './raft-log.js';
import { ReadIndexQueue } from './read-index.js';
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfState,
  Entry,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  RaftRole,
  ReadState,
  Snapshot,
  VoteMessage,
} from './types.js';
import { NONE } from './types.js';

/** A membership in force from `index` on (until the next one). */
interface ConfAt {
  readonly index: number;
  readonly conf: ConfState;
}

const notLeader = (lead: NodeId): RobustMQError =>
  new RobustMQError(
    ErrorCode.Unavailable,
    lead === NONE ? 'raft: no leader' : `raft: not the leader (the leader is node ${lead})`,
  );

/**
 * One node of a Raft group. Membership follows the Raft dissertation (section 4.1): a node uses the
 * latest membership in its log, committed or not, and a leader changes it by one voter at a time,
 * only once the previous change is committed and once it has committed an entry of its own term.
 */
export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: RaftRole = 'follower';
  readonly log: RaftLog;
  /** Messages to send, taken by the next Ready. */
  msgs: Message[] = [];
  /** ReadIndex results, taken by the next Ready. */
  readStates: ReadState[] = [];
  /** The node a leader is handing leadership to. */
  leadTransferee: NodeId = NONE;
  readonly progress = new Map<NodeId, Progress>();

  private readonly options: ResolvedRaftOptions;
  private readonly logger: Logger | undefined;
  /** Memberships from the snapshot's on, by the index of the entry that made each. */
  private confs: ConfAt[];
  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly reads = new ReadIndexQueue();
  /** Reads that came before the leader committed an entry of its term. */
  private readsAwaitingCommit: { from: NodeId; context: string }[] = [];
  /** Proposals appended since the last broadcast. */
  private needsBroadcast = false;
  private leaderTicks = 0;
  private heartbeatRound = 0;
  private readonly roundTicks = new Map<number, number>();
  private leaseFloorRound = 0;
  /** With `asyncLeaderPersistence`: the last index of this node's log known durable. */
  private durable: number;

  constructor(options: RaftOptions) {
    this.options = resolveRaftOptions(options);
    this.id = this.options.id;
    this.logger = this.options.logger;
    const storage = this.options.storage;
    this.log = new RaftLog(storage, this.options.applied ?? 0);
    const hardState = storage.hardState();
    // What the storage holds when the node starts is durable.
    this.durable = storage.lastIndex();
    const snapshot = storage.snapshot().metadata;
    this.confs = [{ index: snapshot.index, conf: snapshot.conf }];
    for (let lo = storage.firstIndex(), last = storage.lastIndex(); lo <= last;) {
      const chunk = storage.entries(lo, last + 1, 4 * 1024 * 1024);
      this.trackConfEntries(chunk);
      lo += chunk.length;
    }
    this.becomeFollower(hardState.term, NONE);
    this.vote = hardState.vote;
  }

  /** Bytes of committed entries one Ready may carry. */
  get maxCommittedSizePerReady(): number {
    return this.options.maxCommittedSizePerReady;
  }

  // ---- membership -------------------------------------------------------------------------------

  /** The membership in force: the latest in the log. */
  get conf(): ConfState {
    return this.confs[this.confs.length - 1]!.conf;
  }

  /** The index of the entry that made the membership in force. */
  get confIndex(): number {
    return this.confs[this.confs.length - 1]!.index;
  }

  /** The membership in force at `index` (for a snapshot taken there); `index` must be applied. */
  confStateAt(index: number): ConfState {
    let found = this.confs[0]!;
    for (const at of this.confs) if (at.index <= index) found = at;
    return found.conf;
  }

  /** Forgets memberships older than the one in force at `index` (the log below it is compacted). */
  pruneConfsBelow(index: number): void {
    while (this.confs.length > 1 && this.confs[1]!.index <= index) this.confs.shift();
  }

  private promotable(): boolean {
    return this.conf.voters.includes(this.id);
  }

  private trackConfEntries(entries: readonly Entry[]): boolean {
    let changed = false;
    for (const entry of entries) {
      if (entry.type !== 'conf') continue;
      this.confs.push({ index: entry.index, conf: applyConfChange(this.conf, decodeConfChange(entry.data)) });
      changed = true;
    }
    return changed;
  }

  /** Entries from `from` on were replaced or appended: memberships they made are redone. */
  private onEntriesWritten(from: number, written: readonly Entry[]): void {
    let changed = false;
    while (this.confs.length > 1 && this.confs[this.confs.length - 1]!.index >= from) {
      this.confs.pop();
      changed = true;
    }
    if (this.trackConfEntries(written)) changed = true;
    if (changed) this.membershipChanged();
  }

  private membershipChanged(): void {
    const { voters, learners } = this.conf;
    this.logger?.info({ raft: this.id, voters, learners }, 'raft membership changed');
    if (this.role !== 'leader') return;
    const members = new Set([...voters, ...learners]);
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = learners.includes(id);
      const known = this.progress.get(id);
      if (known !== undefined) {
        known.isLearner = isLearner;
      } else {
        const progress = this.newProgress(isLearner);
        if (id === this.id) progress.match = this.ownMatch();
        this.progress.set(id, progress);
      }
    }
    if (this.leadTransferee !== NONE && !voters.includes(this.leadTransferee)) this.abortLeaderTransfer();
    // A smaller quorum may commit more.
    if (this.maybeCommit()) this.broadcastAppend();
  }

  private newProgress(isLearner: boolean): Progress {
    return new Progress(
      this.log.lastIndex() + 1,
      this.options.maxInflightMsgs,
      this.options.maxInflightBytes,
      isLearner,
    );
  }

  // ---- roles ------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.options.electionTick + Math.floor(this.options.random() * this.options.electionTick);
    this.abortLeaderTransfer();
    this.votes.clear();
    this.progress.clear();
    this.reads.reset();
    this.readsAwaitingCommit = [];
    this.needsBroadcast = false;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
    this.logger?.info({ raft: this.id, term, leader: lead }, 'raft became follower');
  }

  private becomePreCandidate(): void {
    // A pre-candidate keeps its term and vote: it only asks.
    this.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
    this.logger?.info({ raft: this.id, term: this.term }, 'raft became pre-candidate');
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
    this.logger?.info({ raft: this.id, term: this.term }, 'raft became candidate');
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.leaderTicks = 0;
    this.heartbeatRound = 0;
    this.roundTicks.clear();
    this.leaseFloorRound = 0;
    const { voters, learners } = this.conf;
    for (const id of [...voters, ...learners]) this.progress.set(id, this.newProgress(learners.includes(id)));
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.match = this.ownMatch();
      self.becomeReplicate();
    }
    this.logger?.info({ raft: this.id, term: this.term }, 'raft became leader');
    // An empty entry of the new term, so that earlier entries commit with it.
    this.appendEntries([{ type: 'normal', data: new Uint8Array(0) }]);
  }

  // ---- time ---------------------------------------------------------------------------------------

  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    this.leaderTicks++;
    if (this.electionElapsed >= this.options.electionTick) {
      this.electionElapsed = 0;
      if (this.options.checkQuorum && !this.quorumActive()) {
        this.logger?.warn({ raft: this.id, term: this.term }, 'raft leader lost its quorum; stepping down');
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) {
        this.logger?.info(
          { raft: this.id, term: this.term, target: this.leadTransferee },
          'raft leader transfer abandoned after an election timeout',
        );
        this.abortLeaderTransfer();
      }
    }
    if (this.heartbeatElapsed >= this.options.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat();
    }
  }

  /** Whether a majority was heard from since the last check; starts a new round. */
  private quorumActive(): boolean {
    const active = new Set<NodeId>();
    for (const [id, progress] of this.progress) {
      if (id === this.id || progress.recentActive) active.add(id);
      if (id !== this.id) progress.recentActive = false;
    }
    return hasQuorum(this.conf.voters, active);
  }

  // ---- elections ----------------------------------------------------------------------------------

  /** Starts an election now (PreVote first unless `transfer`, which a leader asked for). */
  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.options.preVote && !transfer) this.campaign('preVote', false);
    else this.campaign('vote', transfer);
  }

  private campaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    let term: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'preVote') this.campaign('vote', false);
      else this.becomeLeader();
      return;
    }
    for (const to of this.conf.voters) {
      if (to === this.id) continue;
      this.msgs.push({
        type: kind,
        from: this.id,
        to,
        term,
        logTerm: this.log.lastTerm(),
        index: this.log.lastIndex(),
        transfer,
      });
    }
  }

  private poll(from: NodeId, granted: boolean): 'won' | 'lost' | 'pending' {
    if (!this.votes.has(from)) this.votes.set(from, granted);
    return voteResult(this.conf.voters, this.votes);
  }

  private handleVoteRequest(m: VoteMessage): void {
    const responseType = m.type === 'vote' ? 'voteResponse' : 'preVoteResponse';
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === 'preVote' && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers in the term asked about, so the pre-candidate can count it.
      this.msgs.push({ type: responseType, from: this.id, to: m.from, term: m.term, reject: false });
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.msgs.push({ type: responseType, from: this.id, to: m.from, term: this.term, reject: true });
    }
  }

  // ---- messages -----------------------------------------------------------------------------------

  /** Handles a message from another node of the group. */
  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === 'vote' || m.type === 'preVote') {
        // Within a leader's lease, a node ignores anyone trying to unseat it (a node removed from
        // the group, or one that was cut off), unless the leader itself asked for the election.
        const inLease =
          this.options.checkQuorum && this.lead !== NONE && this.electionElapsed < this.options.electionTick;
        if (inLease && !m.transfer) {
          this.logger?.info(
            { raft: this.id, term: this.term, from: m.from, type: m.type },
            'raft ignored a vote request within the leader lease',
          );
          return;
        }
      }
      if (m.type === 'preVote' || (m.type === 'preVoteResponse' && !m.reject)) {
        // Pre-votes are about a future term; they change nothing here.
      } else if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if (
        (this.options.checkQuorum || this.options.preVote) &&
        (m.type === 'heartbeat' || m.type === 'append')
      ) {
        // A leader cut off for a while may never hear a higher term from a vote (PreVote and
        // leases hold those back), so tell it: it steps down on this response.
        this.msgs.push({
          type: 'appendResponse',
          from: this.id,
          to: m.from,
          term: this.term,
          index: 0,
          reject: false,
          rejectHint: 0,
          logTerm: 0,
        });
      } else if (m.type === 'preVote') {
        this.msgs.push({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.term, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    if (this.role === 'leader') this.stepLeader(m);
    else if (this.role === 'follower') this.stepFollower(m);
    else this.stepCandidate(m);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'appendResponse':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResponse':
        this.handleHeartbeatResponse(m);
        return;
      case 'readIndex':
        this.handleReadIndex(m.from, m.context);
        return;
      case 'transferLeader':
        this.transferLeader(m.target);
        return;
      default:
        // Another leader in this term cannot exist; anything else is stale.
        return;
    }
  }

  private stepCandidate(m: Message): void {
    switch (m.type) {
      case 'append':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m.from, m.snapshot);
        return;
      case 'voteResponse':
      case 'preVoteResponse': {
        const mine = this.role === 'preCandidate' ? 'preVoteResponse' : 'voteResponse';
        if (m.type !== mine) return;
        const result = this.poll(m.from, !m.reject);
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('vote', false);
          else {
            this.becomeLeader();
            this.broadcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'append':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'snapshot':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m.from, m.snapshot);
        return;
      case 'timeoutNow':
        this.logger?.info({ raft: this.id, term: this.term }, 'raft leader transfer: campaigning now');
        this.hup(true);
        return;
      case 'readIndexResponse':
        this.readStates.push({ index: m.index, context: m.context });
        return;
      case 'transferLeader':
        if (this.lead !== NONE) this.msgs.push({ ...m, from: this.id, to: this.lead, term: this.term });
        return;
      default:
        return;
    }
  }

  // ---- follower side of replication -------------------------------------------------------------

  private respondAppend(to: NodeId, index: number): void {
    this.msgs.push({
      type: 'appendResponse',
      from: this.id,
      to,
      term: this.term,
      index,
      reject: false,
      rejectHint: 0,
      logTerm: 0,
    });
  }

  private handleAppend(m: AppendMessage): void {
    if (m.index < this.log.committed) {
      this.respondAppend(m.from, this.log.committed);
      return;
    }
    const result = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (result !== undefined) {
      const first = result.appended[0];
      if (first !== undefined) this.onEntriesWritten(first.index, result.appended);
      this.respondAppend(m.from, result.lastNewIndex);
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.msgs.push({
      type: 'appendResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
    });
  }

  private handleHeartbeat(m: HeartbeatMessage): void {
    this.log.commitTo(m.commit);
    this.msgs.push({
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.term,
      context: m.context,
      round: m.round,
    });
  }

  private handleSnapshot(from: NodeId, snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    if (index <= this.log.committed) {
      this.respondAppend(from, this.log.committed);
      return;
    }
    if (this.log.matchTerm(index, term)) {
      // The log already holds the snapshot's last entry: keep the log, just commit up to it.
      this.log.commitTo(index);
      this.respondAppend(from, this.log.committed);
      return;
    }
    this.logger?.info({ raft: this.id, index, term }, 'raft restoring a snapshot from the leader');
    this.log.restore(snapshot);
    this.confs = [{ index, conf: snapshot.metadata.conf }];
    this.membershipChanged();
    this.respondAppend(from, this.log.lastIndex());
  }

  // ---- leader side of replication ---------------------------------------------------------------

  private appendEntries(entries: readonly Pick<Entry, 'type' | 'data'>[]): number {
    let index = this.log.lastIndex();
    const full: Entry[] = entries.map((entry) => ({
      term: this.term,
      index: ++index,
      type: entry.type,
      data: entry.data,
    }));
    this.log.append(full);
    if (!this.options.asyncLeaderPersistence) this.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    this.onEntriesWritten(full[0]!.index, full);
    // A group of one commits at once.
    this.maybeCommit();
    this.needsBroadcast = true;
    return full[0]!.index;
  }

  /** Sends the broadcast that proposals since the last one are waiting for (one per Ready: batching). */
  flush(): void {
    if (!this.needsBroadcast) return;
    this.needsBroadcast = false;
    if (this.role !== 'leader') return;
    for (const id of this.progress.keys()) {
      if (id === this.id) continue;
      while (this.maybeSendAppend(id, false)) {
        // as many appends as flow control allows (pipelining)
      }
    }
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.maybeSendAppend(id, true);
  }

  /**
   * Sends `to` the entries it lacks (or a snapshot, when they are compacted), as flow control
   * allows. With `sendIfEmpty`, an append without entries still goes (it carries the commit index).
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const entries =
      prevTerm === undefined ? undefined : this.log.entriesFrom(progress.next, this.options.maxSizePerMsg);
    if (prevTerm === undefined || entries === undefined) {
      // The follower needs entries this log no longer has.
      if (!progress.recentActive) return false;
      const snapshot = this.log.snapshot();
      this.msgs.push({ type: 'snapshot', from: this.id, to, term: this.term, snapshot });
      progress.becomeSnapshot(snapshot.metadata.index);
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.msgs.push({
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      logTerm: prevTerm,
      index: prevIndex,
      entries,
      commit: this.log.committed,
    });
    const bytes = entries.reduce((sum, entry) => sum + entrySize(entry), 0);
    progress.sentEntries(entries.length, bytes, prevIndex + entries.length);
    return true;
  }

  private handleAppendResponse(m: AppendResponseMessage): void {
    const progress = this.progress.get(m.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (m.reject) {
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (progress.maybeDecrTo(m.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    const updated = progress.maybeUpdate(m.index);
    if (!updated && !(progress.match === m.index && progress.state === 'probe')) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (
      progress.state === 'snapshot' &&
      (progress.match >= progress.pendingSnapshot || progress.match + 1 >= this.log.firstIndex())
    ) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else if (wasPaused) {
      this.maybeSendAppend(m.from, true);
    }
    // Flow control may now allow several appends at once (pipelining).
    while (this.maybeSendAppend(m.from, false)) {
      // keep sending
    }
    if (m.from === this.leadTransferee && progress.match === this.log.lastIndex())
      this.sendTimeoutNow(m.from);
    this.stepDownIfRemoved();
  }

  private handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const progress = this.progress.get(m.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    progress.ackedRound = Math.max(progress.ackedRound, m.round);
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirstOne();
    if (progress.match < this.log.lastIndex() || progress.state === 'probe')
      this.maybeSendAppend(m.from, true);
    if (m.context === '') return;
    const acks = this.reads.ack(m.context, m.from);
    if (acks !== undefined && hasQuorum(this.conf.voters, acks)) {
      for (const read of this.reads.release(m.context)) this.answerRead(read.from, read.context, read.index);
    }
  }

  private broadcastHeartbeat(): void {
    const context = this.reads.lastContext() ?? '';
    this.heartbeatRound++;
    this.roundTicks.set(this.heartbeatRound, this.leaderTicks);
    // Rounds older than an election timeout can no longer extend the lease.
    this.roundTicks.delete(this.heartbeatRound - this.options.electionTick * 2);
    for (const [to, progress] of this.progress) {
      if (to === this.id) continue;
      this.msgs.push({
        type: 'heartbeat',
        from: this.id,
        to,
        term: this.term,
        commit: Math.min(progress.match, this.log.committed),
        context,
        round: this.heartbeatRound,
      });
    }
  }

  /**
   * With `asyncLeaderPersistence`: the host made this node's log durable up to `index`, whose
   * entry has `term` (ignored when the log no longer holds that entry). A leader counts it.
   */
  persisted(index: number, term: number): void {
    if (!this.options.asyncLeaderPersistence || this.log.term(index) !== term) return;
    // Not a maximum: after a suffix was replaced, the latest report is what is known durable.
    this.durable = index;
    if (this.role !== 'leader') return;
    if (this.progress.get(this.id)?.maybeUpdate(Math.min(index, this.log.lastIndex())) === true) {
      if (this.maybeCommit()) this.broadcastAppend();
    }
  }

  /**
   * How far this node's own log counts toward a commit as it becomes leader: all of it, or with
   * `asyncLeaderPersistence` what is known durable (entries not yet written are unstable).
   */
  private ownMatch(): number {
    const last = this.log.lastIndex();
    if (!this.options.asyncLeaderPersistence) return last;
    return Math.min(last, this.durable, this.log.unstable.offset - 1);
  }

  /** Commits what a majority of voters hold, if it is from this term. */
  private maybeCommit(): boolean {
    if (this.role !== 'leader') return false;
    const index = majorityValue(this.conf.voters, (id) => this.progress.get(id)?.match ?? 0);
    if (!Number.isFinite(index) || !this.log.maybeCommit(index, this.term)) return false;
    if (this.readsAwaitingCommit.length > 0 && this.committedInTerm()) {
      const waiting = this.readsAwaitingCommit;
      this.readsAwaitingCommit = [];
      for (const read of waiting) this.handleReadIndex(read.from, read.context);
    }
    return true;
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  /** A leader whose removal (or demotion) is committed hands over by stepping down. */
  private stepDownIfRemoved(): void {
    if (this.role === 'leader' && !this.promotable() && this.confIndex <= this.log.committed) {
      this.logger?.info({ raft: this.id, term: this.term }, 'raft leader no longer a voter; stepping down');
      this.becomeFollower(this.term, NONE);
    }
  }

  // ---- proposals ----------------------------------------------------------------------------------

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw notLeader(this.lead);
    if (this.leadTransferee !== NONE) {
      throw new RobustMQError(
        ErrorCode.Unavailable,
        `raft: leadership is moving to node ${this.leadTransferee}`,
      );
    }
  }

  /** Appends commands to the leader's log; returns the first one's index. Throws `UNAVAILABLE` elsewhere. */
  propose(data: readonly Uint8Array[]): number {
    this.checkCanPropose();
    return this.appendEntries(data.map((bytes) => ({ type: 'normal', data: bytes })));
  }

  /**
   * Appends a membership change; returns its index. Throws `UNAVAILABLE` while another change is
   * uncommitted or before this leader committed an entry of its term, `INVALID_ARGUMENT` for a
   * change that does nothing or removes the last voter.
   */
  proposeConfChange(change: ConfChange): number {
    this.checkCanPropose();
    if (this.confIndex > this.log.committed) {
      throw new RobustMQError(ErrorCode.Unavailable, 'raft: a membership change is still uncommitted');
    }
    if (!this.committedInTerm()) {
      throw new RobustMQError(
        ErrorCode.Unavailable,
        'raft: the leader has not committed an entry of its term yet',
      );
    }
    const reason = invalidConfChangeReason(this.conf, change);
    if (reason !== null) throw new RobustMQError(ErrorCode.InvalidArgument, `raft: ${reason}`);
    return this.appendEntries([{ type: 'conf', data: encodeConfChange(change) }]);
  }

  // ---- leader transfer ----------------------------------------------------------------------------

  /** Hands leadership to `target` (a voter); a follower forwards the request to its leader. */
  transferLeader(target: NodeId): void {
    if (this.role !== 'leader') {
      if (this.lead === NONE) throw notLeader(NONE);
      this.msgs.push({ type: 'transferLeader', from: this.id, to: this.lead, term: this.term, target });
      return;
    }
    if (!this.conf.voters.includes(target) || target === this.id) return;
    if (this.leadTransferee === target) return;
    this.abortLeaderTransfer();
    this.logger?.info({ raft: this.id, term: this.term, target }, 'raft leader transfer started');
    this.leadTransferee = target;
    // The transfer must finish within an election timeout, or it is abandoned.
    this.electionElapsed = 0;
    // Lease reads stop: the target's election may bypass the followers' leases.
    this.leaseFloorRound = this.heartbeatRound;
    const progress = this.progress.get(target);
    if (progress !== undefined && progress.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.maybeSendAppend(target, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.msgs.push({ type: 'timeoutNow', from: this.id, to, term: this.term });
  }

  private abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  // ---- reads --------------------------------------------------------------------------------------

  /** Asks for a linearizable read point for `context`; the answer comes as a ReadState. */
  readIndex(context: string): void {
    if (this.role === 'leader') {
      this.handleReadIndex(this.id, context);
      return;
    }
    if (this.lead === NONE) throw notLeader(NONE);
    this.msgs.push({ type: 'readIndex', from: this.id, to: this.lead, term: this.term, context });
  }

  private handleReadIndex(from: NodeId, context: string): void {
    const voters = this.conf.voters;
    if (voters.length === 1 && voters[0] === this.id) {
      this.answerRead(from, context, this.log.committed);
      return;
    }
    if (!this.committedInTerm()) {
      // Until then the leader may not know the latest commit index.
      this.readsAwaitingCommit.push({ from, context });
      return;
    }
    if (this.options.readOnly === 'lease' && this.inLease()) {
      this.answerRead(from, context, this.log.committed);
      return;
    }
    if (this.reads.add(this.log.committed, from, context, this.id)) this.broadcastHeartbeat();
  }

  /**
   * Whether a majority of voters answered a heartbeat sent recently enough that none of them can
   * have voted for another leader yet: they ignore votes for an election timeout after hearing from
   * the leader. Two ticks of margin cover tick phase between nodes.
   */
  private inLease(): boolean {
    if (this.leadTransferee !== NONE) return false;
    const sentAt = majorityValue(this.conf.voters, (id) => {
      if (id === this.id) return this.leaderTicks;
      const round = this.progress.get(id)?.ackedRound ?? 0;
      if (round <= this.leaseFloorRound) return Number.MIN_SAFE_INTEGER;
      return this.roundTicks.get(round) ?? Number.MIN_SAFE_INTEGER;
    });
    return this.leaderTicks - sentAt < this.options.electionTick - 2;
  }

  private answerRead(from: NodeId, context: string, index: number): void {
    if (from === this.id) {
      this.readStates.push({ index, context });
    } else {
      this.msgs.push({ type: 'readIndexResponse', from: this.id, to: from, term: this.term, index, context });
    }
  }

  // ---- host reports -------------------------------------------------------------------------------

  /** The host could not reach `id`: stop streaming to it and probe. */
  reportUnreachable(id: NodeId): void {
    const progress = this.progress.get(id);
    if (this.role === 'leader' && progress?.state === 'replicate') progress.becomeProbe();
  }

  /** The snapshot sent to `id` arrived (`ok`) or failed; either way, wait for its next answer. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const progress = this.progress.get(id);
    if (this.role !== 'leader' || progress?.state !== 'snapshot') return;
    if (!ok) progress.pendingSnapshot = 0;
    progress.becomeProbe();
    progress.probeSent = true;
  }
}
