// The world an interaction script drives: Raft nodes with in-memory storage, a message queue between
// them that the script delivers by hand, and a trivial state machine (the list of applied commands).
import type { Logger } from '@robustmq/core';
import type { ConfChange, Message, NodeId, RaftOptions, Ready } from '../../../src/index.js';
import { confState, formatConfState, MemoryRaftStorage, RawNode } from '../../../src/index.js';
import { formatEntry, formatMessage, formatReady } from './format.js';

export interface CommandArgs {
  /** Arguments without `=`, in order; a parenthesized group is one argument. */
  positional: string[];
  /** `key=value` arguments; `key=(a b)` gives `a b`. */
  named: Map<string, string>;
}

interface EnvNode {
  id: NodeId;
  storage: MemoryRaftStorage;
  raw: RawNode;
  options: Omit<RaftOptions, 'id' | 'storage' | 'applied'>;
  /** The state machine: every applied command, in order. */
  applied: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ids = (text: string | undefined): NodeId[] =>
  text === undefined || text.trim() === ''
    ? []
    : text
        .trim()
        .split(/[\s,]+/)
        .map(Number);

const bool = (text: string | undefined, fallback: boolean): boolean =>
  text === undefined ? fallback : text === 'true';

export class InteractionEnv {
  private readonly nodes = new Map<NodeId, EnvNode>();
  private queue: Message[] = [];
  /** Node id to partition group; nodes in different groups cannot talk. */
  private groups: Map<NodeId, number> | null = null;
  private out: string[] = [];
  private indent = '';

  /** Runs one command and returns what it printed. */
  run(command: string, args: CommandArgs): string {
    this.out = [];
    this.indent = '';
    try {
      this.dispatch(command, args);
    } catch (error) {
      this.print(`error: ${error instanceof Error ? error.message : String(error)}`);
    }
    return this.out.length === 0 ? 'ok' : this.out.join('\n');
  }

  private dispatch(command: string, args: CommandArgs): void {
    const { positional, named } = args;
    const id = (at = 0): NodeId => {
      const value = Number(positional[at]);
      if (!this.nodes.has(value)) throw new Error(`no node ${positional[at]}`);
      return value;
    };
    const targets = (): NodeId[] => (positional.length > 0 ? positional.map(Number) : [...this.nodes.keys()]);
    switch (command) {
      case 'add-nodes':
        return this.addNodes(Number(positional[0]), named);
      case 'campaign':
        return this.node(id()).raw.campaign();
      case 'tick':
        return this.tick(id(), Number(positional[1] ?? 1));
      case 'tick-election':
        return this.tick(id(), this.node(id()).options.electionTick ?? 10);
      case 'tick-heartbeat':
        return this.tick(id(), this.node(id()).options.heartbeatTick ?? 1);
      case 'propose': {
        const data = positional.slice(1).map((value) => encoder.encode(value));
        const at = this.node(id()).raw.propose(data);
        return this.print(`proposed at ${at.term}/${at.index}`);
      }
      case 'propose-conf-change': {
        const at = this.node(id()).raw.proposeConfChange(parseConfChange(positional[1] ?? ''));
        return this.print(`proposed at ${at.term}/${at.index}`);
      }
      case 'process-ready':
        for (const target of targets()) this.processReady(target);
        return;
      case 'deliver-msgs':
        this.deliver(targets());
        return;
      case 'drop-msgs':
        return this.drop(targets());
      case 'stabilize':
        return this.stabilize(targets());
      case 'raft-state':
        for (const node of this.nodes.values()) this.print(this.stateLine(node));
        return;
      case 'status':
        return this.status(id());
      case 'raft-log':
        return this.raftLog(id());
      case 'applied':
        return this.print(`${id()}: ${JSON.stringify(this.node(id()).applied)}`);
      case 'compact':
        return this.compact(id(), Number(positional[1]));
      case 'transfer-leadership':
        return this.node(id()).raw.transferLeader(Number(positional[1]));
      case 'read-index':
        return this.node(id()).raw.readIndex(positional[1] ?? '');
      case 'partition':
        this.groups = new Map();
        positional.forEach((group, index) => {
          for (const member of ids(group)) this.groups!.set(member, index);
        });
        return;
      case 'heal':
        this.groups = null;
        return;
      case 'report-unreachable':
        return this.node(id()).raw.reportUnreachable(Number(positional[1]));
      case 'restart':
        return this.restart(id());
      default:
        throw new Error(`unknown command ${command}`);
    }
  }

