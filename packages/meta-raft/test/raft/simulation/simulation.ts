// A seeded, deterministic simulation of a Raft group: virtual time, a lossy network, crashes and
// restarts, partitions, membership churn and a client workload, with every invariant checked after
// every step and the clients' history checked for linearizability at the end. One seed, one run.
import type { ConfChange, Entry, Message, RaftStatus } from '../../../src/index.js';
import { confState, decodeConfChange, MemoryRaftStorage, MetaStateMachine } from '../../../src/index.js';
import { seededRandom } from '../../random.js';
import { formatMessage } from '../interaction/format.js';
import { EventQueue } from './event-queue.js';
import { ElectionSafety } from './invariants/election-safety.js';
import type { Invariant } from './invariants/invariant.js';
import { LeaderCompleteness } from './invariants/leader-completeness.js';
import { LogMatching } from './invariants/log-matching.js';
import { Monotonic } from './invariants/monotonic.js';
import { StateMachineSafety } from './invariants/state-machine-safety.js';
import type { RegisterOp } from './linearizability.js';
import { checkLinearizable, checkRegister } from './linearizability.js';
import type { Outcome, SimHost } from './sim-node.js';
import { SimNode } from './sim-node.js';

/** The knobs of one run, all drawn from its seed (see {@link simulationOptions}). */
export interface SimulationOptions {
  seed: number;
  nodes: number;
  /** Virtual milliseconds of faults; then the network heals and the group must converge. */
  chaosMs: number;
  /** Virtual milliseconds the healed group gets to serve a write and converge. */
  settleMs: number;
  dropRate: number;
  duplicateRate: number;
  maxDelayMs: number;
  /** Share of messages held up far longer than usual (reordering). */
  slowRate: number;
  /** Chance per fault round that a node crashes. */
  crashRate: number;
  /** Chance per fault round that the network splits. */
  partitionRate: number;
  tornWrites: boolean;
  churn: boolean;
  lease: boolean;
  preVote: boolean;
  checkQuorum: boolean;
  clients: number;
  keys: number;
  snapshotEvery: number;
}

/** The run's settings as a function of its seed, so that a seed alone replays it. */
export function simulationOptions(
  seed: number,
  overrides: Partial<SimulationOptions> = {},
): SimulationOptions {
  const random = seededRandom(seed ^ 0x5eed);
  const lease = random() < 0.2;
  const checkQuorum = lease || random() < 0.8;
  return {
    seed,
    nodes: seed % 2 === 0 ? 3 : 5,
    chaosMs: 12_000,
    settleMs: 15_000,
    dropRate: random() * 0.15,
    duplicateRate: random() * 0.05,
    maxDelayMs: 2 + Math.floor(random() * 20),
    slowRate: random() * 0.03,
    crashRate: 0.05 + random() * 0.3,
    partitionRate: 0.05 + random() * 0.25,
    tornWrites: random() < 0.7,
    churn: random() < 0.6,
    lease,
    preVote: random() < 0.8,
    checkQuorum,
    clients: 2 + Math.floor(random() * 3),
    keys: 1 + Math.floor(random() * 4),
    snapshotEvery: 10 + Math.floor(random() * 60),
    ...overrides,
  };
}

type SimEvent =
  | { kind: 'tick'; node: SimNode; incarnation: number }
  | { kind: 'persist'; node: SimNode; incarnation: number }
  | { kind: 'deliver'; message: Message }
  | { kind: 'snapshotReport'; from: number; to: number; ok: boolean }
  | { kind: 'unreachable'; from: number; to: number }
  | { kind: 'client'; client: number }
  | { kind: 'timeout'; opId: number }
  | { kind: 'fault' }
  | { kind: 'restart'; node: SimNode }
  | { kind: 'heal' }
  | { kind: 'churn' }
  | { kind: 'shutdown'; node: SimNode }
  | { kind: 'settle' };

interface PendingChange {
  index: number;
  term: number;
  change: ConfChange;
  at: number;
}

interface ClientOp {
  id: number;
  client: number;
  kind: 'write' | 'read';
  key: string;
  value: string | null;
  call: number;
  done: boolean;
}

