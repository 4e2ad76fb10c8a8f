import { randomUUID } from 'node:crypto';
import { silentLogger, type Logger } from '@robustmq/core';
import { systemClock, type Clock, type Timer } from './clock.js';
import { emptyGroupRecord, recordWithout, recordWithReplacement } from './group-record.js';
import { KafkaErrorCode as E } from '../codec/error-codes.js';
import type {
  GroupProtocol,
  GroupState,
  GroupSummary,
  HeartbeatInput,
  JoinGroupInput,
  JoinGroupOutcome,
  LeaveGroupOutcome,
  LeavingMember,
  PersistedGroup,
  PersistedMember,
  SyncGroupInput,
  SyncGroupOutcome,
} from './types.js';

const EMPTY = new Uint8Array(0);

/** Coordinator settings, with Kafka's broker defaults. */
export interface CoordinatorOptions {
  /** `group.min.session.timeout.ms`: 6 s. */
  minSessionTimeoutMs?: number;
  /** `group.max.session.timeout.ms`: 30 min. */
  maxSessionTimeoutMs?: number;
  /** `group.initial.rebalance.delay.ms`: 3 s; how long an empty group waits for more members. */
  initialRebalanceDelayMs?: number;
  /** `group.max.size`: unlimited. */
  maxGroupSize?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * Called with a group's record whenever it must be persisted, where Kafka writes it: a generation
   * completed (the leader's SyncGroup), the group became Empty, a member left or expired, a static
   * member was replaced. When it returns a promise, the answers that rely on the record being stored
   * (SyncGroup, a static member's JoinGroup) wait for it, so members never hold what a restart loses.
   */
  onGroupChange?: (groupId: string, group: PersistedGroup) => void | Promise<void>;
  /** Called when a group starts a rebalance (for metrics). */
  onRebalance?: (groupId: string, reason: string) => void;
}

class Member {
  assignment: Uint8Array = EMPTY;
  joinWaiter: ((outcome: JoinGroupOutcome) => void) | null = null;
  syncWaiter: ((outcome: SyncGroupOutcome) => void) | null = null;
  sessionTimer: Timer | null = null;

  constructor(
    readonly memberId: string,
    readonly groupInstanceId: string | null,
    public clientId: string,
    public clientHost: string,
    public sessionTimeoutMs: number,
    public rebalanceTimeoutMs: number,
    public protocols: readonly GroupProtocol[],
  ) {}

  supports(protocol: string): boolean {
    return this.protocols.some((p) => p.name === protocol);
  }

  metadataFor(protocol: string | null): Uint8Array {
    return this.protocols.find((p) => p.name === protocol)?.metadata ?? EMPTY;
  }

  sameProtocols(protocols: readonly GroupProtocol[]): boolean {
    return (
      protocols.length === this.protocols.length &&
      protocols.every(
        (p, i) => p.name === this.protocols[i]!.name && bytesEqual(p.metadata, this.protocols[i]!.metadata),
      )
    );
  }
}

class Group {
  state: GroupState = 'Empty';
  protocolType: string | null = null;
  protocolName: string | null = null;
  generationId = 0;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** Member ids handed out with MEMBER_ID_REQUIRED and not yet used, with their expiry. */
  readonly pending = new Map<string, Timer>();
  /** group.instance.id to member id. */
  readonly staticMembers = new Map<string, string>();
  joinTimer: Timer | null = null;
  syncTimer: Timer | null = null;
  /** In the initial delay of an empty group's first rebalance: completes only on its timer. */
  initialDelay: { remainingMs: number; newMemberAdded: boolean } | null = null;
  /** The record last handed over for storage (or restored): what a restart would bring back. */
  record: PersistedGroup = emptyGroupRecord(null, 0);
  /** The generation whose assignment is being stored; the leader's repeated SyncGroup waits for it. */
  storingAssignmentOf: number | null = null;

  constructor(readonly groupId: string) {}
}

function persistedMember(member: Member, assignment: Uint8Array): PersistedMember {
  return {
    memberId: member.memberId,
    groupInstanceId: member.groupInstanceId,
    clientId: member.clientId,
    clientHost: member.clientHost,
    sessionTimeoutMs: member.sessionTimeoutMs,
    rebalanceTimeoutMs: member.rebalanceTimeoutMs,
    protocols: member.protocols,
    assignment,
  };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function joinError(memberId: string, errorCode: number): JoinGroupOutcome {
  return {
    errorCode,
    generationId: -1,
    protocolType: null,
    protocolName: null,
    leader: '',
    memberId,
    skipAssignment: false,
    members: [],
  };
}

export function syncError(errorCode: number): SyncGroupOutcome {
  return { errorCode, protocolType: null, protocolName: null, assignment: EMPTY };
}

/**
 * The classic group coordinator (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state machine:
 * no I/O, time through an injected {@link Clock}. JoinGroup and SyncGroup resolve when the
 * rebalance lets them (they are long polls); everything else answers at once.
 */
export class GroupCoordinator {
  private readonly groups = new Map<string, Group>();
  private readonly minSessionTimeoutMs: number;
  private readonly maxSessionTimeoutMs: number;
  private readonly initialRebalanceDelayMs: number;
  private readonly maxGroupSize: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly onGroupChange: (groupId: string, group: PersistedGroup) => void | Promise<void>;
  private readonly onRebalance: (groupId: string, reason: string) => void;

  constructor(options: CoordinatorOptions = {}) {
    this.minSessionTimeoutMs = options.minSessionTimeoutMs ?? 6_000;
    this.maxSessionTimeoutMs = options.maxSessionTimeoutMs ?? 1_800_000;
    this.initialRebalanceDelayMs = options.initialRebalanceDelayMs ?? 3_000;
    this.maxGroupSize = options.maxGroupSize ?? Number.POSITIVE_INFINITY;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.onGroupChange = options.onGroupChange ?? (() => {});
    this.onRebalance = options.onRebalance ?? (() => {});
  }

  /**
   * Recreates a group from its record in the meta store (after a restart), as Kafka loads it: Empty,
   * or Stable with the members of its last completed generation, whose sessions start now, so the
   * ones that never come back expire as usual. A record written after members left starts the
   * rebalance their leaving began.
   */
  restore(groupId: string, record: PersistedGroup): void {
    if (this.groups.has(groupId)) return;
    const group = new Group(groupId);
    group.protocolType = record.protocolType;
    group.generationId = record.generationId;
    group.record = record;
    this.groups.set(groupId, group);
    if (record.state === 'Empty' || record.members.length === 0) return;
    group.protocolName = record.protocolName;
    for (const m of record.members) {
      const member = new Member(
        m.memberId,
        m.groupInstanceId,
        m.clientId,
        m.clientHost,
        m.sessionTimeoutMs,
        m.rebalanceTimeoutMs,
        m.protocols,
      );
      member.assignment = m.assignment;
      group.members.set(member.memberId, member);
      if (member.groupInstanceId !== null) group.staticMembers.set(member.groupInstanceId, member.memberId);
    }
    group.leaderId =
      record.leader !== null && group.members.has(record.leader)
        ? record.leader
        : group.members.keys().next().value!;
    group.state = 'Stable';
    for (const member of group.members.values()) this.touch(group, member);
    this.logger.info(
      { group: groupId, generation: group.generationId, members: group.members.size },
      'consumer group restored',
    );
    if (record.state === 'PreparingRebalance') this.prepareRebalance(group, 'members left before a restart');
  }

  /** Ensures a group exists (Empty) for simple offset commits by a client outside any group. */
  ensure(groupId: string): void {
    if (!this.groups.has(groupId)) this.groups.set(groupId, new Group(groupId));
  }

  has(groupId: string): boolean {
    return this.groups.has(groupId);
  }

  groupIds(): string[] {
    return [...this.groups.keys()];
  }

  state(groupId: string): GroupState | null {
    return this.groups.get(groupId)?.state ?? null;
  }

  // ---- JoinGroup -------------------------------------------------------------------------------

  joinGroup(input: JoinGroupInput): Promise<JoinGroupOutcome> {
    if (input.groupId === '') return Promise.resolve(joinError(input.memberId, E.invalidGroupId));
    if (
      input.sessionTimeoutMs < this.minSessionTimeoutMs ||
      input.sessionTimeoutMs > this.maxSessionTimeoutMs
    ) {
      return Promise.resolve(joinError(input.memberId, E.invalidSessionTimeout));
    }
    let group = this.groups.get(input.groupId);
    if (!group) {
      if (input.memberId !== '') return Promise.resolve(joinError(input.memberId, E.unknownMemberId));
      // Only a join that could succeed creates the group.
      if (input.protocolType === '' || input.protocols.length === 0) {
        return Promise.resolve(joinError(input.memberId, E.inconsistentGroupProtocol));
      }
      group = new Group(input.groupId);
      this.groups.set(input.groupId, group);
    }
    if (group.state === 'Dead') return Promise.resolve(joinError(input.memberId, E.coordinatorNotAvailable));
    const isNewMember = input.memberId === '' || group.pending.has(input.memberId);
    const replacesStatic = input.groupInstanceId !== null && group.staticMembers.has(input.groupInstanceId);
    if (isNewMember && !replacesStatic && group.members.size >= this.maxGroupSize) {
      return Promise.resolve(joinError(input.memberId, E.groupMaxSizeReached));
    }
    if (!this.supportsProtocols(group, input)) {
      return Promise.resolve(joinError(input.memberId, E.inconsistentGroupProtocol));
    }
    return new Promise((resolve) => {
      if (input.memberId === '') this.joinUnknownMember(group, input, resolve);
      else this.joinKnownMember(group, input, resolve);
    });
  }

  private supportsProtocols(group: Group, input: JoinGroupInput): boolean {
    if (input.protocolType === '' || input.protocols.length === 0) return false;
    const others = [...group.members.values()].filter((m) => m.memberId !== input.memberId);
    if (others.length === 0) return true;
    return (
      group.protocolType === input.protocolType &&
      input.protocols.some((p) => others.every((m) => m.supports(p.name)))
    );
  }

  private joinUnknownMember(
    group: Group,
    input: JoinGroupInput,
    resolve: (o: JoinGroupOutcome) => void,
  ): void {
    const memberId = `${input.clientId}-${randomUUID()}`;
    if (input.groupInstanceId !== null) {
      const existing = group.staticMembers.get(input.groupInstanceId);
      if (existing !== undefined) {
        this.replaceStaticMember(group, existing, memberId, input, resolve);
        return;
      }
      this.addMemberAndRebalance(group, memberId, input, resolve);
      return;
    }
    if (input.requireKnownMemberId) {
      // The client retries with this id; until then the group waits for it if it is rebalancing.
      group.pending.set(
        memberId,
        this.clock.schedule(input.sessionTimeoutMs, () => this.expirePending(group, memberId)),
      );
      resolve(joinError(memberId, E.memberIdRequired));
      return;
    }
    this.addMemberAndRebalance(group, memberId, input, resolve);
  }

  private joinKnownMember(group: Group, input: JoinGroupInput, resolve: (o: JoinGroupOutcome) => void): void {
    const pendingTimer = group.pending.get(input.memberId);
    if (pendingTimer) {
      pendingTimer.cancel();
      group.pending.delete(input.memberId);
      this.addMemberAndRebalance(group, input.memberId, input, resolve);
      return;
    }
    const member = group.members.get(input.memberId);
    if (input.groupInstanceId !== null) {
      const owner = group.staticMembers.get(input.groupInstanceId);
      if (owner !== undefined && owner !== input.memberId) {
        resolve(joinError(input.memberId, E.fencedInstanceId));
        return;
      }
    }
    if (!member || group.state === 'Empty' || group.state === 'Dead') {
      resolve(joinError(input.memberId, E.unknownMemberId));
      return;
    }
    switch (group.state) {
      case 'PreparingRebalance':
        this.updateMemberAndRebalance(group, member, input, resolve);
        return;
      case 'CompletingRebalance':
        if (member.sameProtocols(input.protocols)) {
          // A retry of a join whose answer was lost: answer it again.
          resolve(this.joinOutcome(group, member));
        } else {
          this.updateMemberAndRebalance(group, member, input, resolve);
        }
        return;
      case 'Stable':
        if (group.leaderId === member.memberId || !member.sameProtocols(input.protocols)) {
          this.updateMemberAndRebalance(group, member, input, resolve);
        } else {
          this.touch(group, member);
          resolve(this.joinOutcome(group, member));
        }
        return;
    }
  }

  private addMemberAndRebalance(
    group: Group,
    memberId: string,
    input: JoinGroupInput,
    resolve: (o: JoinGroupOutcome) => void,
  ): void {
    const member = new Member(
      memberId,
      input.groupInstanceId,
      input.clientId,
      input.clientHost,
      input.sessionTimeoutMs,
      input.rebalanceTimeoutMs,
      input.protocols,
    );
    if (group.members.size === 0) group.protocolType = input.protocolType;
    group.members.set(memberId, member);
    if (input.groupInstanceId !== null) group.staticMembers.set(input.groupInstanceId, memberId);
    if (group.leaderId === null) group.leaderId = memberId;
    member.joinWaiter = resolve;
    if (group.initialDelay) group.initialDelay.newMemberAdded = true;
    this.logger.debug({ group: group.groupId, member: memberId }, 'member joined the group');
    this.maybePrepareRebalance(group, `member ${memberId} joined`);
    this.tryCompleteJoin(group);
  }

  private updateMemberAndRebalance(
    group: Group,
    member: Member,
    input: JoinGroupInput,
    resolve: (o: JoinGroupOutcome) => void,
  ): void {
    member.protocols = input.protocols;
    member.sessionTimeoutMs = input.sessionTimeoutMs;
    member.rebalanceTimeoutMs = input.rebalanceTimeoutMs;
    member.clientId = input.clientId;
    member.clientHost = input.clientHost;
    // A second join while the first waits: the newer connection gets the answer.
    member.joinWaiter?.(joinError(member.memberId, E.rebalanceInProgress));
    member.joinWaiter = resolve;
    member.sessionTimer?.cancel();
    member.sessionTimer = null;
    this.maybePrepareRebalance(group, `member ${member.memberId} rejoined`);
    this.tryCompleteJoin(group);
  }

  /** A static member came back with a new member id: it replaces the old one, fencing it. */
  private replaceStaticMember(
    group: Group,
    oldMemberId: string,
    newMemberId: string,
    input: JoinGroupInput,
    resolve: (o: JoinGroupOutcome) => void,
  ): void {
    const old = group.members.get(oldMemberId)!;
    const protocolsUnchanged = old.sameProtocols(input.protocols);
    old.sessionTimer?.cancel();
    old.joinWaiter?.(joinError(oldMemberId, E.fencedInstanceId));
    old.syncWaiter?.(syncError(E.fencedInstanceId));
    const member = new Member(
      newMemberId,
      input.groupInstanceId,
      input.clientId,
      input.clientHost,
      input.sessionTimeoutMs,
      input.rebalanceTimeoutMs,
      input.protocols,
    );
    member.assignment = old.assignment;
    group.members.delete(oldMemberId);
    group.members.set(newMemberId, member);
    group.staticMembers.set(input.groupInstanceId!, newMemberId);
    if (group.leaderId === oldMemberId) group.leaderId = newMemberId;
    this.logger.debug(
      { group: group.groupId, old: oldMemberId, member: newMemberId },
      'static member replaced',
    );
    // After a restart the old id would still own the instance id and fence the new one.
    const record = recordWithReplacement(group.record, oldMemberId, persistedMember(member, EMPTY));
    if (group.state === 'Stable' && protocolsUnchanged) {
      // Same subscription: the old assignment stands and nobody else has to rebalance.
      this.touch(group, member);
      const answer = (stored: boolean) => {
        if (!stored) resolve(joinError(newMemberId, E.coordinatorNotAvailable));
        else if (group.members.get(newMemberId) !== member)
          resolve(joinError(newMemberId, E.unknownMemberId));
        else resolve({ ...this.joinOutcome(group, member), skipAssignment: group.leaderId === newMemberId });
      };
      if (record) this.save(group, record, answer);
      else answer(true);
      return;
    }
    if (record) this.save(group, record);
    member.joinWaiter = resolve;
    this.maybePrepareRebalance(group, `static member ${input.groupInstanceId} rejoined`);
    this.tryCompleteJoin(group);
  }

  /** The answer to a join in the current generation; the leader gets the members. */
  private joinOutcome(group: Group, member: Member): JoinGroupOutcome {
    const isLeader = group.leaderId === member.memberId;
    return {
      errorCode: E.none,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      skipAssignment: false,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.metadataFor(group.protocolName),
          }))
        : [],
    };
  }

