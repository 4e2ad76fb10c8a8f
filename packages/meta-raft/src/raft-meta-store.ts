// The clustered MetaStore: the meta state machine replicated by a Raft group.
import type { ConnectionOptions } from 'node:tls';
import type {
  Logger,
  MetaEntry,
  MetaEvent,
  MetaListOptions,
  MetaPutOptions,
  MetaStore,
  MetaWatch,
  MetaWatchOptions,
} from '@robustmq/core';
import { deleted, deleteOp, putOp, putRevision } from './meta-ops.js';
import { ErrorCode, isRobustMQError, RobustMQError, silentLogger } from '@robustmq/core';
import type { MutualTls, RpcServer } from '@robustmq/rpc';
import { createRpcServer, DEFAULT_MAX_FRAME_BYTES } from '@robustmq/rpc';
import type { MetaCommand, MetaOp } from './command.js';
import {
  checkMetaCommand,
  decodeMetaCommand,
  decodeMetaEntry,
  encodeMetaCommand,
  encodeMetaEntry,
} from './command.js';
import { DiskRaftStorage } from './disk-raft-storage.js';
import { confState } from './raft/conf-change.js';
import { RawNode } from './raft/raw-node.js';
import type { ConfChange, Entry, Message, NodeId, RaftRole, Ready } from './raft/types.js';
import { NONE } from './raft/types.js';
import type { RaftMetaPeer } from './raft-transport.js';
import type { SnapshotChunk } from './raft-transport.js';
import {
  META_PROPOSE_METHOD,
  probeGroup,
  RAFT_GROUP_METHOD,
  RAFT_MESSAGES_METHOD,
  RAFT_SNAPSHOT_CHUNK_METHOD,
  RaftTransport,
  SnapshotAssembler,
} from './raft-transport.js';
import type { RaftMessagesReply } from './raft-transport.js';
import type { MetaApplyResult, MetaOpResult } from './state-machine.js';
import { MetaStateMachine } from './state-machine.js';
import { WatchRegistry } from './watch-registry.js';
import { serveMetaClients } from './remote/service.js';

export type { RaftMetaPeer } from './raft-transport.js';

export interface RaftMetaStoreOptions {
  /** This node's id in the group. */
  id: NodeId;
  /**
   * The group's members with their RPC addresses, this node included. A node whose storage is
   * empty founds the group with these as voters; later the membership comes from the log.
   */
  peers: readonly RaftMetaPeer[];
  /** Directory of this node's Raft log, hard state and snapshot; created if missing. */
  dir: string;
  /**
   * The RPC server to serve Raft traffic on; the store adds its methods, the caller listens and
   * closes it. Without one, a group of more than one node gets its own server on this node's
   * address from `peers` (a one-node group needs none).
   */
  rpcServer?: RpcServer;
  /**
   * TLS of the group's RPC: `client` for the connections to the other members, `server` for the
   * server this store opens itself (a caller's `rpcServer` brings its own). Unset, plain TCP.
   */
  tls?: MutualTls;
  /**
   * The largest RPC frame the group's servers take (default @robustmq/rpc's, 64 MiB). Snapshots
   * go to followers in pieces of at most a quarter of it (and at most 4 MiB), so the meta state may
   * outgrow one frame. The caller's `rpcServer` must take frames this large.
   */
  maxFrameBytes?: number;
  /** Milliseconds per Raft tick (default 100). */
  tickMs?: number;
  /** Ticks without a leader before an election; randomized up to twice this (default 10). */
  electionTick?: number;
  /** Take a snapshot and compact the log after this many applied entries (default 10,000). */
  snapshotEntries?: number;
  /** How long a read or write waits for a leader and its commit before failing (default 10 s). */
  requestTimeoutMs?: number;
  /** Events kept for watches resuming `afterRevision` (default 10,000). */
  historyLimit?: number;
  /** Uniform in [0, 1), for the randomized election timeout (default Math.random). */
  random?: () => number;
  logger?: Logger;
}

/** The node's view of the group, for health checks and admin pages. */
export interface RaftMetaStatus {
  id: NodeId;
  role: RaftRole;
  /** The leader's id, 0 when none is known. */
  leader: NodeId;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  voters: NodeId[];
}

type ApplyOutcome = { index: number; result: MetaApplyResult };

/** What the leader answers a forwarded write: where it landed and how it went, or who leads. */
type ProposeReply =
  | { leader: NodeId }
  | { index: number; ok: true; results: MetaOpResult[] }
  | { index: number; ok: false; code: string; message: string };

interface Writer {
  resolve: (outcome: ApplyOutcome) => void;
  reject: (error: unknown) => void;
}

/** The writes waiting on one Raft entry this node proposed, by their place in it. */
interface PendingProposal {
  term: number;
  /** When its writers stop waiting (checked every tick). */
  deadline: number;
  /** The entry's commands, as decoding it would give them: applied instead of decoding it. */
  commands: MetaCommand[];
  writers: Writer[];
}

