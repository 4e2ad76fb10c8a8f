import type { ISubscribePacket, IUnsubscribePacket } from './codec/packets.js';
import { ReasonCode, SUBACK_FAILURE } from './codec/reason-codes.js';
import type { Connection } from './connection.js';
import type { SubscriptionOptions } from './subscription-tree.js';
import { parseFilter, type ParsedFilter } from './topic-names.js';

/**
 * SUBSCRIBE (MQTT 5 section 3.8): each filter is checked and authorized, the subscriptions are
 * added (replacing same-filter ones), SUBACK answers, then retained messages follow as each
 * subscription's Retain Handling asks.
 */
export function handleSubscribe(
  connection: Connection,
  packet: ISubscribePacket,
  now: number,
): void | Promise<void> {
  const settings = connection.broker.settings;
  const v5 = connection.version === 5;
  const subscriptionId = v5 ? packet.properties?.subscriptionIdentifier : undefined;
  if (subscriptionId !== undefined && (typeof subscriptionId !== 'number' || subscriptionId === 0)) {
    return connection.violation(
      ReasonCode.ProtocolError,
      'protocol_violation',
      'SUBSCRIBE with a subscription identifier of 0 or more than one',
    );
  }
  if (packet.subscriptions.length === 0) {
    return connection.violation(ReasonCode.ProtocolError, 'protocol_violation', 'SUBSCRIBE without filters');
  }
  const parsed = packet.subscriptions.map(({ topic }) => parseFilter(topic, settings.maxTopicLevels));
  if (v5 && packet.subscriptions.some((s, i) => s.nl === true && isShared(parsed[i]!))) {
    return connection.violation(
      ReasonCode.ProtocolError,
      'protocol_violation',
      'no-local set on a shared subscription',
    );
  }
  // Per filter: a refusal reason code, or the authorization answer to wait for.
  const checks: Array<number | boolean | Promise<number | boolean>> = packet.subscriptions.map(
    ({ topic }, i) => {
      const problem = parsed[i]!;
      if (typeof problem === 'string') {
        connection.broker.metrics.badInput('invalid_topic_filter');
        connection.broker.logger.warn(
          { clientId: connection.clientId, filter: topic, detail: problem },
          'subscription refused',
        );
        return ReasonCode.TopicFilterInvalid;
      }
      // Access rules are about topics: a shared or exclusive subscription is checked on its filter.
      const allowed = connection.authorization!.check('subscribe', problem.filter, now);
      const cluster = connection.broker.peers;
      if (problem.kind !== 'exclusive' || cluster === null) return allowed;
      // In a cluster, one session of all the brokers' holds an exclusive filter.
      return Promise.resolve(allowed).then(async (ok) => {
        if (ok !== true) return ok;
        if (await cluster.exclusive.claim(problem.filter, connection.clientId)) return true;
        connection.broker.logger.info(
          { clientId: connection.clientId, filter: topic },
          'exclusive subscription held by a session on another broker',
        );
        return ReasonCode.QuotaExceeded;
      });
    },
  );
  if (checks.some((c) => c instanceof Promise)) {
    return Promise.all(checks.map((check) => Promise.resolve(check))).then((answers) => {
      if (connection.state === 'connected') return complete(connection, packet, answers, subscriptionId ?? 0);
    });
  }
  return complete(connection, packet, checks as Array<number | boolean>, subscriptionId ?? 0);
}

function complete(
  connection: Connection,
  packet: ISubscribePacket,
  answers: ReadonlyArray<number | boolean>,
  subscriptionId: number,
): void | Promise<void> {
  const { broker } = connection;
  const session = connection.session!;
  const v5 = connection.version === 5;
  const granted: number[] = [];
  const retained: Array<[string, SubscriptionOptions]> = [];
  packet.subscriptions.forEach((subscription, i) => {
    const answer = answers[i]!;
    if (answer !== true) {
      const code = answer === false ? ReasonCode.NotAuthorized : answer;
      granted.push(v5 ? code : SUBACK_FAILURE);
      return;
    }
    const parsed = parseFilter(subscription.topic, broker.settings.maxTopicLevels) as ParsedFilter;
    if (parsed.kind === 'exclusive') {
      const holder = broker.exclusiveHolder(session, parsed.filter);
      if (holder !== null) {
        broker.logger.info(
          { clientId: connection.clientId, filter: subscription.topic },
          'exclusive subscription held by another session',
        );
        granted.push(v5 ? ReasonCode.QuotaExceeded : SUBACK_FAILURE);
        return;
      }
    }
    const options: SubscriptionOptions = {
      qos: subscription.qos,
      noLocal: v5 && subscription.nl === true,
      retainAsPublished: v5 && subscription.rap === true,
      retainHandling: v5 ? ((subscription.rh ?? 0) as 0 | 1 | 2) : 0,
      subscriptionId,
    };
    const isNew = broker.subscribe(session, subscription.topic, options);
    granted.push(options.qos);
    // MQTT 5 section 3.8.4: retained messages are not sent for a shared subscription.
    if (parsed.kind === 'shared') return;
    if (options.retainHandling === 0 || (options.retainHandling === 1 && isNew)) {
      retained.push([subscription.topic, options]);
    }
  });
  const answer = () => {
    if (connection.state !== 'connected') return;
    connection.send({ cmd: 'suback', messageId: packet.messageId!, granted });
    for (const [filter, options] of retained) broker.sendRetained(session, filter, options);
  };
  // A persistent session's subscriptions are stored before SUBACK.
  const stored = broker.persist(session, Date.now());
  if (stored === null) return answer();
  return stored.then(answer);
}

/** UNSUBSCRIBE: MQTT 5 says per filter whether there was a subscription (0x00) or not (0x11). */
export function handleUnsubscribe(connection: Connection, packet: IUnsubscribePacket): void {
  if (packet.unsubscriptions.length === 0) {
    // MQTT-3.10.3-2: an UNSUBSCRIBE names at least one filter.
    return connection.violation(
      ReasonCode.ProtocolError,
      'protocol_violation',
      'UNSUBSCRIBE without filters',
    );
  }
  const { broker } = connection;
  const session = connection.session!;
  const codes = packet.unsubscriptions.map((filter) =>
    broker.unsubscribe(session, filter) ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted,
  );
  void broker.persist(session, Date.now())?.catch(() => {});
  if (connection.version === 5) {
    connection.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: codes });
  } else {
    connection.send({ cmd: 'unsuback', messageId: packet.messageId!, granted: [] });
  }
}

function isShared(parsed: ParsedFilter | string): boolean {
  return typeof parsed !== 'string' && parsed.kind === 'shared';
}
