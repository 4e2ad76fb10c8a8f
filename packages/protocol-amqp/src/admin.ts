import type { AdminItem, AdminResource } from '@robustmq/core';
import type { AmqpBroker } from './broker.js';

function page(items: AdminItem[], limit: number, after?: string) {
  const sorted = items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const start = after === undefined ? 0 : sorted.findIndex((item) => item.id > after);
  const from = start < 0 ? sorted.length : start;
  const slice = sorted.slice(from, from + limit);
  const next = from + limit < sorted.length ? slice[slice.length - 1]!.id : null;
  return { items: slice, next };
}

/**
 * `queues` (shared and temporary queues) and `links` (open links; removing one detaches it with
 * `amqp:link:detach-forced`) for the admin API.
 */
export function adminResources(broker: AmqpBroker): Record<string, AdminResource> {
  const queues = (): AdminItem[] =>
    broker.allQueues().map(({ id, kind, queue }) => {
      const view = queue.describe();
      return { id, kind, depth: view.depth, consumers: view.consumers, unsettled: view.unsettled };
    });
  const links = (): AdminItem[] =>
    [...broker.links.values()].map((link) => ({
      id: link.id,
      connection: link.connection,
      address: link.address,
      role: link.role,
      credit: link.credit(),
      unsettled: link.unsettled(),
    }));
  return {
    queues: {
      list: ({ limit, after }) => Promise.resolve(page(queues(), limit, after)),
      get: (id) => Promise.resolve(queues().find((q) => q.id === id) ?? null),
    },
    links: {
      list: ({ limit, after }) => Promise.resolve(page(links(), limit, after)),
      get: (id) => Promise.resolve(links().find((l) => l.id === id) ?? null),
      remove: (id) => {
        const link = broker.links.get(id);
        link?.close();
        return Promise.resolve(link !== undefined);
      },
    },
  };
}