interface BatchedProposal extends Writer {
  command: MetaCommand;
  /** Its encoded size, from `checkMetaCommand`. */
  size: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
/** Commands packed into one Raft entry stop here, so a burst does not make one huge entry. */
const MAX_BATCH_ENTRY_BYTES = 1024 * 1024;
/** Entries kept behind a snapshot, so a follower a little behind catches up from the log. */
const MAX_ENTRIES_KEPT = 1_000;
/** The largest piece a snapshot is sent in, whatever the frame limit. */
const MAX_SNAPSHOT_CHUNK_BYTES = 4 * 1024 * 1024;

/** Opens this node's member of the meta Raft group, founding the group if its storage is empty. */
export function openRaftMetaStore(options: RaftMetaStoreOptions): Promise<RaftMetaStore> {
  return RaftMetaStore.open(options);
}

/**
 * A {@link MetaStore} replicated by Raft. Writes go to the leader (a follower forwards them over
 * RPC) and resolve once committed and applied on this node, so this node's reads and watches see
 * them at once. Reads are linearizable: a ReadIndex round confirms the leader still leads, then
 * the read waits for this node to apply up to that point. Watches see the events this node
 * applies; a node that catches up from a leader's snapshot gives its watches nothing for the
 * revisions the snapshot skipped. The log is snapshotted and compacted every `snapshotEntries`.
 */
export class RaftMetaStore implements MetaStore {
  private readonly node: RawNode;
  private readonly watches: WatchRegistry;
  private readonly transport: RaftTransport;
  private readonly proposals = new Map<number, PendingProposal>();
  private readonly reads = new Map<string, { index?: number; resolve: (index: number) => void }>();
  private appliedWaiters: Array<{ index: number } & Waiter> = [];
  private leaderWaiters: Waiter[] = [];
  private applied: number;
  private leader: NodeId = NONE;
  private role: RaftRole = 'follower';
  private readSequence = 0;
  private driving: Promise<void> | null = null;
  /** Commands waiting to be proposed together at the end of this turn of the event loop. */
  private batch: BatchedProposal[] = [];
  /** The snapshot file being written, if any. */
  private snapshotting: Promise<void> | null = null;
  /** Where to compact the log to, once a snapshot is durable. */
  private compactTo: number | null = null;
  /** The leader's log sync running in the thread pool, if any (see `syncLog`). */
  private syncing: Promise<void> | null = null;
  /** The last entry appended since that sync began: the next sync makes it durable. */
  private unsynced: { index: number; term: number } | null = null;
  /**
   * Messages a leader has cleared to send but holds back until its next send or the end of the
   * Ready loop, so the commit news of one Ready and the entries of the next travel together.
   */
  private outbox: Message[] = [];
  /** Calls from peers whose replies wait for this node's next messages to them, oldest first. */
  private readonly replies = new Map<NodeId, Array<(reply: RaftMessagesReply) => void>>();
  private failure: RobustMQError | null = null;
  private closed = false;
  private readonly ticker: NodeJS.Timeout;
  private ticks = 0;
  /** The members the configuration lists; the leader brings the missing ones in. */
  private readonly configured: NodeId[];
  private readonly electionMs: number;

  private constructor(
    private readonly id: NodeId,
    private readonly storage: DiskRaftStorage,
    private readonly machine: MetaStateMachine,
    peers: ReadonlyMap<NodeId, RaftMetaPeer>,
    private readonly ownServer: RpcServer | null,
    private readonly options: Required<
      Pick<
        RaftMetaStoreOptions,
        'tickMs' | 'electionTick' | 'snapshotEntries' | 'requestTimeoutMs' | 'maxFrameBytes'
      >
    >,
    random: () => number,
    private readonly logger: Logger,
    clientTls: ConnectionOptions | undefined,
  ) {
    this.applied = storage.snapshot().metadata.index;
    this.node = new RawNode({
      id,
      storage,
      random,
      electionTick: options.electionTick,
      applied: this.applied,
      // Appends travel whole: keep each well inside one RPC frame.
      maxSizePerMsg: this.messageBytes(),
      // The leader syncs its log in the thread pool while it steps the followers' answers.
      asyncLeaderPersistence: true,
      logger,
    });
    this.electionMs = options.tickMs * options.electionTick;
    this.watches = new WatchRegistry(logger);
    this.transport = new RaftTransport(
      peers,
      this.electionMs,
      {
        unreachable: (to) => this.input(() => this.node.reportUnreachable(to)),
        received: (messages) => this.receive(messages),
        snapshotDelivered: (to, ok) => this.input(() => this.node.reportSnapshot(to, ok)),
      },
      logger,
      Math.min(MAX_SNAPSHOT_CHUNK_BYTES, Math.floor(options.maxFrameBytes / 4)),
      options.maxFrameBytes,
      clientTls,
    );
    this.configured = [...peers.keys()];
    this.ticker = setInterval(() => {
      this.expireProposals();
      this.input(() => this.node.tick());
      if (++this.ticks % options.electionTick === 0) this.reconcileMembers();
    }, options.tickMs);
    this.ticker.unref();
  }

