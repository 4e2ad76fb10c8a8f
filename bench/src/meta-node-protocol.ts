/** Messages between the meta suite and its Raft node processes (Node IPC, JSON). */
import type { RaftMetaPeer } from '@robustmq/meta-raft';

/** A closed-loop write workload: `writers` callers, each with one put in flight at a time. */
export interface WriteLoad {
  writers: number;
  valueBytes: number;
  warmupMs: number;
  measureMs: number;
}

export type ToNode =
  | { type: 'open'; id: number; peers: RaftMetaPeer[]; dir: string }
  | { type: 'status' }
  | ({ type: 'load' } & WriteLoad)
  | { type: 'close' };

export interface LoadReport {
  type: 'load';
  /** Puts committed (resolved) inside the measured window. */
  writes: number;
  elapsedNs: number;
  /** Commit latency of those puts, as LatencyHistogram pairs. */
  histogram: [number, number][];
  /** Puts that failed during the whole load, warm-up included. */
  errors: number;
  /** Raft log entries this node saw committed inside the measured window. */
  entries: number;
}

export type FromNode =
  | { type: 'opened' }
  | {
      type: 'status';
      role: string;
      leader: number;
      /** CPU time (user + system) this process has used so far, in microseconds. */
      cpuMicros: number;
    }
  | LoadReport
  | { type: 'closed' }
  | { type: 'error'; message: string };
