// Raft messages between the meta nodes, over @robustmq/rpc.
import type { ConnectionOptions } from 'node:tls';
import type { Logger } from '@robustmq/core';
import { ErrorCode, RobustMQError } from '@robustmq/core';
import type { RpcClient } from '@robustmq/rpc';
import { connectRpc } from '@robustmq/rpc';
import type { Message, NodeId, SnapshotMessage } from './raft/types.js';

/** RPC method carrying a batch of Raft messages to one node. */
export const RAFT_MESSAGES_METHOD = 'meta.raft';
/**
 * What a node replies to a {@link RAFT_MESSAGES_METHOD} call: the messages it has for the caller
 * once it has handled the call's (its answers, made durable first where Raft says so), if any
 * came soon enough; others go in calls of their own.
 */
export interface RaftMessagesReply {
  messages?: Message[];
}

/** RPC method a follower uses to hand a write to the leader. */
export const META_PROPOSE_METHOD = 'meta.propose';
/** RPC method answering who is in the group, for a node with empty storage deciding to join it. */
export const RAFT_GROUP_METHOD = 'meta.raft.group';

/** A member's view of the group's membership. */
export interface GroupView {
  voters: NodeId[];
  learners: NodeId[];
  leader: NodeId;
}

/**
 * Asks the other peers, each for at most `timeoutMs`, who is in the group; the first answer from a
 * member that knows a membership, or null when none does (the group is being founded now).
 */
export async function probeGroup(
  peers: readonly RaftMetaPeer[],
  timeoutMs: number,
  logger: Logger,
  tls?: ConnectionOptions,
): Promise<GroupView | null> {
  const answers = await Promise.all(
    peers.map(async (peer) => {
      const client = connectRpc({
        host: peer.host,
        port: peer.port,
        logger,
        ...(tls === undefined ? {} : { tls }),
      });
      try {
        return await client.call<GroupView>(RAFT_GROUP_METHOD, {}, { deadlineMs: timeoutMs });
      } catch {
        return null;
      } finally {
        await client.close();
      }
    }),
  );
  return answers.find((view) => view !== null && view.voters.length > 0) ?? null;
}

/** RPC method carrying one piece of a snapshot message too large for one frame. */
export const RAFT_SNAPSHOT_CHUNK_METHOD = 'meta.raft.snapshot';

/**
 * One piece of a snapshot message. Pieces go one at a time, in order; the last carries the
 * message itself (its snapshot data emptied), which the receiver steps once it has every byte.
 */
export interface SnapshotChunk {
  /** Which snapshot this piece belongs to: the sender, its term and the snapshot's index. */
  from: NodeId;
  term: number;
  index: number;
  /** Where `data` goes in the snapshot data, and the data's full length. */
  offset: number;
  total: number;
  data: Uint8Array;
  /** On the last piece. */
  message?: SnapshotMessage;
}

/** A member of the meta group and the address of its RPC server. */
export interface RaftMetaPeer {
  id: NodeId;
  host: string;
  port: number;
}

/** What a delivery attempt tells the Raft node. */
export interface DeliveryReport {
  unreachable(to: NodeId): void;
  /** Messages a peer sent back as the reply to a call (its answers to the messages in it). */
  received(messages: Message[]): void;
  snapshotDelivered(to: NodeId, ok: boolean): void;
}

/**
 * One RPC client per peer, connected lazily and kept. Messages to a peer in one Ready go in one
 * call, so they arrive in order; a failed call marks the peer unreachable and Raft resends.
 */
export class RaftTransport {
  private readonly clients = new Map<NodeId, RpcClient>();

  /**
   * @param chunkBytes snapshot data above this goes in pieces of this size, each in its own call,
   *   so a state larger than the RPC frame limit still reaches a follower that needs it
   */
  constructor(
    private readonly peers: ReadonlyMap<NodeId, RaftMetaPeer>,
    private readonly deadlineMs: number,
    private readonly report: DeliveryReport,
    private readonly logger: Logger,
    private readonly chunkBytes: number,
    private readonly maxFrameBytes?: number,
    private readonly tls?: ConnectionOptions,
  ) {}

  /** The client for `id`, or undefined for an unknown node. */
  client(id: NodeId): RpcClient | undefined {
    let client = this.clients.get(id);
    if (client === undefined) {
      const peer = this.peers.get(id);
      if (peer === undefined) return undefined;
      client = connectRpc({
        host: peer.host,
        port: peer.port,
        logger: this.logger,
        ...(this.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.maxFrameBytes }),
        ...(this.tls === undefined ? {} : { tls: this.tls }),
      });
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
    for (const [to, all] of byPeer) {
      const client = this.client(to);
      if (client === undefined) {
        this.logger.warn({ to }, 'raft message for a node with no known address dropped');
        continue;
      }
      const large = all.filter(
        (message): message is SnapshotMessage =>
          message.type === 'snapshot' && message.snapshot.data.length > this.chunkBytes,
      );
      for (const message of large) this.sendInChunks(client, message);
      const rest =
        large.length === 0 ? all : all.filter((message) => !large.includes(message as SnapshotMessage));
      for (const batch of this.split(rest)) this.sendBatch(client, to, batch);
    }
  }