  static async open(options: RaftMetaStoreOptions): Promise<RaftMetaStore> {
    const logger = (options.logger ?? silentLogger).child({ component: 'meta-raft', raftNode: options.id });
    const resolved = {
      tickMs: options.tickMs ?? 100,
      electionTick: options.electionTick ?? 10,
      snapshotEntries: options.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    };
    for (const [name, value] of Object.entries(resolved)) {
      if (!(Number.isSafeInteger(value) && value > 0)) {
        throw new RobustMQError(
          ErrorCode.InvalidArgument,
          `${name} must be a positive integer, got ${value}`,
        );
      }
    }
    const peers = new Map(options.peers.map((peer) => [peer.id, peer]));
    const self = peers.get(options.id);
    if (self === undefined) {
      throw new RobustMQError(ErrorCode.InvalidArgument, `node ${options.id} is not among the meta peers`);
    }

    const machine = new MetaStateMachine({ historyLimit: options.historyLimit });
    const storage = await DiskRaftStorage.open({ dir: options.dir, logger });
    let ownServer: RpcServer | null = null;
    try {
      if (storage.isEmpty()) {
        // A node new to a running group that does not count it joins it (the leader adds it);
        // otherwise the configured peers found the group together.
        const others = [...peers.values()].filter((peer) => peer.id !== options.id);
        const group =
          others.length === 0
            ? null
            : await probeGroup(others, resolved.tickMs * resolved.electionTick, logger, options.tls?.client);
        if (group !== null && !group.voters.includes(options.id)) {
          logger.info(
            { voters: group.voters, learners: group.learners, leader: group.leader },
            'joining the running meta group; its leader adds this node',
          );
        } else {
          await storage.bootstrap(confState(peers.keys()), machine.snapshot());
        }
      }
      if (storage.snapshot().metadata.index > 0) machine.restore(storage.snapshot().data);
      if (options.rpcServer === undefined && peers.size > 1) {
        ownServer = createRpcServer({
          host: self.host,
          port: self.port,
          logger,
          maxFrameBytes: resolved.maxFrameBytes,
          ...(options.tls === undefined ? {} : { tls: options.tls.server }),
        });
      }
    } catch (error) {
      await storage.close();
      throw error;
    }
    const store = new RaftMetaStore(
      options.id,
      storage,
      machine,
      peers,
      ownServer,
      resolved,
      options.random ?? Math.random,
      logger,
      options.tls?.client,
    );
    store.serve(options.rpcServer ?? ownServer);
    try {
      if (ownServer !== null) await ownServer.listen();
    } catch (error) {
      await store.close();
      throw error;
    }
    // Replay what this node knows is committed before anyone reads or watches.
    try {
      store.kick();
      await store.waitApplied(storage.hardState().commit, Date.now() + resolved.requestTimeoutMs);
    } catch (error) {
      await store.close();
      throw error;
    }
    const voters = store.node.status().conf.voters;
    // A group of one has nobody to wait for: lead at once rather than after an election timeout.
    if (voters.length === 1 && voters[0] === options.id) store.input(() => store.node.campaign());
    logger.info(
      { dir: options.dir, voters, appliedIndex: store.applied, revision: machine.revision },
      'meta raft node opened',
    );
    return store;
  }

  /** This node's view of the group. */
  status(): RaftMetaStatus {
    const status = this.node.status();
    return {
      id: this.id,
      role: status.role,
      leader: status.leader,
      term: status.term,
      commitIndex: status.commit,
      appliedIndex: this.applied,
      voters: [...status.conf.voters],
    };
  }

  async get(key: string): Promise<MetaEntry | null> {
    await this.linearize();
    const entry = this.machine.get(key);
    return entry === null ? null : copyEntry(entry);
  }

  put(key: string, value: Uint8Array, options?: MetaPutOptions): Promise<number> {
    return this.write({ ops: [putOp(key, value, options)] }).then(putRevision);
  }

  delete(key: string, options?: MetaPutOptions): Promise<boolean> {
    return this.write({ ops: [deleteOp(key, options)] }).then(deleted);
  }

  /** Applies several puts and deletes atomically at one revision, as `LocalMetaStore.txn`. */
  txn(ops: MetaOp[]): Promise<MetaOpResult[]> {
    return this.write({ ops });
  }

  async list(prefix: string, options: MetaListOptions = {}): Promise<MetaEntry[]> {
    await this.linearize();
    return this.machine.list(prefix, options).map(copyEntry);
  }

