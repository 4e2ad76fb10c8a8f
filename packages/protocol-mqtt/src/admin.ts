import type { AdminItem, AdminPage, AdminResource } from '@robustmq/core';
import type { MqttBroker } from './broker.js';
import { ReasonCode } from './codec/reason-codes.js';
import type { Connection } from './connection.js';
import type { Publication } from './publication.js';
import type { Session } from './session.js';
import { NEVER_EXPIRES } from './session.js';
import { parseFilter } from './topic-names.js';

const VERSIONS = { 3: '3.1', 4: '3.1.1', 5: '5.0' } as const;

/**
 * What the MQTT plugin shows operators (`/api/v1/mqtt/<resource>`): connected clients, sessions,
 * subscriptions and retained messages, each listed in id order.
 */
export function adminResources(broker: MqttBroker): Record<string, AdminResource> {
  return {
    clients: clientsResource(broker),
    sessions: sessionsResource(broker),
    subscriptions: subscriptionsResource(broker),
    retained: retainedResource(broker),
  };
}

/** Items with an id greater than `after`, at most `limit`, from ids in any order. */
function pageOf<T>(
  entries: Iterable<readonly [string, T]>,
  page: { limit: number; after?: string },
  toItem: (id: string, value: T) => AdminItem,
): AdminPage {
  const after = page.after;
  const candidates = [...entries].filter(([id]) => after === undefined || id > after);
  candidates.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const limit = Math.max(0, Math.floor(page.limit));
  const items = candidates.slice(0, limit).map(([id, value]) => toItem(id, value));
  const next = candidates.length > limit && items.length > 0 ? items[items.length - 1]!.id : null;
  return { items, next };
}

const iso = (ms: number) => new Date(ms).toISOString();

function connected(broker: MqttBroker): Iterable<[string, Connection]> {
  const found: Array<[string, Connection]> = [];
  for (const [clientId, session] of broker.sessions) {
    const connection = session.connection;
    if (connection !== null && connection.state === 'connected') found.push([clientId, connection]);
  }
  return found;
}

function clientItem(id: string, connection: Connection): AdminItem {
  const session = connection.session!;
  return {
    id,
    clientId: id,
    protocolVersion: VERSIONS[connection.version],
    username: connection.authorization?.principal.username ?? null,
    remoteAddress: connection.info.remoteAddress,
    remotePort: connection.info.remotePort,
    listener: connection.info.listener,
    transport: connection.info.transport,
    connectedAt: iso(connection.openedAt),
    keepAlive: connection.keepAliveSeconds,
    subscriptions: session.subscriptions.size,
    inflight: session.outbound.inflightCount,
    queued: session.outbound.queuedCount,
  };
}

function clientsResource(broker: MqttBroker): AdminResource {
  const find = (id: string) => {
    const connection = broker.sessions.get(id)?.connection;
    return connection && connection.state === 'connected' ? connection : null;
  };
  return {
    list: (page) => Promise.resolve(pageOf(connected(broker), page, clientItem)),
    get: (id) => {
      const connection = find(id);
      return Promise.resolve(connection ? clientItem(id, connection) : null);
    },
    remove: (id) => {
      const connection = find(id);
      connection?.kick(ReasonCode.AdministrativeAction, 'disconnected by an administrator');
      return Promise.resolve(connection !== null);
    },
  };
}

function sessionItem(id: string, session: Session): AdminItem {
  const never = session.expiryInterval === NEVER_EXPIRES;
  return {
    id,
    clientId: id,
    connected: session.connection !== null,
    persistent: session.log !== null,
    expiryInterval: session.expiryInterval,
    disconnectedAt: session.disconnectedAt === null ? null : iso(session.disconnectedAt),
    expiresAt:
      session.disconnectedAt === null || never
        ? null
        : iso(session.disconnectedAt + session.expiryInterval * 1000),
    subscriptions: session.subscriptions.size,
    inflight: session.outbound.inflightCount,
    queued: session.outbound.queuedCount,
  };
}