  // ---- Rebalance -------------------------------------------------------------------------------

  private maybePrepareRebalance(group: Group, reason: string): void {
    if (group.state === 'Stable' || group.state === 'CompletingRebalance' || group.state === 'Empty') {
      this.prepareRebalance(group, reason);
    }
  }

  private prepareRebalance(group: Group, reason: string): void {
    if (group.state === 'CompletingRebalance') {
      group.syncTimer?.cancel();
      group.syncTimer = null;
      for (const member of group.members.values()) {
        member.assignment = EMPTY;
        this.answerSync(member, syncError(E.rebalanceInProgress));
      }
    }
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    this.logger.info({ group: group.groupId, reason, generation: group.generationId }, 'group rebalancing');
    this.onRebalance(group.groupId, reason);
    const rebalanceTimeout = this.maxRebalanceTimeout(group);
    if (wasEmpty && this.initialRebalanceDelayMs > 0) {
      const delay = Math.min(this.initialRebalanceDelayMs, rebalanceTimeout);
      group.initialDelay = { remainingMs: Math.max(0, rebalanceTimeout - delay), newMemberAdded: false };
      group.joinTimer = this.clock.schedule(delay, () => this.onInitialDelay(group));
      return;
    }
    group.joinTimer = this.clock.schedule(rebalanceTimeout, () => this.completeJoin(group));
  }