  watch(prefix: string, listener: (event: MetaEvent) => void, options: MetaWatchOptions = {}): MetaWatch {
    this.checkOpen();
    const { afterRevision } = options;
    if (afterRevision === undefined) return this.watches.add(prefix, listener, []);
    if (!(Number.isSafeInteger(afterRevision) && afterRevision >= 0)) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `afterRevision must be a non-negative integer, got ${afterRevision}`,
      );
    }
    const backlog = this.machine.eventsAfter(afterRevision, prefix);
    // This node may not have applied `afterRevision` yet: skip live events up to it.
    return this.watches.add(
      prefix,
      (event) => {
        if (event.revision > afterRevision) listener(event);
      },
      backlog,
    );
  }

  async revision(): Promise<number> {
    await this.linearize();
    return this.machine.revision;
  }

  /**
   * Lets the work already handed to Raft finish, then fails what is still waiting with `CLOSED`,
   * ends every watch and closes the transport and storage. Later calls fail `CLOSED`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    await this.drain();
    await this.snapshotting;
    while (this.syncing !== null) await this.syncing;
    const closed = new RobustMQError(ErrorCode.Closed, 'meta store is closed');
    this.rejectAll(closed);
    this.watches.closeAll();
    await this.transport.close();
    if (this.ownServer !== null) await this.ownServer.close();
    await this.storage.close();
    this.logger.info(
      { revision: this.machine.revision, appliedIndex: this.applied },
      'meta raft node closed',
    );
  }

  // ---- RPC ------------------------------------------------------------------------------------------

  private serve(server: RpcServer | null): void {
    if (server === null) return;
    server.handle(
      RAFT_MESSAGES_METHOD,
      ({ messages }: { messages: Message[] }): RaftMessagesReply | Promise<RaftMessagesReply> => {
        this.checkOpen();
        this.receive(messages);
        const from = messages[0]?.from;
        // The answers ride back on this call's reply, saving a call each way, unless nothing is
        // being handled that could make them (see `answerCalls`).
        if (from === undefined || this.driving === null || this.failure !== null) return {};
        return new Promise<RaftMessagesReply>((resolve) => {
          const waiting = this.replies.get(from);
          if (waiting === undefined) this.replies.set(from, [resolve]);
          else waiting.push(resolve);
        });
      },
    );
    server.handle(RAFT_GROUP_METHOD, () => {
      this.checkOpen();
      const { conf, leader } = this.node.status();
      return { voters: [...conf.voters], learners: [...conf.learners], leader };
    });
    serveMetaClients(server, this, {
      leader: () => this.leader,
      appliedRevision: () => this.machine.revision,
    });
    const snapshots = new SnapshotAssembler();
    server.handle(RAFT_SNAPSHOT_CHUNK_METHOD, (chunk: SnapshotChunk) => {
      this.checkOpen();
      const message = snapshots.add(chunk);
      if (message !== null) this.receive([message]);
      return {};
    });
    server.handle(
      META_PROPOSE_METHOD,
      async ({ command }: { command: Uint8Array }): Promise<ProposeReply> => {
        this.checkUsable();
        if (this.role !== 'leader') return { leader: this.leader };
        const decoded = decodeMetaCommand(command);
        const { index, result } = await this.proposeHere(decoded, checkMetaCommand(decoded));
        if (result.ok) return { index, ok: true, results: result.results };
        return { index, ok: false, ...applyError(result) };
      },
    );
  }

  // ---- writes ---------------------------------------------------------------------------------------

  /**
   * Gets `command` committed and applied here and returns its results. A leader proposes it at
   * once; otherwise, or when leadership moves meanwhile, see `submit`.
   */
  private write(command: MetaCommand): Promise<MetaOpResult[]> {
    let size: number;
    try {
      this.checkUsable();
      size = checkMetaCommand(command);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const deadline = Date.now() + this.options.requestTimeoutMs;
    if (this.role !== 'leader') return this.submit(command, size, deadline);
    return this.proposeHere(command, size).then(outcomeResults, (error: unknown) => {
      if (!isLeadershipLost(error)) throw error;
      return this.waitForLeaderChange(deadline).then(() => this.submit(command, size, deadline));
    });
  }

  /** Gets `command` committed and applied here: proposed on this node if it leads, else forwarded. */
  private async submit(command: MetaCommand, size: number, deadline: number): Promise<MetaOpResult[]> {
    let encoded: Uint8Array | null = null;
    for (;;) {
      this.checkUsable();
      if (this.role === 'leader') {
        let outcome: ApplyOutcome;
        try {
          outcome = await this.proposeHere(command, size);
        } catch (error) {
          if (isLeadershipLost(error)) {
            await this.waitForLeaderChange(deadline);
            continue;
          }
          throw error;
        }
        return outcomeResults(outcome);
      }
      const client = this.leader === NONE ? undefined : this.transport.client(this.leader);
      if (client === undefined) {
        await this.waitForLeaderChange(deadline);
        continue;
      }
      if (!client.connected) {
        // A call made without a connection waits for one until its deadline; a leader that
        // cannot be reached is soon replaced, so wait for that instead.
        try {
          await client.waitConnected(Math.max(1, Math.min(this.electionMs, deadline - Date.now())));
        } catch {
          await this.waitForLeaderChange(deadline);
          continue;
        }
      }
      encoded ??= encodeMetaCommand(command);
      // A failed call may have been carried out: it is not retried, the caller learns UNAVAILABLE.
      const reply = await client.call<ProposeReply>(
        META_PROPOSE_METHOD,
        { command: encoded },
        { deadlineMs: Math.max(1, deadline - Date.now()) },
      );
      if ('leader' in reply) {
        await this.waitForLeaderChange(deadline);
        continue;
      }
      await this.waitApplied(reply.index, deadline);
      if (!reply.ok) throw new RobustMQError(reply.code as ErrorCode, reply.message);
      return reply.results;
    }
  }

  /**
   * Proposes on this node, the leader, and resolves once the entry is applied here. Commands
   * arriving in the same turn of the event loop are proposed together, packed into few entries.
   * Writers not answered by `requestTimeoutMs` are failed by the ticker (`expireProposals`).
   */
  private proposeHere(command: MetaCommand, size: number): Promise<ApplyOutcome> {
    return new Promise<ApplyOutcome>((resolve, reject) => {
      if (this.batch.length === 0) queueMicrotask(() => this.proposeBatch());
      this.batch.push({ command, size, resolve, reject });
    });
  }

  private proposeBatch(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    // Pack the commands into entries of up to MAX_BATCH_ENTRY_BYTES; a lone command stays as is.
    const groups: BatchedProposal[][] = [];
    let bytes = Infinity;
    const limit = this.messageBytes();
    for (const proposal of batch) {
      if (bytes + proposal.size > limit) {
        groups.push([]);
        bytes = 0;
      }
      groups[groups.length - 1]!.push(proposal);
      bytes += proposal.size + 4;
    }
    let first: number;
    let term: number;
    let entries: ReturnType<typeof encodeMetaEntry>[];
    try {
      this.checkUsable();
      entries = groups.map((group) =>
        encodeMetaEntry(
          group.map((p) => p.command),
          group.map((p) => p.size),
        ),
      );
      ({ index: first, term } = this.node.propose(entries.map((entry) => entry.data)));
    } catch (error) {
      for (const proposal of batch) proposal.reject(error);
      return;
    }
    const deadline = Date.now() + this.options.requestTimeoutMs;
    groups.forEach((group, offset) => {
      const index = first + offset;
      // A proposal of an earlier term left at this index lost its place in the log.
      const replaced = this.proposals.get(index);
      if (replaced !== undefined) for (const writer of replaced.writers) writer.reject(lost(index));
      this.proposals.set(index, { term, deadline, commands: entries[offset]!.commands, writers: group });
    });
    this.kick();
  }

  /** Fails the writers whose proposals are past their deadline; their entries may still commit. */
  private expireProposals(): void {
    if (this.proposals.size === 0) return;
    const now = Date.now();
    for (const [index, proposal] of this.proposals) {
      if (proposal.deadline > now) continue;
      this.proposals.delete(index);
      const error = new RobustMQError(
        ErrorCode.Timeout,
        `meta write at index ${index} not committed within ${this.options.requestTimeoutMs} ms`,
      );
      for (const writer of proposal.writers) writer.reject(error);
    }
  }

  /** The size entries packed together, and the appends carrying them, keep under. */
  private messageBytes(): number {
    return Math.min(MAX_BATCH_ENTRY_BYTES, Math.floor(this.options.maxFrameBytes / 4));
  }

  /**
   * On the leader, every election timeout: a configured node missing from the group is added as a
   * learner, and a configured learner that has caught up with the commit index is made a voter,
   * one change at a time. Nodes are never removed here.
   */
  private reconcileMembers(): void {
    if (this.role !== 'leader' || this.failure !== null || this.closed) return;
    const { conf, progress, commit } = this.node.status();
    let change: ConfChange | null = null;
    const missing = this.configured.find((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
    if (missing !== undefined) change = { type: 'addLearner', nodeId: missing };
    else {
      const ready = conf.learners.find(
        (id) => this.configured.includes(id) && (progress.get(id)?.match ?? 0) >= commit,
      );
      if (ready !== undefined) change = { type: 'addVoter', nodeId: ready };
    }
    if (change === null) return;
    try {
      this.input(() => this.node.proposeConfChange(change));
      this.logger.info({ change }, 'meta group membership change proposed');
    } catch (error) {
      // The previous change is not committed yet, or a transfer is under way: next time.
      this.logger.debug({ err: error, change }, 'meta group membership change not proposed');
    }
  }

  // ---- reads ----------------------------------------------------------------------------------------

  /** Waits until this node has applied everything committed before the call (ReadIndex). */
  private async linearize(): Promise<void> {
    this.checkUsable();
    const deadline = Date.now() + this.options.requestTimeoutMs;
    for (;;) {
      this.checkUsable();
      if (this.leader === NONE) {
        await this.waitForLeaderChange(deadline);
        continue;
      }
      const context = `${this.id}.${++this.readSequence}`;
      const index = new Promise<number>((resolve) => this.reads.set(context, { resolve }));
      try {
        this.input(() => this.node.readIndex(context));
      } catch (error) {
        this.reads.delete(context);
        if (!isRobustMQError(error, ErrorCode.Unavailable)) throw error;
        await this.waitForLeaderChange(deadline);
        continue;
      }
      // The request or its answer may be lost (a new leader, a dropped message): ask again.
      const wait = Math.min(this.electionMs, Math.max(1, deadline - Date.now()));
      const point = await orNullAfter(index, wait);
      this.reads.delete(context);
      if (point === null) {
        if (Date.now() >= deadline) throw this.timeout('read');
        continue;
      }
      await this.waitApplied(point, deadline);
      return;
    }
  }

  private waitApplied(index: number, deadline: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    const applied = new Promise<void>((resolve, reject) => {
      this.appliedWaiters.push({ index, resolve, reject });
    });
    return withDeadline(applied, Math.max(1, deadline - Date.now()), () => this.timeout('apply'));
  }

  /** Resolves when the leader changes, or at the next election timeout; fails past `deadline`. */
  private async waitForLeaderChange(deadline: number): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw this.timeout('leader');
    const changed = new Promise<void>((resolve, reject) => this.leaderWaiters.push({ resolve, reject }));
    await orNullAfter(changed, Math.min(left, this.electionMs));
  }

  private timeout(what: string): RobustMQError {
    return new RobustMQError(
      ErrorCode.Unavailable,
      `meta group: no ${what} within ${this.options.requestTimeoutMs} ms (leader ${this.leader || 'unknown'})`,
    );
  }

  // ---- the driver loop ------------------------------------------------------------------------------

  /** Feeds the node one input, then makes sure its Ready gets handled. */
  private input(action: () => void): void {
    if (this.failure !== null || this.closed) return;
    action();
    this.kick();
  }

  private kick(): void {
    // With a Ready to handle, drive() always awaits, so `driving` is set before its finally runs.
    if (this.driving !== null || this.failure !== null || !this.node.hasReady()) return;
    this.driving = this.drive();
  }

  private async drain(): Promise<void> {
    while (this.driving !== null) await this.driving;
  }

  private async drive(): Promise<void> {
    try {
      while (this.failure === null && this.node.hasReady()) await this.handle(this.node.ready());
      this.flushOutbox();
    } catch (error) {
      this.fail(error);
    } finally {
      this.driving = null;
      // Nothing more comes from the calls stepped so far: the replies still waiting go empty.
      this.releaseReplies();
    }
  }

  /**
   * One Ready: persist, then send, then apply, then advance (see `Ready`). A leader whose term and
   * vote are already durable sends its appends and heartbeats first, writes its entries without
   * waiting for them to be durable and syncs them in the thread pool meanwhile (Raft thesis
   * §10.2.1): the Raft core counts the leader's own entries toward a commit only once that sync
   * reports them durable (`asyncLeaderPersistence`), so entries the followers hold commit without
   * it. Followers persist before they answer, and answer before they apply. A leader applies as
   * soon as a Ready commits, and keeps its other messages in the outbox until it next sends, so
   * commit news rides with the next entries.
   */
  private async handle(ready: Ready): Promise<void> {
    const durable = this.storage.hardState();
    const hard = ready.hardState;
    const voteChanged = hard !== undefined && (hard.term !== durable.term || hard.vote !== durable.vote);
    const leading = (ready.softState?.role ?? this.role) === 'leader';
    let later = ready.messages;
    const last = ready.entries[ready.entries.length - 1];
    // With no entries to write there is nothing to overlap: the messages wait in the outbox.
    const early =
      leading && last !== undefined && !voteChanged && ready.snapshot === undefined && !this.closed;
    if (early) {
      const sends = ready.messages.filter((m) => m.type === 'append' || m.type === 'heartbeat');
      later = ready.messages.filter((m) => m.type !== 'append' && m.type !== 'heartbeat');
      if (sends.length > 0) {
        this.outbox.push(...sends);
        this.flushOutbox();
        // The storage writes below block: let the RPC layer hand these to the kernel first.
        await flushTick();
      }
    }
    if (ready.snapshot !== undefined) {
      await this.storage.applySnapshot(ready.snapshot);
      const { index, term } = ready.snapshot.metadata;
      this.node.persisted(index, term);
    }
    if (last !== undefined) {
      await this.storage.append(ready.entries, !early);
      if (early) this.syncLog(last);
      else this.node.persisted(last.index, last.term);
    }
    // Only the term and vote must be durable; a lost commit index is learnt again.
    if (hard !== undefined) await this.storage.setHardState(hard, voteChanged);
    this.outbox.push(...later);
    if (!leading && this.outbox.length > 0) {
      this.flushOutbox();
      // Out before applying: a follower's answers are what the leader waits on to commit.
      await flushTick();
    }

    if (ready.snapshot !== undefined) this.restore(ready.snapshot.metadata.index, ready.snapshot.data);
    for (const entry of ready.committedEntries) this.apply(entry);
    if (leading && ready.committedEntries.length > 0) {
      // The writers just resolved usually write again at once: let them, so that their entries
      // and the commit news held in the outbox reach the followers in one call.
      await flushTick();
    }
    for (const state of ready.readStates) this.reads.get(state.context)?.resolve(state.index);
    if (ready.softState !== undefined) {
      this.leader = ready.softState.leader;
      this.role = ready.softState.role;
      for (const waiter of this.leaderWaiters.splice(0)) waiter.resolve();
    }
    this.node.advance();
    this.releaseApplied();
    this.maybeSnapshot();
    await this.compact();
  }

  /**
   * Makes the leader's log durable up to `entry` in the thread pool, then tells the Raft core. One
   * sync runs at a time; entries appended meanwhile wait for the next, which covers them all.
   */
  private syncLog(entry: { index: number; term: number }): void {
    this.unsynced = { index: entry.index, term: entry.term };
    if (this.syncing !== null) return;
    this.syncing = (async () => {
      try {
        while (this.unsynced !== null && this.failure === null) {
          const target = this.unsynced;
          this.unsynced = null;
          await this.storage.syncLog();
          this.input(() => this.node.persisted(target.index, target.term));
        }
      } catch (error) {
        this.fail(error);
      } finally {
        this.syncing = null;
      }
    })();
  }

  /** Steps messages from peers now. */
  private receive(messages: Message[]): void {
    this.input(() => this.stepAll(messages));
  }

  /** Sends what the outbox holds (nothing once closed). */
  private flushOutbox(): void {
    if (this.outbox.length === 0) return;
    let messages = this.outbox;
    this.outbox = [];
    if (this.closed) return;
    if (this.replies.size > 0) messages = this.answerCalls(messages);
    if (messages.length > 0) this.transport.send(messages);
  }

  /**
   * Hands each peer's messages (snapshots aside) to the oldest of its calls waiting for a reply;
   * returns the messages left to send in calls of their own.
   */
  private answerCalls(messages: Message[]): Message[] {
    const rest: Message[] = [];
    const answers = new Map<NodeId, Message[]>();
    for (const message of messages) {
      if (message.type === 'snapshot' || !this.replies.has(message.to)) rest.push(message);
      else {
        const batch = answers.get(message.to);
        if (batch === undefined) answers.set(message.to, [message]);
        else batch.push(message);
      }
    }
    for (const [to, batch] of answers) {
      const waiting = this.replies.get(to)!;
      const reply = waiting.shift()!;
      if (waiting.length === 0) this.replies.delete(to);
      reply({ messages: batch });
    }
    return rest;
  }

  /** Answers every waiting call with no messages. */
  private releaseReplies(): void {
    if (this.replies.size === 0) return;
    for (const waiting of this.replies.values()) for (const reply of waiting) reply({});
    this.replies.clear();
  }

  private stepAll(messages: readonly Message[]): void {
    for (const message of messages) {
      try {
        this.node.step(message);
      } catch (error) {
        this.logger.warn({ err: error, from: message.from, type: message.type }, 'raft message refused');
      }
    }
  }

  private restore(index: number, data: Uint8Array): void {
    if (index <= this.applied) return;
    this.machine.restore(data);
    this.applied = index;
    // Proposals at or below the snapshot were decided without this node seeing how.
    for (const [at, proposal] of this.proposals) {
      if (at > index) continue;
      this.proposals.delete(at);
      const unknown = new RobustMQError(
        ErrorCode.Unavailable,
        'meta write outcome unknown: leadership changed',
      );
      for (const writer of proposal.writers) writer.reject(unknown);
    }
    this.logger.info(
      { index, revision: this.machine.revision },
      'meta state restored from the leader snapshot',
    );
  }

  private apply(entry: Entry): void {
    if (entry.index <= this.applied) return;
    this.applied = entry.index;
    const proposal = this.proposals.get(entry.index);
    this.proposals.delete(entry.index);
    if (entry.type !== 'normal' || entry.data.length === 0) {
      for (const writer of proposal?.writers ?? []) writer.reject(lost(entry.index));
      return;
    }
    // The same index and term is the same entry (Raft's log matching): the one proposed here,
    // whose commands are at hand. Any other entry is decoded, and its index's writers lost.
    const ours = proposal !== undefined && proposal.term === entry.term;
    const commands = ours ? proposal.commands : decodeMetaEntry(entry.data);
    for (let place = 0; place < commands.length; place++) {
      const result = this.machine.apply(commands[place]!);
      if (result.ok) this.watches.publish(result.events);
      const writer = proposal?.writers[place];
      if (writer === undefined) continue;
      if (ours) writer.resolve({ index: entry.index, result });
      else writer.reject(lost(entry.index));
    }
  }

  private releaseApplied(): void {
    if (this.appliedWaiters.length === 0) return;
    const waiting: typeof this.appliedWaiters = [];
    for (const waiter of this.appliedWaiters) {
      if (waiter.index <= this.applied) waiter.resolve();
      else waiting.push(waiter);
    }
    this.appliedWaiters = waiting;
  }

  /**
   * Every `snapshotEntries` applied entries: encodes the state here, then lets the snapshot file be
   * written while Readys go on; the log is compacted (in the Ready loop, which owns the log file)
   * only once the file is durable.
   */
  private maybeSnapshot(): void {
    if (this.snapshotting !== null) return;
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (this.applied - snapshotIndex < this.options.snapshotEntries) return;
    const index = this.applied;
    const revision = this.machine.revision;
    const kept = Math.min(MAX_ENTRIES_KEPT, Math.floor(this.options.snapshotEntries / 2));
    const written = this.storage.createSnapshot(index, this.node.confStateAt(index), this.machine.snapshot());
    this.snapshotting = written.then(
      () => {
        this.snapshotting = null;
        this.compactTo = Math.max(snapshotIndex, index - kept);
        this.logger.info({ index, revision }, 'meta raft snapshot taken');
      },
      (error: unknown) => {
        this.snapshotting = null;
        this.fail(error);
      },
    );
  }

  /** Drops the log entries a durable snapshot covers, keeping a few for followers a little behind. */
  private async compact(): Promise<void> {
    const index = this.compactTo;
    if (index === null) return;
    this.compactTo = null;
    await this.storage.compact(index);
    this.logger.info({ index }, 'meta raft log compacted');
  }

  /** A storage write failed: the durable state is unknown, so this node stops taking part. */
  private fail(error: unknown): void {
    this.failure = new RobustMQError(
      ErrorCode.Unavailable,
      'meta raft storage write failed; restart the node',
      {
        cause: error,
      },
    );
    this.logger.error({ err: error }, 'meta raft storage write failed');
    clearInterval(this.ticker);
    this.rejectAll(this.failure);
  }

  private rejectAll(error: RobustMQError): void {
    for (const proposal of this.proposals.values()) {
      for (const writer of proposal.writers) writer.reject(error);
    }
    this.proposals.clear();
    for (const waiter of this.appliedWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this.leaderWaiters.splice(0)) waiter.reject(error);
  }

  private checkOpen(): void {
    if (this.closed) throw new RobustMQError(ErrorCode.Closed, 'meta store is closed');
  }

  private checkUsable(): void {
    this.checkOpen();
    if (this.failure !== null) throw this.failure;
  }
}

function lost(index: number): RobustMQError {
  return new RobustMQError(ErrorCode.Unavailable, `meta write at index ${index} lost: leadership changed`);
}

/** A proposal refused because this node no longer leads: the write may go to the new leader. */
function isLeadershipLost(error: unknown): boolean {
  return isRobustMQError(error, ErrorCode.Unavailable) && error.message.startsWith('raft:');
}

/** The results of an applied command, or its failure as the caller's error. */
function outcomeResults({ result }: ApplyOutcome): MetaOpResult[] {
  if (result.ok) return result.results;
  const { code, message } = applyError(result);
  throw new RobustMQError(code as ErrorCode, message);
}

function applyError(result: Extract<MetaApplyResult, { ok: false }>): { code: string; message: string } {
  if (result.code === ErrorCode.Conflict) {
    return {
      code: ErrorCode.Conflict,
      message: `meta key ${result.key}: expected revision ${result.expected}, found ${result.actual}`,
    };
  }
  return { code: ErrorCode.InvalidArgument, message: result.message };
}

/** `promise`, or a rejection with `onTimeout()` after `ms`. */
function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => RobustMQError): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms);
    promise.finally(() => clearTimeout(timer)).then(resolve, reject);
  });
}

/** Resolves once the `process.nextTick` queue has run, where the RPC layer writes queued frames. */
function flushTick(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

/** `promise`, or null after `ms`. */
function orNullAfter<T>(promise: Promise<T>, ms: number): Promise<T | null> {
  return new Promise<T | null>((resolve, reject) => {
    const timer = setTimeout(() => resolve(null), ms);
    promise.finally(() => clearTimeout(timer)).then(resolve, reject);
  });
}

function copyEntry(entry: MetaEntry): MetaEntry {
  return { ...entry, value: entry.value.slice() };
}
