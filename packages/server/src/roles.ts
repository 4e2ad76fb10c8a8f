import { REMOTE_STORAGE_ENGINE, type NodeConfig } from './config/schema.js';
import { StartupError } from './startup-error.js';

/**
 * What a node does, from its roles:
 * - `standalone` (meta, broker, journal): everything in one process, calling each other in-process.
 *   With `[cluster]`, the node is also a member of the meta Raft group.
 * - `journal`: a journal node, serving its storage engine to brokers over the internal RPC port.
 * - `broker` (meta, broker): protocols and meta here, storage on a journal node through
 *   `@robustmq/journal/remote`.
 * - `meta` (meta, with `[cluster]`): a member of the meta Raft group and nothing else.
 * - `meta-journal` (meta, journal, with `[cluster]`): a meta group member that also serves its
 *   storage to brokers, both on the one internal RPC port.
 * - `remote-broker` (broker, with `[cluster]`): protocols here, meta on the meta nodes through
 *   `@robustmq/meta-raft/remote`, storage on a journal node through `@robustmq/journal/remote`.
 * - `remote-broker-journal` (broker, journal, with `[cluster]`): protocols and storage here, meta
 *   on the meta nodes; the storage is also served to other brokers on the internal RPC port.
 * Without `[cluster]` the meta role is a local store on the node, and a broker needs it.
 */
export type NodeMode =
  'standalone' | 'journal' | 'broker' | 'meta' | 'meta-journal' | 'remote-broker' | 'remote-broker-journal';

/** A member of the meta Raft group, from `cluster.meta_nodes`. */
export interface MetaNode {
  id: number;
  host: string;
  port: number;
}

export function nodeMode(config: NodeConfig): NodeMode {
  const roles = new Set(config.roles);
  const remote = config.storage.engine === REMOTE_STORAGE_ENGINE;
  const clustered = config.cluster !== undefined;
  const list = `roles = [${config.roles.join(', ')}]`;
  const noProtocols = () => {
    if (config.protocols !== undefined && config.protocols.length > 0) {
      throw new StartupError(`${list} runs no protocols: protocols need the broker role`);
    }
  };
  const localStorage = () => {
    if (remote) {
      throw new StartupError(
        `${list} stores locally: storage.engine cannot be ${REMOTE_STORAGE_ENGINE} with the journal role`,
      );
    }
  };
  if (roles.has('meta') && clustered) checkMetaMember(config);
  if (roles.size === 3) {
    localStorage();
    return 'standalone';
  }
  if (roles.size === 1 && roles.has('journal')) {
    if (remote) {
      throw new StartupError(
        `${list} serves its own storage: storage.engine cannot be ${REMOTE_STORAGE_ENGINE}`,
      );
    }
    noProtocols();
    return 'journal';
  }
  if (roles.size === 2 && roles.has('meta') && roles.has('broker')) {
    if (!remote) {
      throw new StartupError(
        `${list} keeps no storage of its own: set storage.engine = "${REMOTE_STORAGE_ENGINE}" and storage.address = "<journal node>:1228"`,
      );
    }
    return 'broker';
  }
  if (roles.has('broker') && !roles.has('meta')) {
    if (!clustered) {
      throw new StartupError(
        `${list} keeps its meta data on the meta nodes: set [cluster] meta_nodes = ["<id>@<host>:<rpc port>", ...]`,
      );
    }
    metaNodes(config); // checks the list
    if (roles.size === 1) {
      if (!remote) {
        throw new StartupError(
          `${list} keeps no storage of its own: set storage.engine = "${REMOTE_STORAGE_ENGINE}" and storage.address = "<journal node>:1228"`,
        );
      }
      return 'remote-broker';
    }
    localStorage();
    return 'remote-broker-journal';
  }
  if (roles.has('meta') && !roles.has('broker')) {
    if (!clustered) {
      throw new StartupError(
        `${list} runs the meta group without brokers: set [cluster] meta_nodes = ["<id>@<host>:<rpc port>", ...] with this node's node_id among them`,
      );
    }
    noProtocols();
    if (roles.size === 1) return 'meta';
    localStorage();
    return 'meta-journal';
  }
  throw new StartupError(
    `${list} is not a supported role set: use meta,broker,journal (standalone, or a cluster node with [cluster]), ` +
      'journal (a journal node), meta,broker (brokers on a journal node), or with [cluster] meta or meta,journal ' +
      '(meta group members) and broker or broker,journal (brokers using the meta group over the network)',
  );
}

/** Checks that this node, having the meta role, is among `cluster.meta_nodes`. */
function checkMetaMember(config: NodeConfig): void {
  const nodes = metaNodes(config);
  if (!nodes.some((node) => node.id === config.node_id)) {
    throw new StartupError(
      `cluster.meta_nodes: node_id ${config.node_id} is not among the meta nodes (${nodes.map((node) => node.id).join(', ')}); set node_id to this node's id`,
    );
  }
}

/**
 * The meta group's members from `cluster.meta_nodes`. A node with the meta role is one of them
 * (`nodeMode` checks); a broker without it talks to them.
 */
export function metaNodes(config: NodeConfig): MetaNode[] {
  const entries = config.cluster?.meta_nodes ?? [];
  const nodes = entries.map((entry) => {
    const at = entry.indexOf('@');
    const colon = entry.lastIndexOf(':');
    const port = Number(entry.slice(colon + 1));
    if (port < 1 || port > 65535)
      throw new StartupError(`cluster.meta_nodes: ${entry}: port must be 1 to 65535`);
    return { id: Number(entry.slice(0, at)), host: entry.slice(at + 1, colon), port };
  });
  return nodes;
}
