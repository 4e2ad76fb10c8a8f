import type { BrokerCluster } from './cluster.js';
import { ErrorCode, RobustMQError } from './errors.js';
import type { Logger } from './logger.js';
import type { AdminItem, AdminPage, AdminResource } from './protocol.js';

type Resources = Readonly<Record<string, AdminResource>>;

type AdminCall =
  | { r: string; op: 'list'; page: { limit: number; after?: string } }
  | { r: string; op: 'get' | 'remove'; id: string };

const byId = (a: AdminItem, b: AdminItem) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * A protocol's admin resources as its whole cluster shows them, for what each broker holds of its
 * own (connected clients, sessions, queues): listing on any broker lists what every broker that
 * announced `protocol` holds, each item naming its broker (`broker`), and getting or removing an
 * item finds the broker that holds it. Ids must be unique across the brokers. Each broker answers
 * the others from `local` under the method `<protocol>.admin`; one that cannot be reached is left
 * out of a listing (and logged). The resources not named in `spanning` stay as `local` gives them.
 */
export function adminAcrossBrokers(
  protocol: string,
  cluster: BrokerCluster,
  local: () => Resources,
  spanning: readonly string[],
  logger: Logger,
): () => Resources {
  const method = `${protocol}.admin`;
  cluster.handle(method, async (body) => {
    const call = body as AdminCall;
    const resource = local()[call.r];
    if (!resource) throw new RobustMQError(ErrorCode.NotFound, `no admin resource ${call.r}`);
    switch (call.op) {
      case 'list':
        return resource.list(call.page);
      case 'get':
        return { item: await resource.get(call.id) };
      case 'remove':
        return { removed: resource.remove ? await resource.remove(call.id) : false };
      default:
        throw new RobustMQError(ErrorCode.InvalidArgument, 'unknown admin operation');
    }
  });
  const tagged = (items: readonly AdminItem[], broker: number) => items.map((item) => ({ ...item, broker }));

  const span = (name: string, own: AdminResource): AdminResource => {
    const ask = async <T>(peer: number, call: AdminCall): Promise<T | null> => {
      try {
        return await cluster.call<T>(peer, method, call);
      } catch (error) {
        logger.warn(
          { err: error, broker: peer, resource: `${protocol}/${name}` },
          'another broker did not answer an admin call',
        );
        return null;
      }
    };
    return {
      ...own,
      async list(page) {
        const limit = Math.max(0, Math.floor(page.limit));
        const peers = cluster.peers(protocol);
        const pages = await Promise.all([
          own.list(page).then((mine) => ({ ...mine, items: tagged(mine.items, cluster.nodeId) })),
          ...peers.map(async (peer) => {
            const theirs = await ask<AdminPage>(peer, { r: name, op: 'list', page });
            return theirs && { ...theirs, items: tagged(theirs.items, peer) };
          }),
        ]);
        const items = pages.flatMap((p) => p?.items ?? []).sort(byId);
        const more = items.length > limit || pages.some((p) => p !== null && p.next !== null);
        const shown = items.slice(0, limit);
        return { items: shown, next: more && shown.length > 0 ? shown[shown.length - 1]!.id : null };
      },
      async get(id) {
        const mine = await own.get(id);
        if (mine) return { ...mine, broker: cluster.nodeId };
        for (const peer of cluster.peers(protocol)) {
          const answer = await ask<{ item: AdminItem | null }>(peer, { r: name, op: 'get', id });
          if (answer?.item) return { ...answer.item, broker: peer };
        }
        return null;
      },
      ...(own.remove
        ? {
            async remove(id: string) {
              if (await own.remove!(id)) return true;
              for (const peer of cluster.peers(protocol)) {
                const answer = await ask<{ removed: boolean }>(peer, { r: name, op: 'remove', id });
                if (answer?.removed) return true;
              }
              return false;
            },
          }
        : {}),
    };
  };

  return () => {
    const resources = local();
    const shown: Record<string, AdminResource> = { ...resources };
    for (const name of spanning) if (resources[name]) shown[name] = span(name, resources[name]);
    return shown;
  };
}
