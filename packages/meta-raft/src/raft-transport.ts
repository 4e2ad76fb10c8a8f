// Raft messages between the meta nodes, over @robustmq/rpc.
import type { Logger } from '@robustmq/core';
import type { RpcClient } from '@robustmq/rpc';
import { connectRpc } from '@robustmq/rpc';
import type { Message, NodeId } from './raft/types.js';

/** RPC method carrying a batch of Raft messages to one node. */
export const RAFT_MESSAGES_METHOD = 'meta.raft';
/** RPC method a follower uses to hand a write to the leader. */
export const META_PROPOSE_METHOD = 'meta.propose';

/** A member of the meta group and the address of its RPC server. */
export interface RaftMetaPeer {
  id: NodeId;
  host: string;
  port: number;
}

/** What a delivery attempt tells the Raft node. */
export interface DeliveryReport {
  unreachable(to: NodeId): void;
  snapshotDelivered(to: NodeId, ok: boolean): void;
}

/**
 * One RPC client per peer, connected lazily and kept. Messages to a peer in one Ready go in one
 * call, so they arrive in order; a failed call marks the peer unreachable and Raft resends.
 */
export class RaftTransport {
  private readonly clients = new Map<NodeId, RpcClient>();

  constructor(
    private readonly peers: ReadonlyMap<NodeId, RaftMetaPeer>,
    private readonly deadlineMs: number,
    private readonly report: DeliveryReport,
    private readonly logger: Logger,
  ) {}

  /** The client for `id`, or undefined for an unknown node. */
  client(id: NodeId): RpcClient | undefined {
    let client = this.clients.get(id);
    if (client === undefined) {
      const peer = this.peers.get(id);
      if (peer === undefined) return undefined;
      client = connectRpc({ host: peer.host, port: peer.port, logger: this.logger });
      this.clients.set(id, client);
    }
    return client;
  }

  /** Sends `messages`, grouped by destination, without waiting. */
  send(messages: readonly Message[]): void {
    const byPeer = new Map<NodeId, Message[]>();
    for (const message of messages) {
      const batch = byPeer.get(message.to);
      if (batch === undefined) byPeer.set(message.to, [message]);
      else batch.push(message);
    }
    for (const [to, batch] of byPeer) {
      const client = this.client(to);
      if (client === undefined) {
        this.logger.warn({ to }, 'raft message for a node with no known address dropped');
        continue;
      }
      const hasSnapshot = batch.some((message) => message.type === 'snapshot');
      client.call(RAFT_MESSAGES_METHOD, { messages: batch }, { deadlineMs: this.deadlineMs }).then(
        () => {
          if (hasSnapshot) this.report.snapshotDelivered(to, true);
        },
        (error: unknown) => {
          this.logger.debug({ err: error, to }, 'raft messages not delivered');
          if (hasSnapshot) this.report.snapshotDelivered(to, false);
          this.report.unreachable(to);
        },
      );
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.clients.values()].map((client) => client.close()));
    this.clients.clear();
  }
}
