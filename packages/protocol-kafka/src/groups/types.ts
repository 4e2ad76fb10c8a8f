/** The states of a classic consumer group, with Kafka's names (shown by DescribeGroups). */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable' | 'Dead';

/** One protocol a member offers in JoinGroup (for consumers: an assignor and its subscription). */
export interface GroupProtocol {
  name: string;
  metadata: Uint8Array;
}

/** What the coordinator needs from a JoinGroup request, whatever its version. */
export interface JoinGroupInput {
  groupId: string;
  /** Empty on a member's first join. */
  memberId: string;
  /** Static membership (JoinGroup v5+): the `group.instance.id`, or null. */
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  /** JoinGroup v0 has none: pass the session timeout. */
  rebalanceTimeoutMs: number;
  protocolType: string;
  protocols: readonly GroupProtocol[];
  /** JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id, then joins with it. */
  requireKnownMemberId: boolean;
}

/** A member as the leader sees it in its JoinGroup response. */
export interface JoinGroupMember {
  memberId: string;
  groupInstanceId: string | null;
  metadata: Uint8Array;
}

export interface JoinGroupOutcome {
  errorCode: number;
  generationId: number;
  protocolType: string | null;
  protocolName: string | null;
  leader: string;
  memberId: string;
  /** JoinGroup v9: the leader need not compute an assignment (a static leader replaced in Stable). */
  skipAssignment: boolean;
  /** Filled for the leader only. */
  members: JoinGroupMember[];
}

export interface SyncGroupInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
  /** SyncGroup v5+, else null. */
  protocolType: string | null;
  protocolName: string | null;
  /** Sent by the leader; empty from followers. */
  assignments: readonly { memberId: string; assignment: Uint8Array }[];
}

export interface SyncGroupOutcome {
  errorCode: number;
  protocolType: string | null;
  protocolName: string | null;
  assignment: Uint8Array;
}

export interface HeartbeatInput {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  generationId: number;
}

/** One member leaving: by member id, or by instance id (LeaveGroup v3+ with an empty member id). */
export interface LeavingMember {
  memberId: string;
  groupInstanceId: string | null;
}

export interface LeaveGroupOutcome {
  /** The group-level error: for LeaveGroup v0-2 the single member's error. */
  errorCode: number;
  members: (LeavingMember & { errorCode: number })[];
}

/** A member as DescribeGroups and the admin API show it. */
export interface MemberSummary {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  /** The metadata of the selected protocol (empty outside Stable). */
  metadata: Uint8Array;
  /** Empty outside Stable. */
  assignment: Uint8Array;
}

export interface GroupSummary {
  groupId: string;
  state: GroupState;
  protocolType: string;
  protocolName: string;
  generationId: number;
  leader: string | null;
  members: MemberSummary[];
}

/** A member as kept with its group's last completed generation. */
export interface PersistedMember {
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  /** Every protocol it offered, so that a rejoin offering the same ones needs no rebalance. */
  protocols: readonly GroupProtocol[];
  assignment: Uint8Array;
}

/**
 * What survives a restart of a group itself (its offsets are kept apart): its last completed
 * generation with the members still in it, as Kafka keeps it in `__consumer_offsets`.
 */
export interface PersistedGroup {
  /**
   * Stable, or Empty; PreparingRebalance once members have left since the generation completed (the
   * rest still hold their assignments, and a restart starts the rebalance their leaving began).
   */
  state: 'Empty' | 'Stable' | 'PreparingRebalance';
  protocolType: string | null;
  generationId: number;
  /** Null when Empty. */
  protocolName: string | null;
  leader: string | null;
  members: readonly PersistedMember[];
}