export interface SimulationResult {
  seed: number;
  events: number;
  virtualMs: number;
  writes: number;
  reads: number;
  unknown: number;
  leaders: number;
  crashes: number;
  membershipChanges: number;
  snapshotsSent: number;
}

const ELECTION_TICK = 10;
const TICK_MS = 10;
const CLIENT_TIMEOUT_MS = 1_000;

export class SimulationFailure extends Error {
  constructor(seed: number, cause: unknown, trace: string[]) {
    const reason = cause instanceof Error ? (cause.stack ?? cause.message) : String(cause);
    super(
      `raft simulation failed with seed ${seed}\n` +
        `replay: RAFT_SIM_SEED=${seed} npx vitest run test/raft/simulation (in packages/meta-raft)\n` +
        `${reason}\n--- last events ---\n${trace.join('\n')}`,
    );
    this.name = 'SimulationFailure';
  }
}

/**
 * The operations around where a key's history stops being linearizable: the shortest prefix (by call
 * time) that has no linearization, its last 40 operations.
 */
function failingWindow(ops: readonly RegisterOp[]): RegisterOp[] {
  const sorted = [...ops].sort((a, b) => a.call - b.call);
  let lo = 1;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (checkRegister(sorted.slice(0, mid))) lo = mid + 1;
    else hi = mid;
  }
  return sorted.slice(Math.max(0, lo - 40), lo);
}

/** Runs one seed; throws {@link SimulationFailure} naming the seed on any violation. */
export function runSimulation(options: SimulationOptions): SimulationResult {
  const simulation = new Simulation(options);
  try {
    return simulation.run();
  } catch (error) {
    throw new SimulationFailure(options.seed, error, simulation.traceLines());
  }
}

class Simulation implements SimHost {
  now = 0;
  readonly random: () => number;
  readonly invariants: Invariant[] = [
    new ElectionSafety(),
    new LogMatching(),
    new LeaderCompleteness(),
    new StateMachineSafety(),
    new Monotonic(),
  ];
  private readonly queue = new EventQueue<SimEvent>();
  private readonly nodes = new Map<number, SimNode>();
  private nextNodeId: number;
  /** Blocked directed links `from>to`. */
  private blocked = new Set<string>();
  private chaos = true;
  private settling = false;
  private healedAt = Infinity;
  private settledWrite = false;
  private readonly ops = new Map<number, ClientOp>();
  private readonly history: RegisterOp[] = [];
  private nextOpId = 1;
  private readonly leaderHint = new Map<number, number>();
  private pendingChange: PendingChange | null = null;
  /** Every proposed change not yet seen applied (or replaced), by index. */
  private readonly pendingChanges = new Map<number, PendingChange>();
  /** Recent events, rendered only when a run fails. */
  private readonly trace: { time: number; line: string | (() => string) }[] = [];
  private readonly stats = {
    events: 0,
    writes: 0,
    reads: 0,
    unknown: 0,
    crashes: 0,
    membershipChanges: 0,
    snapshotsSent: 0,
  };
  private readonly leaderTerms = new Set<number>();

  constructor(private readonly options: SimulationOptions) {
    this.random = seededRandom(options.seed);
    this.nextNodeId = options.nodes + 1;
  }

  traceLines(): string[] {
    const keep = Number(process.env.RAFT_SIM_TRACE ?? 80);
    return this.trace
      .slice(-keep)
      .map(({ time, line }) => `t=${time} ${typeof line === 'string' ? line : line()}`);
  }

  log(line: string | (() => string)): void {
    this.trace.push({ time: this.now, line });
    const keep = Number(process.env.RAFT_SIM_TRACE ?? 80);
    if (this.trace.length > 2 * keep + 100) this.trace.splice(0, this.trace.length - keep);
  }

