import type { Role } from './config/schema.js';

export interface ListenerStatus {
  protocol: string;
  name: string;
  transport: string;
  host: string;
  port: number;
}

/** This node's view of the meta Raft group (cluster mode only). */
export interface MetaGroupStatus {
  /** The leader's node id, 0 while none is known. */
  leader: number;
  role: string;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  voters: number[];
}

/** What `/health/ready` reports; `robustmq status` prints it. */
export interface StatusSnapshot {
  ready: boolean;
  status: 'starting' | 'ready' | 'stopping';
  version: string;
  nodeId: number;
  clusterId: string | null;
  roles: Role[];
  uptimeSeconds: number;
  listeners: ListenerStatus[];
  /** Present on a node in the meta Raft group. */
  meta?: MetaGroupStatus;
}

/** The node's lifecycle as the outside sees it. */
export class NodeStatus {
  private phase: StatusSnapshot['status'] = 'starting';
  private readonly started = Date.now();
  clusterId: string | null = null;
  readonly listeners: ListenerStatus[] = [];
  /** Set on a node in the meta Raft group: reads the group's state for each snapshot. */
  metaGroup: (() => MetaGroupStatus) | null = null;

  constructor(
    private readonly version: string,
    private readonly nodeId: number,
    private readonly roles: Role[],
  ) {}

  markReady(): void {
    this.phase = 'ready';
  }

  markStopping(): void {
    this.phase = 'stopping';
  }

  snapshot(): StatusSnapshot {
    return {
      ready: this.phase === 'ready',
      status: this.phase,
      version: this.version,
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      roles: this.roles,
      uptimeSeconds: Math.floor((Date.now() - this.started) / 1000),
      listeners: this.listeners,
      ...(this.metaGroup !== null ? { meta: this.metaGroup() } : {}),
    };
  }
}