function sessionsResource(broker: MqttBroker): AdminResource {
  return {
    list: (page) => Promise.resolve(pageOf(broker.sessions, page, sessionItem)),
    get: (id) => {
      const session = broker.sessions.get(id);
      return Promise.resolve(session ? sessionItem(id, session) : null);
    },
    remove: (id) => {
      const session = broker.sessions.get(id);
      if (!session) return Promise.resolve(false);
      session.connection?.kick(ReasonCode.AdministrativeAction, 'session deleted by an administrator');
      broker.endSession(session);
      return Promise.resolve(true);
    },
  };
}

/** `<clientId> <filter>`: found again by trying each space, as both may contain spaces. */
const subscriptionId = (clientId: string, filter: string) => `${clientId} ${filter}`;

function splitSubscriptionId(broker: MqttBroker, id: string): [Session, string] | null {
  for (let at = id.indexOf(' '); at >= 0; at = id.indexOf(' ', at + 1)) {
    const session = broker.sessions.get(id.slice(0, at));
    const filter = id.slice(at + 1);
    if (session?.subscriptions.has(filter)) return [session, filter];
  }
  return null;
}

function subscriptionItem(id: string, [session, filter]: [Session, string]): AdminItem {
  const options = session.subscriptions.get(filter)!;
  const parsed = parseFilter(filter, Number.MAX_SAFE_INTEGER);
  const kind = typeof parsed === 'string' ? 'plain' : parsed.kind;
  return {
    id,
    clientId: session.clientId,
    filter,
    topicFilter: typeof parsed === 'string' ? filter : parsed.filter,
    shareGroup: typeof parsed !== 'string' && parsed.kind === 'shared' ? parsed.group : null,
    exclusive: kind === 'exclusive',
    qos: options.qos,
    noLocal: options.noLocal,
    retainAsPublished: options.retainAsPublished,
    retainHandling: options.retainHandling,
    subscriptionIdentifier: options.subscriptionId === 0 ? null : options.subscriptionId,
  };
}

function subscriptionsResource(broker: MqttBroker): AdminResource {
  const all = () => {
    const found: Array<[string, [Session, string]]> = [];
    for (const session of broker.sessions.values()) {
      for (const filter of session.subscriptions.keys()) {
        found.push([subscriptionId(session.clientId, filter), [session, filter]]);
      }
    }
    return found;
  };
  return {
    list: (page) => Promise.resolve(pageOf(all(), page, subscriptionItem)),
    get: (id) => {
      const found = splitSubscriptionId(broker, id);
      return Promise.resolve(found ? subscriptionItem(id, found) : null);
    },
    remove: async (id) => {
      const found = splitSubscriptionId(broker, id);
      if (!found) return false;
      const [session, filter] = found;
      broker.unsubscribe(session, filter);
      await broker.persist(session, Date.now());
      return true;
    },
  };
}

function retainedResource(broker: MqttBroker): AdminResource {
  const live = () => {
    const now = Date.now();
    return broker.retained
      .all()
      .filter((m) => !m.isExpired(now))
      .map((m): [string, Publication] => [m.topic, m]);
  };
  const item = (id: string, message: Publication): AdminItem => ({
    id,
    topic: message.topic,
    payloadBytes: message.payload.length,
    qos: message.qos,
    storedAt: iso(message.timestamp),
    expiresAt: message.expiresAt === 0 ? null : iso(message.expiresAt),
    publisherId: message.publisherId,
  });
  return {
    list: (page) => Promise.resolve(pageOf(live(), page, item)),
    get: (id) => {
      const message = broker.retained.get(id);
      return Promise.resolve(message && !message.isExpired(Date.now()) ? item(id, message) : null);
    },
    remove: async (id) => {
      if (!broker.retained.delete(id)) return false;
      await Promise.all([broker.persistence.deleteRetained(id), broker.peers?.retainedDeleted(id)]);
      return true;
    },
  };
}