  run(): SimulationResult {
    const voters = Array.from({ length: this.options.nodes }, (_, i) => i + 1);
    const empty = new MetaStateMachine({ historyLimit: 0 }).snapshot();
    for (const id of voters) this.addNode(id, MemoryRaftStorage.bootstrap(confState(voters), empty));
    for (let client = 0; client < this.options.clients; client++) {
      this.queue.push(10 + Math.floor(this.random() * 50), { kind: 'client', client });
    }
    this.queue.push(200, { kind: 'fault' });
    if (this.options.churn) this.queue.push(500, { kind: 'churn' });
    this.queue.push(this.options.chaosMs, { kind: 'heal' });

    const deadline = this.options.chaosMs + this.options.settleMs;
    for (;;) {
      const next = this.queue.pop();
      if (next === undefined) throw new Error('the simulation ran out of events');
      this.now = next.time;
      if (this.now > deadline) {
        throw new Error(
          `liveness: the healed group did not serve a write and converge within ${this.options.settleMs} ms`,
        );
      }
      this.stats.events++;
      if (this.handle(next.event)) break;
      this.checkStep();
    }
    // Requests still open when the run ends may yet take effect: their outcome is unknown.
    for (const op of [...this.ops.values()]) this.finish(op, { kind: 'unknown' });
    const result = checkLinearizable(this.history);
    if (!result.ok) {
      const lines = failingWindow(result.ops!).map(
        (op) => `${op.label} ${op.kind} ${JSON.stringify(op.value)} [${op.call}, ${op.ret}]`,
      );
      throw new Error(`linearizability: no linearization for key ${result.key}:\n${lines.join('\n')}`);
    }
    return {
      seed: this.options.seed,
      events: this.stats.events,
      virtualMs: this.now,
      writes: this.stats.writes,
      reads: this.stats.reads,
      unknown: this.stats.unknown,
      leaders: this.leaderTerms.size,
      crashes: this.stats.crashes,
      membershipChanges: this.stats.membershipChanges,
      snapshotsSent: this.stats.snapshotsSent,
    };
  }

  private addNode(id: number, storage: MemoryRaftStorage): SimNode {
    const lease = this.options.lease;
    const node = new SimNode(id, storage, this, {
      raft: {
        electionTick: ELECTION_TICK,
        heartbeatTick: 1,
        preVote: this.options.preVote,
        checkQuorum: this.options.checkQuorum,
        readOnly: lease ? 'lease' : 'safe',
        maxSizePerMsg: 1024,
        maxInflightMsgs: 4,
      },
      // Lease reads assume clocks that tick at the same rate; otherwise let them drift by 10%.
      tickMs: lease ? TICK_MS : TICK_MS - 1 + Math.floor(this.random() * 3),
      snapshotEvery: this.options.snapshotEvery,
      keepEntries: Math.floor(this.random() * 10),
      tornWrites: this.options.tornWrites,
    });
    this.nodes.set(id, node);
    node.start();
    return node;
  }

  // ---- SimHost ----------------------------------------------------------------------------------

  scheduleTick(node: SimNode, delay: number): void {
    this.queue.push(this.now + delay, { kind: 'tick', node, incarnation: node.incarnation });
  }

  schedulePersist(node: SimNode, delay: number): void {
    this.queue.push(this.now + delay, { kind: 'persist', node, incarnation: node.incarnation });
  }