  /** The initial delay ran out: wait once more while members keep arriving, within the rebalance timeout. */
  private onInitialDelay(group: Group): void {
    const delay = group.initialDelay;
    if (!delay || group.state !== 'PreparingRebalance') return;
    if (delay.newMemberAdded && delay.remainingMs > 0) {
      const next = Math.min(this.initialRebalanceDelayMs, delay.remainingMs);
      group.initialDelay = { remainingMs: delay.remainingMs - next, newMemberAdded: false };
      group.joinTimer = this.clock.schedule(next, () => this.onInitialDelay(group));
      return;
    }
    this.completeJoin(group);
  }

  private maxRebalanceTimeout(group: Group): number {
    let max = 0;
    for (const m of group.members.values()) max = Math.max(max, m.rebalanceTimeoutMs);
    return max;
  }

  private tryCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance' || group.initialDelay) return;
    if (group.pending.size > 0) return;
    for (const member of group.members.values()) if (!member.joinWaiter) return;
    this.completeJoin(group);
  }

  /** Ends the join phase: drops members that did not rejoin and starts the next generation. */
  private completeJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    group.joinTimer?.cancel();
    group.joinTimer = null;
    group.initialDelay = null;
    for (const member of [...group.members.values()]) {
      if (!member.joinWaiter) {
        this.logger.info(
          { group: group.groupId, member: member.memberId },
          'member removed: it did not rejoin in time',
        );
        this.removeMember(group, member);
      }
    }
    group.generationId++;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = null;
      group.leaderId = null;
      this.save(group, emptyGroupRecord(group.protocolType, group.generationId));
      return;
    }
    group.protocolName = this.selectProtocol(group);
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      group.leaderId = group.members.keys().next().value!;
    }
    group.state = 'CompletingRebalance';
    this.logger.info(
      {
        group: group.groupId,
        generation: group.generationId,
        members: group.members.size,
        protocol: group.protocolName,
      },
      'group joined; waiting for the assignment',
    );
    for (const member of group.members.values()) {
      const waiter = member.joinWaiter!;
      member.joinWaiter = null;
      waiter(this.joinOutcome(group, member));
      this.touch(group, member);
    }
    const generation = group.generationId;
    group.syncTimer = this.clock.schedule(this.maxRebalanceTimeout(group), () =>
      this.onSyncTimeout(group, generation),
    );
  }

  /** Each member votes for its most preferred protocol among those every member supports. */
  private selectProtocol(group: Group): string {
    const members = [...group.members.values()];
    const candidates = members[0]!.protocols
      .map((p) => p.name)
      .filter((name) => members.every((m) => m.supports(name)));
    const votes = new Map<string, number>();
    for (const member of members) {
      const choice = member.protocols.find((p) => candidates.includes(p.name));
      if (choice) votes.set(choice.name, (votes.get(choice.name) ?? 0) + 1);
    }
    let best = candidates[0]!;
    for (const name of candidates) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name;
    return best;
  }

  /** The leader never sent its assignment: drop the members that did not sync and rebalance. */
  private onSyncTimeout(group: Group, generation: number): void {
    group.syncTimer = null;
    if (group.state !== 'CompletingRebalance' || group.generationId !== generation) return;
    for (const member of [...group.members.values()]) {
      if (!member.syncWaiter) {
        this.logger.info(
          { group: group.groupId, member: member.memberId },
          'member removed: it did not sync in time',
        );
        this.removeMember(group, member);
      }
    }
    this.prepareRebalance(group, 'SyncGroup timed out');
    this.tryCompleteJoin(group);
  }

  // ---- SyncGroup -------------------------------------------------------------------------------

  syncGroup(input: SyncGroupInput): Promise<SyncGroupOutcome> {
    const group = this.groups.get(input.groupId);
    if (!group) return Promise.resolve(syncError(E.unknownMemberId));
    if (group.state === 'Dead') return Promise.resolve(syncError(E.coordinatorNotAvailable));
    const member = group.members.get(input.memberId);
    const fenced = this.fencedError(group, input.memberId, input.groupInstanceId);
    if (fenced !== E.none) return Promise.resolve(syncError(fenced));
    if (!member) return Promise.resolve(syncError(E.unknownMemberId));
    if (input.generationId !== group.generationId) return Promise.resolve(syncError(E.illegalGeneration));
    if (
      (input.protocolType !== null && input.protocolType !== group.protocolType) ||
      (input.protocolName !== null && input.protocolName !== group.protocolName)
    ) {
      return Promise.resolve(syncError(E.inconsistentGroupProtocol));
    }
    switch (group.state) {
      case 'Empty':
        return Promise.resolve(syncError(E.unknownMemberId));
      case 'PreparingRebalance':
        return Promise.resolve(syncError(E.rebalanceInProgress));
      case 'Stable':
        this.touch(group, member);
        return Promise.resolve(this.syncOutcome(group, member));
      default:
        break;
    }
    return new Promise((resolve) => {
      member.syncWaiter?.(syncError(E.rebalanceInProgress));
      member.syncWaiter = resolve;
      this.touch(group, member);
      if (group.leaderId !== member.memberId || group.storingAssignmentOf === group.generationId) return;
      const assigned = new Map(input.assignments.map((a) => [a.memberId, a.assignment]));
      const generation = group.generationId;
      const record: PersistedGroup = {
        state: 'Stable',
        protocolType: group.protocolType,
        generationId: generation,
        protocolName: group.protocolName,
        leader: group.leaderId,
        members: [...group.members.values()].map((m) =>
          persistedMember(m, assigned.get(m.memberId) ?? EMPTY),
        ),
      };
      group.storingAssignmentOf = generation;
      // As in Kafka, the generation completes once its record is stored.
      this.save(group, record, (stored) => {
        if (group.storingAssignmentOf === generation) group.storingAssignmentOf = null;
        if (this.groups.get(group.groupId) !== group) return;
        if (group.state !== 'CompletingRebalance' || group.generationId !== generation) return;
        if (stored) this.completeSync(group, assigned);
        else this.failSync(group);
      });
    });
  }

  /** The leader's assignment is stored: the group is Stable and every member gets its part. */
  private completeSync(group: Group, assigned: ReadonlyMap<string, Uint8Array>): void {
    for (const m of group.members.values()) m.assignment = assigned.get(m.memberId) ?? EMPTY;
    group.syncTimer?.cancel();
    group.syncTimer = null;
    group.state = 'Stable';
    this.logger.info({ group: group.groupId, generation: group.generationId }, 'group stable');
    for (const m of group.members.values()) {
      this.answerSync(m, this.syncOutcome(group, m));
      this.touch(group, m);
    }
  }

  /** The assignment could not be stored: members are told to find the coordinator and rejoin. */
  private failSync(group: Group): void {
    for (const m of group.members.values()) this.answerSync(m, syncError(E.coordinatorNotAvailable));
    this.prepareRebalance(group, 'the assignment could not be stored');
  }

  private syncOutcome(group: Group, member: Member): SyncGroupOutcome {
    return {
      errorCode: E.none,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment: member.assignment,
    };
  }

  private answerSync(member: Member, outcome: SyncGroupOutcome): void {
    const waiter = member.syncWaiter;
    member.syncWaiter = null;
    waiter?.(outcome);
  }

  // ---- Heartbeat and sessions ------------------------------------------------------------------

  heartbeat(input: HeartbeatInput): number {
    const group = this.groups.get(input.groupId);
    if (!group) return E.unknownMemberId;
    if (group.state === 'Dead') return E.coordinatorNotAvailable;
    const fenced = this.fencedError(group, input.memberId, input.groupInstanceId);
    if (fenced !== E.none) return fenced;
    const member = group.members.get(input.memberId);
    if (!member || group.state === 'Empty') return E.unknownMemberId;
    if (input.generationId !== group.generationId) return E.illegalGeneration;
    this.touch(group, member);
    return group.state === 'PreparingRebalance' ? E.rebalanceInProgress : E.none;
  }

  /** Restarts a member's session timer, unless it waits in a join (the rebalance timeout rules then). */
  private touch(group: Group, member: Member): void {
    member.sessionTimer?.cancel();
    member.sessionTimer = null;
    if (member.joinWaiter) return;
    member.sessionTimer = this.clock.schedule(member.sessionTimeoutMs, () => {
      member.sessionTimer = null;
      if (group.members.get(member.memberId) !== member || member.joinWaiter) return;
      this.logger.info({ group: group.groupId, member: member.memberId }, 'member session expired');
      this.removeMemberAndUpdateGroup(group, member, 'session expired');
    });
  }

  private expirePending(group: Group, memberId: string): void {
    if (!group.pending.delete(memberId)) return;
    this.tryCompleteJoin(group);
  }

  private fencedError(group: Group, memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId === null) return E.none;
    const owner = group.staticMembers.get(groupInstanceId);
    if (owner === undefined) return E.none;
    return owner === memberId ? E.none : E.fencedInstanceId;
  }

  // ---- LeaveGroup ------------------------------------------------------------------------------

  leaveGroup(groupId: string, leaving: readonly LeavingMember[]): LeaveGroupOutcome {
    const group = this.groups.get(groupId);
    if (!group || group.state === 'Dead') {
      const errorCode = group ? E.coordinatorNotAvailable : E.unknownMemberId;
      return { errorCode, members: leaving.map((m) => ({ ...m, errorCode })) };
    }
    const members = leaving.map((m) => ({ ...m, errorCode: this.leaveOne(group, m) }));
    return { errorCode: members.length === 1 ? members[0]!.errorCode : E.none, members };
  }

  private leaveOne(group: Group, leaving: LeavingMember): number {
    let memberId = leaving.memberId;
    if (leaving.groupInstanceId !== null) {
      const owner = group.staticMembers.get(leaving.groupInstanceId);
      if (owner === undefined) return E.unknownMemberId;
      if (memberId !== '' && owner !== memberId) return E.fencedInstanceId;
      memberId = owner;
    }
    const pending = group.pending.get(memberId);
    if (pending) {
      pending.cancel();
      group.pending.delete(memberId);
      this.tryCompleteJoin(group);
      return E.none;
    }
    const member = group.members.get(memberId);
    if (!member) return E.unknownMemberId;
    this.logger.info({ group: group.groupId, member: memberId }, 'member left the group');
    this.removeMemberAndUpdateGroup(group, member, `member ${memberId} left`);
    return E.none;
  }

  private removeMember(group: Group, member: Member): void {
    member.sessionTimer?.cancel();
    member.sessionTimer = null;
    const joinWaiter = member.joinWaiter;
    member.joinWaiter = null;
    joinWaiter?.(joinError(member.memberId, E.unknownMemberId));
    this.answerSync(member, syncError(E.unknownMemberId));
    group.members.delete(member.memberId);
    if (
      member.groupInstanceId !== null &&
      group.staticMembers.get(member.groupInstanceId) === member.memberId
    ) {
      group.staticMembers.delete(member.groupInstanceId);
    }
    if (group.leaderId === member.memberId) group.leaderId = group.members.keys().next().value ?? null;
    const record = recordWithout(group.record, member.memberId);
    if (record) this.save(group, record);
  }

  private removeMemberAndUpdateGroup(group: Group, member: Member, reason: string): void {
    this.removeMember(group, member);
    if (group.state === 'Stable' || group.state === 'CompletingRebalance')
      this.prepareRebalance(group, reason);
    this.tryCompleteJoin(group);
  }

  // ---- Offset commits --------------------------------------------------------------------------

  /**
   * Whether a member may commit offsets now (OffsetCommit's checks): a generation below 0 with an
   * empty member id is a simple commit, allowed only while the group has no members.
   */
  validateCommit(
    groupId: string,
    memberId: string,
    groupInstanceId: string | null,
    generationId: number,
  ): number {
    const group = this.groups.get(groupId);
    if (!group) return generationId < 0 ? E.none : E.illegalGeneration;
    if (group.state === 'Dead') return E.coordinatorNotAvailable;
    const fenced = this.fencedError(group, memberId, groupInstanceId);
    if (fenced !== E.none) return fenced;
    if (generationId < 0 && group.state === 'Empty') return E.none;
    if (group.state === 'CompletingRebalance') return E.rebalanceInProgress;
    const member = group.members.get(memberId);
    if (!member) return E.unknownMemberId;
    if (generationId !== group.generationId) return E.illegalGeneration;
    this.touch(group, member);
    return E.none;
  }

  // ---- Persistence -----------------------------------------------------------------------------

  /**
   * Hands `record` over for storage. `then` learns whether it was stored while the group is still
   * this coordinator's: at once when `onGroupChange` stores synchronously. Failures are logged here.
   */
  private save(group: Group, record: PersistedGroup, then: (stored: boolean) => void = () => {}): void {
    group.record = record;
    const failed = (error: unknown) => {
      this.logger.error({ group: group.groupId, err: error }, 'could not persist consumer group');
      then(false);
    };
    let saving: void | Promise<void>;
    try {
      saving = this.onGroupChange(group.groupId, record);
    } catch (error) {
      failed(error);
      return;
    }
    if (saving instanceof Promise) saving.then(() => then(this.groups.get(group.groupId) === group), failed);
    else then(true);
  }

  // ---- Views and deletion ----------------------------------------------------------------------

  /**
   * Each member's metadata for the group's protocol (the one in use, else the member's first
   * choice): for consumers, their subscriptions.
   */
  memberMetadata(groupId: string): Uint8Array[] {
    const group = this.groups.get(groupId);
    if (!group) return [];
    return [...group.members.values()].map((m) =>
      m.metadataFor(group.protocolName ?? m.protocols[0]?.name ?? null),
    );
  }

  describe(groupId: string): GroupSummary | null {
    const group = this.groups.get(groupId);
    if (!group) return null;
    const stable = group.state === 'Stable';
    return {
      groupId,
      state: group.state,
      protocolType: group.protocolType ?? '',
      protocolName: group.protocolName ?? '',
      generationId: group.generationId,
      leader: group.leaderId,
      members: [...group.members.values()].map((m) => ({
        memberId: m.memberId,
        groupInstanceId: m.groupInstanceId,
        clientId: m.clientId,
        clientHost: m.clientHost,
        metadata: stable ? m.metadataFor(group.protocolName) : EMPTY,
        assignment: stable ? m.assignment : EMPTY,
      })),
    };
  }

  /**
   * Deletes an Empty group (DeleteGroups): GROUP_ID_NOT_FOUND for an unknown one, NON_EMPTY_GROUP
   * while it has members.
   */
  deleteGroup(groupId: string): number {
    const group = this.groups.get(groupId);
    if (!group || group.state === 'Dead') return E.groupIdNotFound;
    if (group.state !== 'Empty' || group.members.size > 0) return E.nonEmptyGroup;
    for (const timer of group.pending.values()) timer.cancel();
    group.state = 'Dead';
    this.groups.delete(groupId);
    return E.none;
  }

  /**
   * Lets a group go to another coordinator: its timers stop, nothing is written, and parked joins
   * and syncs are answered NOT_COORDINATOR, so their members look the coordinator up again.
   */
  unload(groupId: string): void {
    const group = this.groups.get(groupId);
    if (!group) return;
    this.stopGroup(group, E.notCoordinator);
    this.groups.delete(groupId);
  }

  /** Stops every timer and answers parked requests with COORDINATOR_NOT_AVAILABLE (shutdown). */
  close(): void {
    for (const group of this.groups.values()) this.stopGroup(group, E.coordinatorNotAvailable);
    this.groups.clear();
  }

  private stopGroup(group: Group, errorCode: number): void {
    group.joinTimer?.cancel();
    group.syncTimer?.cancel();
    for (const timer of group.pending.values()) timer.cancel();
    for (const member of group.members.values()) {
      member.sessionTimer?.cancel();
      const joinWaiter = member.joinWaiter;
      member.joinWaiter = null;
      joinWaiter?.(joinError(member.memberId, errorCode));
      this.answerSync(member, syncError(errorCode));
    }
  }
}