  /** Cuts a peer's messages into calls of about `chunkBytes` each, keeping their order. */
  private split(messages: readonly Message[]): Message[][] {
    const batches: Message[][] = [];
    let bytes = Infinity;
    for (const message of messages) {
      const size = approximateBytes(message);
      if (bytes + size > this.chunkBytes) {
        batches.push([]);
        bytes = 0;
      }
      batches[batches.length - 1]!.push(message);
      bytes += size;
    }
    return batches;
  }

  private sendBatch(client: RpcClient, to: NodeId, batch: Message[]): void {
    const hasSnapshot = batch.some((message) => message.type === 'snapshot');
    client
      .call<RaftMessagesReply>(RAFT_MESSAGES_METHOD, { messages: batch }, { deadlineMs: this.deadlineMs })
      .then(
        (reply) => {
          if (hasSnapshot) this.report.snapshotDelivered(to, true);
          const answers = reply?.messages;
          if (Array.isArray(answers) && answers.length > 0) this.report.received(answers);
        },
        (error: unknown) => {
          this.logger.debug({ err: error, to }, 'raft messages not delivered');
          if (hasSnapshot) this.report.snapshotDelivered(to, false);
          this.report.unreachable(to);
        },
      );
  }

  /** Sends a large snapshot message piece by piece, then reports how its delivery went. */
  private sendInChunks(client: RpcClient, message: SnapshotMessage): void {
    const { data, metadata } = message.snapshot;
    const bare: SnapshotMessage = { ...message, snapshot: { metadata, data: new Uint8Array(0) } };
    const send = async (): Promise<void> => {
      for (let offset = 0; offset < data.length; offset += this.chunkBytes) {
        const end = Math.min(data.length, offset + this.chunkBytes);
        const chunk: SnapshotChunk = {
          from: message.from,
          term: message.term,
          index: metadata.index,
          offset,
          total: data.length,
          data: data.subarray(offset, end),
          ...(end === data.length ? { message: bare } : {}),
        };
        await client.call(RAFT_SNAPSHOT_CHUNK_METHOD, chunk, { deadlineMs: this.deadlineMs });
      }
    };
    this.logger.info(
      { to: message.to, index: metadata.index, bytes: data.length, chunkBytes: this.chunkBytes },
      'sending a snapshot in pieces',
    );
    send().then(
      () => this.report.snapshotDelivered(message.to, true),
      (error: unknown) => {
        this.logger.warn({ err: error, to: message.to }, 'snapshot not delivered');
        this.report.snapshotDelivered(message.to, false);
        this.report.unreachable(message.to);
      },
    );
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.clients.values()].map((client) => client.close()));
    this.clients.clear();
  }
}

/** About how many bytes a message takes on the wire: its payloads and a little for the rest. */
function approximateBytes(message: Message): number {
  if (message.type === 'snapshot') return 64 + message.snapshot.data.length;
  if (message.type !== 'append') return 64;
  let bytes = 64;
  for (const entry of message.entries) bytes += 32 + entry.data.length;
  return bytes;
}

/**
 * Puts together the snapshot pieces from the leaders, one snapshot per sender at a time. A piece
 * that does not continue the snapshot being assembled is refused (the sender reports the snapshot
 * lost and Raft sends it again later); a first piece starts over.
 */
export class SnapshotAssembler {
  private readonly pending = new Map<
    NodeId,
    { term: number; index: number; data: Uint8Array; received: number }
  >();

  /** Takes a piece; returns the whole message once the last one is in. */
  add(chunk: SnapshotChunk): SnapshotMessage | null {
    const { from, term, index, offset, total, data } = chunk;
    let current = this.pending.get(from);
    if (offset === 0) {
      current = { term, index, data: new Uint8Array(total), received: 0 };
      this.pending.set(from, current);
    }
    if (
      current === undefined ||
      current.term !== term ||
      current.index !== index ||
      current.data.length !== total ||
      current.received !== offset ||
      offset + data.length > total
    ) {
      this.pending.delete(from);
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `snapshot piece at ${offset} of ${total} from node ${from} does not continue the snapshot being received`,
      );
    }
    current.data.set(data, offset);
    current.received += data.length;
    if (current.received < total) return null;
    this.pending.delete(from);
    if (chunk.message === undefined) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `snapshot from node ${from} ended without its message`,
      );
    }
    return { ...chunk.message, snapshot: { metadata: chunk.message.snapshot.metadata, data: current.data } };
  }
}