  send(message: Message): void {
    if (message.type === 'snapshot') this.stats.snapshotsSent++;
    const lost =
      this.blocked.has(`${message.from}>${message.to}`) ||
      (this.chaos && this.random() < this.options.dropRate);
    if (lost) {
      // A transport notices a broken connection some of the time.
      if (this.random() < 0.3) {
        this.queue.push(this.now + 5, { kind: 'unreachable', from: message.from, to: message.to });
      }
      if (message.type === 'snapshot') {
        this.queue.push(this.now + 5, {
          kind: 'snapshotReport',
          from: message.from,
          to: message.to,
          ok: false,
        });
      }
      return;
    }
    const copies = this.chaos && this.random() < this.options.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      let delay = 1 + Math.floor(this.random() * this.options.maxDelayMs);
      if (this.chaos && this.random() < this.options.slowRate) delay += Math.floor(this.random() * 300);
      this.queue.push(this.now + delay, { kind: 'deliver', message });
    }
  }

  complete(opId: number, outcome: Outcome): void {
    const op = this.ops.get(opId);
    if (op === undefined || op.done) return;
    this.finish(op, outcome);
  }

  onApplied(_node: SimNode, entry: Entry): void {
    const pending = this.pendingChanges.get(entry.index);
    if (pending === undefined) return;
    this.pendingChanges.delete(entry.index);
    if (this.pendingChange?.index === entry.index) this.pendingChange = null;
    if (entry.term !== pending.term) return;
    this.stats.membershipChanges++;
    const change = decodeConfChange(entry.data);
    this.log(`membership change committed: ${change.type}(${change.nodeId})`);
    if (change.type === 'removeNode') {
      const removed = this.nodes.get(change.nodeId);
      if (removed !== undefined) {
        // A removed node lingers a while (it must not disturb the group), then goes away.
        this.queue.push(this.now + Math.floor(this.random() * 2000), { kind: 'shutdown', node: removed });
      }
    }
  }

  // ---- events -----------------------------------------------------------------------------------

  /** Handles one event; true when the run is complete. */
  private handle(event: SimEvent): boolean {
    switch (event.kind) {
      case 'tick':
        event.node.tick(event.incarnation);
        return false;
      case 'persist':
        event.node.persisted(event.incarnation);
        return false;
      case 'deliver': {
        const m = event.message;
        const target = this.nodes.get(m.to);
        if (target === undefined || this.blocked.has(`${m.from}>${m.to}`) || !target.deliver(m)) {
          if (m.type === 'snapshot') this.reportSnapshot(m.from, m.to, false);
          return false;
        }
        this.log(() => `deliver ${formatMessage(m)}`);
        if (m.type === 'snapshot') this.reportSnapshot(m.from, m.to, true);
        return false;
      }
      case 'snapshotReport':
        this.reportSnapshot(event.from, event.to, event.ok);
        return false;
      case 'unreachable':
        this.nodes.get(event.from)?.reportUnreachable(event.to);
        return false;
      case 'client':
        this.clientStep(event.client);
        return false;
      case 'timeout': {
        const op = this.ops.get(event.opId);
        if (op !== undefined && !op.done) this.finish(op, { kind: 'unknown' });
        return false;
      }
      case 'fault':
        this.fault();
        return false;
      case 'restart':
        if (!event.node.stopped && !event.node.up) {
          this.log(`restart node ${event.node.id}`);
          event.node.start();
        }
        return false;
      case 'heal':
        this.heal();
        return false;
      case 'churn':
        this.churn();
        return false;
      case 'shutdown':
        this.log(`shut down removed node ${event.node.id}`);
        event.node.stopped = true;
        if (event.node.up) event.node.crash();
        return false;
      case 'settle':
        return this.settled();
    }
  }

  private reportSnapshot(from: number, to: number, ok: boolean): void {
    this.nodes.get(from)?.reportSnapshot(to, ok);
  }

  private liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((node) => node.up);
  }

  /** The live leader of the highest term, if any. */
  private leader(): { node: SimNode; status: RaftStatus } | undefined {
    let best: { node: SimNode; status: RaftStatus } | undefined;
    for (const node of this.liveNodes()) {
      const status = node.raw!.status();
      if (status.role === 'leader' && (best === undefined || status.term > best.status.term))
        best = { node, status };
    }
    return best;
  }

  private checkStep(): void {
    const observed: { node: SimNode; status: RaftStatus }[] = [];
    for (const node of this.nodes.values()) {
      if (!node.up) continue;
      const status = node.raw!.status();
      observed.push({ node, status });
      if (status.role === 'leader') this.leaderTerms.add(status.term);
    }
    for (const invariant of this.invariants) invariant.afterStep?.(observed);
  }

  // ---- faults -----------------------------------------------------------------------------------

  private fault(): void {
    if (!this.chaos) return;
    this.queue.push(this.now + 100 + Math.floor(this.random() * 400), { kind: 'fault' });
    const members = [...this.nodes.values()].filter((node) => !node.stopped);
    if (this.random() < this.options.crashRate) {
      const live = members.filter((node) => node.up);
      // Leaders are the interesting victims.
      const leader = this.leader()?.node;
      const victim =
        leader !== undefined && this.random() < 0.4 ? leader : live[Math.floor(this.random() * live.length)];
      if (victim !== undefined) {
        this.stats.crashes++;
        this.log(`crash node ${victim.id}`);
        victim.crash();
        // With lease reads a node must stay down longer than an election timeout (their premise).
        this.queue.push(this.now + this.minimumDowntime() + Math.floor(this.random() * 2000), {
          kind: 'restart',
          node: victim,
        });
      }
    }
    if (this.random() < 0.05) {
      const leader = this.leader();
      const voters = leader?.status.conf.voters ?? [];
      const target = voters[Math.floor(this.random() * voters.length)];
      if (leader !== undefined && target !== undefined) {
        this.log(`transfer leadership ${leader.node.id} -> ${target}`);
        leader.node.act((raw) => raw.transferLeader(target));
      }
    }
    if (this.random() < this.options.partitionRate) {
      this.blocked = new Set();
      const ids = members.map((node) => node.id);
      // Often the leader alone (or with a minority) is cut off: the case that tests leadership.
      const leaderId = this.leader()?.node.id;
      const side = new Set(
        leaderId !== undefined && this.random() < 0.5
          ? [leaderId, ...ids.filter((id) => id !== leaderId && this.random() < 0.2)]
          : ids.filter(() => this.random() < 0.5),
      );
      const oneWay = this.random() < 0.2;
      for (const a of ids) {
        for (const b of ids) {
          if (side.has(a) && !side.has(b)) this.blocked.add(`${a}>${b}`);
          if (!oneWay && !side.has(a) && side.has(b)) this.blocked.add(`${a}>${b}`);
        }
      }
      this.log(
        `partition ${[...side].join(',')} | ${ids.filter((id) => !side.has(id)).join(',')}${oneWay ? ' (one way)' : ''}`,
      );
    } else if (this.blocked.size > 0 && this.random() < 0.3) {
      this.log('partition healed');
      this.blocked = new Set();
    }
  }

  /** With lease reads a node must stay down longer than an election timeout (their premise). */
  private minimumDowntime(): number {
    return this.options.lease ? 3 * ELECTION_TICK * TICK_MS : 20;
  }

  private heal(): void {
    this.log('chaos over: heal the network, restart every member');
    this.chaos = false;
    this.settling = true;
    this.healedAt = this.now;
    this.blocked = new Set();
    for (const node of this.nodes.values()) {
      if (node.stopped || node.up) continue;
      const at = Math.max(this.now + 1, node.crashedAt + this.minimumDowntime());
      this.queue.push(at, { kind: 'restart', node });
    }
    this.queue.push(this.now + 100, { kind: 'settle' });
  }

  /** Whether the healed group has served a write and every member has caught up. */
  private settled(): boolean {
    this.queue.push(this.now + 100, { kind: 'settle' });
    if (!this.settledWrite) return false;
    const leader = this.leader();
    if (leader === undefined) return false;
    const { status } = leader;
    if (status.commit !== status.lastIndex) return false;
    const members = [...status.conf.voters, ...status.conf.learners];
    const snapshots: Uint8Array[] = [];
    for (const id of members) {
      const node = this.nodes.get(id);
      if (node === undefined || !node.up || node.appliedIndex !== status.commit) return false;
      snapshots.push(node.sm.snapshot());
    }
    const first = Buffer.from(snapshots[0]!);
    for (let i = 1; i < snapshots.length; i++) {
      if (!first.equals(Buffer.from(snapshots[i]!))) {
        throw new Error(
          `state machine safety: members ${members.join(',')} applied ${status.commit} but differ`,
        );
      }
    }
    return true;
  }

  // ---- membership churn -------------------------------------------------------------------------

  private churn(): void {
    if (!this.chaos) return;
    this.queue.push(this.now + 300 + Math.floor(this.random() * 1500), { kind: 'churn' });
    // Mostly wait for the last change; sometimes try another at once (the leader must refuse it).
    if (this.pendingChange !== null && this.now - this.pendingChange.at < 3000 && this.random() < 0.7) return;
    const leader = this.leader();
    if (leader === undefined) return;
    const { voters, learners } = leader.status.conf;
    const minVoters = 3;
    const maxVoters = this.options.nodes + 1;
    const choices: (() => ConfChange | null)[] = [];
    if (learners.length === 0 && this.nextNodeId <= this.options.nodes + 6) {
      choices.push(() => {
        const id = this.nextNodeId++;
        this.addNode(id, new MemoryRaftStorage());
        return { type: 'addLearner', nodeId: id };
      });
    }
    for (const id of learners) {
      const progress = leader.status.progress.get(id);
      if (
        voters.length < maxVoters &&
        progress !== undefined &&
        progress.match + 20 >= leader.status.lastIndex
      ) {
        choices.push(() => ({ type: 'addVoter', nodeId: id }));
      }
      choices.push(() => ({ type: 'removeNode', nodeId: id }));
    }
    if (voters.length > minVoters) {
      const id = voters[Math.floor(this.random() * voters.length)]!;
      choices.push(() => ({ type: 'removeNode', nodeId: id }));
      choices.push(() => ({ type: 'addLearner', nodeId: id }));
    }
    const choice = choices[Math.floor(this.random() * choices.length)];
    const change = choice?.();
    if (change === undefined || change === null) return;
    leader.node.act((raw) => {
      try {
        const at = raw.proposeConfChange(change);
        this.pendingChange = { ...at, change, at: this.now };
        this.pendingChanges.set(at.index, { ...at, change, at: this.now });
        this.log(`propose membership change ${change.type}(${change.nodeId}) at ${at.term}/${at.index}`);
      } catch (error) {
        this.log(`membership change ${change.type}(${change.nodeId}) refused: ${String(error)}`);
      }
    });
  }

  // ---- clients ----------------------------------------------------------------------------------

  private clientStep(client: number): void {
    if (!this.chaos && this.settledWrite) return;
    const candidates = [...this.nodes.values()].filter((node) => node.up && !node.stopped);
    const hinted = this.nodes.get(this.leaderHint.get(client) ?? 0);
    const node =
      hinted !== undefined && hinted.up && this.random() < 0.95
        ? hinted
        : candidates[Math.floor(this.random() * candidates.length)];
    const retry = (): void => {
      this.queue.push(this.now + 2 + Math.floor(this.random() * 20), { kind: 'client', client });
    };
    if (node === undefined) return retry();
    const key = `k${Math.floor(this.random() * this.options.keys)}`;
    const write = this.random() < 0.5;
    const op: ClientOp = {
      id: this.nextOpId++,
      client,
      kind: write ? 'write' : 'read',
      key,
      value: write ? `c${client}-${this.nextOpId}` : null,
      call: this.now,
      done: false,
    };
    const accepted = write ? node.submitWrite(op.id, key, op.value!) : node.submitRead(op.id, key);
    if (!accepted) {
      // Not the leader or no leader known: nothing happened; ask another node.
      const lead = node.raw?.status().leader ?? 0;
      this.leaderHint.set(client, lead);
      return retry();
    }
    this.leaderHint.set(client, node.id);
    this.ops.set(op.id, op);
    this.queue.push(this.now + CLIENT_TIMEOUT_MS, { kind: 'timeout', opId: op.id });
  }

  private finish(op: ClientOp, outcome: Outcome): void {
    op.done = true;
    this.ops.delete(op.id);
    const label = `client ${op.client} op ${op.id}`;
    if (outcome.kind === 'ok') {
      this.stats.writes++;
      this.history.push({ kind: 'write', key: op.key, value: op.value, call: op.call, ret: this.now, label });
      if (this.settling && op.call >= this.healedAt) this.settledWrite = true;
    } else if (outcome.kind === 'read') {
      this.stats.reads++;
      this.history.push({
        kind: 'read',
        key: op.key,
        value: outcome.value,
        call: op.call,
        ret: this.now,
        label,
      });
    } else if (outcome.kind === 'unknown' && op.kind === 'write') {
      // It may have happened at any time after the call.
      this.stats.unknown++;
      this.history.push({ kind: 'write', key: op.key, value: op.value, call: op.call, ret: Infinity, label });
    }
    this.queue.push(this.now + Math.floor(this.random() * 20), { kind: 'client', client: op.client });
  }
}
