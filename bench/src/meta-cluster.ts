/**
 * The meta suite's Raft group: three node processes on free loopback ports, each with its own
 * data directory, asked over IPC. Every process is stopped by `stop()`, and killed if the suite
 * exits without it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RaftMetaPeer } from '@robustmq/meta-raft';
import { freePort, HOST } from './mqtt-brokers.js';
import type { FromNode, ToNode } from './meta-node-protocol.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'meta-node-worker.js');
const ANSWER_TIMEOUT_MS = 60_000;
const LEADER_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5000;

type Answer = Exclude<FromNode, { type: 'error' }>;

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** One node process. */
export class MetaNode {
  private readonly waiting = new Map<string, (answer: Answer) => void>();
  private failure: Error | null = null;
  private readonly exited: Promise<void>;

  constructor(
    readonly id: number,
    private readonly child: ChildProcess,
  ) {
    running.add(child);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => running.delete(child));
    child.on('message', (message: FromNode) => {
      if (message.type === 'error') {
        this.failure ??= new Error(`meta node ${id}: ${message.message}`);
        return;
      }
      const resolve = this.waiting.get(message.type);
      this.waiting.delete(message.type);
      resolve?.(message);
    });
    child.once('exit', (code, signal) => {
      this.failure ??= new Error(`meta node ${id} exited (${signal ?? code})`);
    });
  }

  /** Sends a message and waits for the answer of the given type. */
  async ask<T extends Answer['type']>(message: ToNode, answer: T): Promise<Extract<Answer, { type: T }>> {
    const reply = new Promise<Answer>((resolve, reject) => {
      const done = (): void => {
        clearInterval(poll);
        clearTimeout(timer);
        this.waiting.delete(answer);
      };
      const timer = setTimeout(() => {
        done();
        reject(this.failure ?? new Error(`meta node ${this.id} gave no ${answer} in time`));
      }, ANSWER_TIMEOUT_MS);
      const poll = setInterval(() => {
        if (this.failure === null) return;
        done();
        reject(this.failure);
      }, 50);
      this.waiting.set(answer, (value) => {
        done();
        resolve(value);
      });
    });
    if (this.child.connected) this.child.send(message);
    return (await reply) as Extract<Answer, { type: T }>;
  }

  /** Closes the store cleanly, or kills the process when it does not go in time. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    if (this.child.connected && this.failure === null) {
      await this.ask({ type: 'close' }, 'closed').catch(() => this.child.kill('SIGTERM'));
    } else {
      this.child.kill('SIGTERM');
    }
    await this.exited;
    clearTimeout(timer);
  }
}

export class MetaCluster {
  private constructor(readonly nodes: readonly MetaNode[]) {}

  /**
   * Starts `size` nodes with data under `root`, all founding one group; with `cpuProfDir`, each
   * runs under `--cpu-prof` and leaves its profile there.
   */
  static async start(root: string, size: number, cpuProfDir: string | null = null): Promise<MetaCluster> {
    const peers: RaftMetaPeer[] = [];
    for (let id = 1; id <= size; id++) peers.push({ id, host: HOST, port: await freePort() });
    const execArgv = (id: number): string[] =>
      cpuProfDir === null
        ? []
        : ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`, `--cpu-prof-name=meta-node-${id}.cpuprofile`];
    const nodes = peers.map(
      (peer) =>
        new MetaNode(
          peer.id,
          fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: execArgv(peer.id) }),
        ),
    );
    const cluster = new MetaCluster(nodes);
    try {
      await Promise.all(
        nodes.map((node) =>
          node.ask({ type: 'open', id: node.id, peers, dir: join(root, `node-${node.id}`) }, 'opened'),
        ),
      );
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** The node that leads, once every node agrees on one. */
  async leader(): Promise<MetaNode> {
    const deadline = Date.now() + LEADER_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(this.nodes.map((node) => node.ask({ type: 'status' }, 'status')));
      const leaderId = statuses[0]?.leader ?? 0;
      const agreed = leaderId !== 0 && statuses.every((status) => status.leader === leaderId);
      const leader = this.nodes.find((node) => node.id === leaderId);
      if (agreed && leader !== undefined) return leader;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no meta leader within ${LEADER_TIMEOUT_MS / 1000} s`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
  }
}
