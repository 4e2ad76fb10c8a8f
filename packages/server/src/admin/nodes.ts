import type { MetaStore } from '@robustmq/core';

/** A node as it registers itself in the meta service under `/cluster/nodes/<id>` when it starts. */
export interface NodeRecord {
  id: number;
  roles: string[];
  /** Where other nodes reach its internal RPC port, or null when it serves none. */
  rpcAddress: string | null;
  version: string;
  startedAt: number;
}

const NODES_PREFIX = '/cluster/nodes/';

/** Records this node in the meta service, replacing what an earlier start wrote. */
export async function registerNode(meta: MetaStore, node: NodeRecord): Promise<void> {
  await meta.put(`${NODES_PREFIX}${node.id}`, Buffer.from(JSON.stringify(node)));
}

/** Every node that has registered, in id order. */
export async function listNodes(meta: MetaStore): Promise<NodeRecord[]> {
  const nodes: NodeRecord[] = [];
  for (const entry of await meta.list(NODES_PREFIX)) {
    try {
      const node = JSON.parse(Buffer.from(entry.value).toString('utf8')) as NodeRecord;
      if (typeof node.id === 'number' && Array.isArray(node.roles)) nodes.push(node);
    } catch {
      // An entry that is not ours (or half-written by a newer version) is left out of the view.
    }
  }
  return nodes.sort((a, b) => a.id - b.id);
}