  private print(line: string): void {
    for (const part of line.split('\n')) this.out.push(this.indent + part);
  }

  private node(id: NodeId): EnvNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  private logger(): Logger {
    const at =
      (level: string) =>
      (fieldsOrMessage: object | string, message?: string): void => {
        const fields =
          typeof fieldsOrMessage === 'string' ? {} : (fieldsOrMessage as Record<string, unknown>);
        const text = (typeof fieldsOrMessage === 'string' ? fieldsOrMessage : (message ?? '')).replace(
          /^raft /,
          '',
        );
        const { raft, ...rest } = fields;
        const extra = Object.entries(rest).map(
          ([key, value]) => `${key}=${Array.isArray(value) ? `(${value.join(' ')})` : String(value)}`,
        );
        this.print([level.toUpperCase(), String(raft), text, ...extra].join(' '));
      };
    const logger: Logger = {
      trace: () => {},
      debug: () => {},
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      child: () => logger,
    };
    return logger;
  }

  private addNodes(count: number, named: Map<string, string>): void {
    const voters = ids(named.get('voters'));
    const learners = ids(named.get('learners'));
    const options: EnvNode['options'] = {
      random: () => 0,
      electionTick: Number(named.get('election') ?? 10),
      heartbeatTick: Number(named.get('heartbeat') ?? 1),
      preVote: bool(named.get('prevote'), false),
      checkQuorum: bool(named.get('checkquorum'), false),
      readOnly: named.get('read-only') === 'lease' ? 'lease' : 'safe',
      maxSizePerMsg: Number(named.get('max-size-per-msg') ?? 1024 * 1024),
      maxInflightMsgs: Number(named.get('max-inflight') ?? 256),
    };
    const first = Math.max(0, ...this.nodes.keys()) + 1;
    for (let id = first; id < first + count; id++) {
      const storage =
        voters.length > 0
          ? MemoryRaftStorage.bootstrap(confState(voters, learners), encoder.encode('[]'))
          : new MemoryRaftStorage();
      const node: EnvNode = { id, storage, options, applied: [], raw: this.newRawNode(id, storage, options) };
      this.nodes.set(id, node);
      this.print(this.stateLine(node));
    }
  }

  private newRawNode(id: NodeId, storage: MemoryRaftStorage, options: EnvNode['options']): RawNode {
    return new RawNode({
      ...options,
      id,
      storage,
      applied: storage.snapshot().metadata.index,
      logger: this.logger(),
    });
  }

  private restart(id: NodeId): void {
    const node = this.node(id);
    const snapshot = node.storage.snapshot();
    node.applied =
      snapshot.metadata.index === 0 ? [] : (JSON.parse(decoder.decode(snapshot.data)) as string[]);
    node.raw = this.newRawNode(id, node.storage, node.options);
    this.print(this.stateLine(node));
  }

  private tick(id: NodeId, count: number): void {
    for (let i = 0; i < count; i++) this.node(id).raw.tick();
  }

  private processReady(id: NodeId): boolean {
    const node = this.node(id);
    if (!node.raw.hasReady()) return false;
    const ready: Ready = node.raw.ready();
    this.print(`> ${id} handling Ready`);
    this.indent = '  ';
    for (const line of formatReady(ready)) this.print(line);
    // Persist: snapshot, entries, hard state; then send; then apply.
    if (ready.snapshot !== undefined) node.storage.applySnapshot(ready.snapshot);
    node.storage.append(ready.entries);
    if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
    this.queue.push(...ready.messages);
    if (ready.snapshot !== undefined)
      node.applied = JSON.parse(decoder.decode(ready.snapshot.data)) as string[];
    for (const entry of ready.committedEntries) {
      if (entry.type === 'normal' && entry.data.byteLength > 0) node.applied.push(decoder.decode(entry.data));
    }
    node.raw.advance();
    this.indent = '';
    return true;
  }

  private cut(m: Message): boolean {
    return this.groups !== null && this.groups.get(m.from) !== this.groups.get(m.to);
  }

  private deliver(targets: NodeId[]): boolean {
    const wanted = new Set(targets);
    const now = this.queue.filter((m) => wanted.has(m.to));
    this.queue = this.queue.filter((m) => !wanted.has(m.to));
    for (const m of now) {
      const node = this.nodes.get(m.to);
      if (node === undefined || this.cut(m)) {
        this.print(`${formatMessage(m)} dropped`);
        if (m.type === 'snapshot') this.nodes.get(m.from)?.raw.reportSnapshot(m.to, false);
        continue;
      }
      this.print(formatMessage(m));
      this.indent = '  ';
      node.raw.step(m);
      if (m.type === 'snapshot') this.nodes.get(m.from)?.raw.reportSnapshot(m.to, true);
      this.indent = '';
    }
    return now.length > 0;
  }

  private drop(targets: NodeId[]): void {
    const wanted = new Set(targets);
    for (const m of this.queue.filter((msg) => wanted.has(msg.to))) {
      this.print(`${formatMessage(m)} dropped`);
      if (m.type === 'snapshot') this.nodes.get(m.from)?.raw.reportSnapshot(m.to, false);
    }
    this.queue = this.queue.filter((m) => !wanted.has(m.to));
  }

  private stabilize(targets: NodeId[]): void {
    for (let round = 0; round < 1000; round++) {
      let busy = false;
      for (const id of targets) if (this.processReady(id)) busy = true;
      for (const id of targets) if (this.deliver([id])) busy = true;
      if (!busy) return;
    }
    throw new Error('stabilize did not settle in 1000 rounds');
  }

  private stateLine(node: EnvNode): string {
    const s = node.raw.status();
    return `${s.id}: ${s.role} term=${s.term} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastTerm}/${s.lastIndex} ${formatConfState(s.conf)}`;
  }

  private status(id: NodeId): void {
    const node = this.node(id);
    const s = node.raw.status();
    this.print(this.stateLine(node));
    for (const [peer, p] of s.progress) {
      const flags = [p.isLearner ? 'learner' : '', p.inflight > 0 ? `inflight=${p.inflight}` : '']
        .filter(Boolean)
        .join(' ');
      this.print(`  ${peer}: ${p.state} match=${p.match} next=${p.next}${flags !== '' ? ` ${flags}` : ''}`);
    }
  }

  private raftLog(id: NodeId): void {
    const s = this.node(id).raw.status();
    const entries = this.node(id).raw.entries(s.firstIndex, s.lastIndex + 1) ?? [];
    if (entries.length === 0)
      this.print(`log is empty: first index=${s.firstIndex}, last index=${s.lastIndex}`);
    for (const entry of entries) this.print(formatEntry(entry));
  }

  private compact(id: NodeId, index: number): void {
    const node = this.node(id);
    const status = node.raw.status();
    if (index > status.applied) throw new Error(`cannot compact to ${index}: applied is ${status.applied}`);
    // The state machine at `index`: replay what is applied up to it.
    const snapshotAt = node.storage.snapshot();
    const base =
      snapshotAt.metadata.index === 0 ? [] : (JSON.parse(decoder.decode(snapshotAt.data)) as string[]);
    const entries = node.storage.entries(snapshotAt.metadata.index + 1, index + 1);
    const state = [...base];
    for (const entry of entries) {
      if (entry.type === 'normal' && entry.data.byteLength > 0) state.push(decoder.decode(entry.data));
    }
    node.storage.createSnapshot(index, node.raw.confStateAt(index), encoder.encode(JSON.stringify(state)));
    node.storage.compact(index);
    this.raftLog(id);
  }
}

function parseConfChange(text: string): ConfChange {
  const nodeId = Number(text.slice(1));
  if (text.startsWith('v')) return { type: 'addVoter', nodeId };
  if (text.startsWith('l')) return { type: 'addLearner', nodeId };
  if (text.startsWith('r')) return { type: 'removeNode', nodeId };
  throw new Error(`unknown membership change ${text} (want v<id>, l<id> or r<id>)`);
}
