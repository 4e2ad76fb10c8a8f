import type {
  IPubackPacket,
  IPubcompPacket,
  IPublishPacket,
  IPubrecPacket,
  IPubrelPacket,
} from './codec/packets.js';
import { ReasonCode } from './codec/reason-codes.js';
import { publishUserProperties } from './codec/user-properties.js';
import type { Connection } from './connection.js';
import { Publication } from './publication.js';
import { parseDelayedTopic } from './delayed-publish.js';
import { topicNameProblem } from './topic-names.js';

/**
 * PUBLISH from a client (MQTT 5 section 3.3): resolves a topic alias, checks the topic, drops a
 * repeated QoS 2 packet, authorizes, routes, acknowledges. Synchronous unless the authorizer has
 * to be asked.
 */
export function handlePublish(
  connection: Connection,
  packet: IPublishPacket,
  frame: Buffer,
  now: number,
): void | Promise<void> {
  const settings = connection.broker.settings;
  let topic = packet.topic;
  // Forwarding the received bytes needs a packet that no subscriber sees differently. A QoS 0
  // PUBLISH with DUP set breaks MQTT-3.3.1-2, but that rule binds its sender and none makes the
  // receiver refuse it; Mosquitto takes it, and MQTT-3.3.1-3 (the server's own) says DUP is not
  // passed on: so it is taken and sent on encoded afresh, without DUP.
  let forwardable = packet.qos === 0 && !packet.retain && !packet.dup;
  if (connection.version === 5 && packet.properties) {
    const { topicAlias, subscriptionIdentifier } = packet.properties;
    if (subscriptionIdentifier !== undefined) {
      return connection.violation(
        ReasonCode.ProtocolError,
        'protocol_violation',
        'PUBLISH from a client carries a subscription identifier',
      );
    }
    if (topicAlias !== undefined) {
      if (topicAlias === 0 || topicAlias > settings.topicAliasMaximum) {
        return connection.violation(
          ReasonCode.TopicAliasInvalid,
          'invalid_topic_alias',
          `topic alias ${topicAlias} is outside 1..${settings.topicAliasMaximum}`,
        );
      }
      if (topic.length > 0) (connection.topicAliases ??= new Map()).set(topicAlias, topic);
      else {
        const known = connection.topicAliases?.get(topicAlias);
        if (known === undefined) {
          return connection.violation(
            ReasonCode.ProtocolError,
            'invalid_topic_alias',
            `topic alias ${topicAlias} was never set`,
          );
        }
        topic = known;
      }
      forwardable = false;
    }
  }
  if (topic.length === 0) {
    // MQTT 5 section 3.3.2.1 makes this a protocol error; MQTT 3 has no way to say so.
    return connection.violation(
      ReasonCode.ProtocolError,
      'protocol_violation',
      'zero-length topic name without a topic alias',
    );
  }
  const problem = topicNameProblem(topic, settings.maxTopicLevels);
  if (problem) return connection.violation(ReasonCode.TopicNameInvalid, 'invalid_topic', problem);
  let delay = 0;
  const delayed = parseDelayedTopic(topic, settings.maxDelayedPublishSeconds, settings.maxTopicLevels);
  if (typeof delayed === 'string') {
    return connection.violation(ReasonCode.TopicNameInvalid, 'invalid_topic', delayed);
  }
  if (delayed !== null) {
    topic = delayed.topic;
    delay = delayed.seconds;
    forwardable = false;
  }

  const session = connection.session!;
  if (packet.qos === 2 && session.inbound.isDuplicate(packet.messageId!)) {
    const id = packet.messageId!;
    return connection.acknowledgePublish('pubrec', id, ReasonCode.Success, session.inbound.routing(id));
  }
  // The server's Receive Maximum bounds the QoS 1 and 2 messages not yet answered with PUBACK or
  // PUBCOMP (MQTT 5 section 3.3.4); a QoS 2 one counts until its PUBREL.
  if (
    packet.qos > 0 &&
    connection.version === 5 &&
    session.inbound.size + connection.unansweredQos1 >= settings.receiveMaximum
  ) {
    return connection.violation(
      ReasonCode.ReceiveMaximumExceeded,
      'receive_maximum_exceeded',
      `more than ${settings.receiveMaximum} QoS 1 and 2 messages unanswered`,
    );
  }
  const allowed = connection.authorization!.check('publish', topic, now);
  if (allowed === true) return accept(connection, packet, topic, frame, forwardable, delay, now);
  if (allowed === false) return refuse(connection, packet);
  return allowed.then((ok) => {
    if (connection.state !== 'connected') return;
    if (ok) return accept(connection, packet, topic, frame, forwardable, delay, Date.now());
    refuse(connection, packet);
  });
}

/**
 * Routes the message (or holds it, for `$delayed/`) and acknowledges it; when the message had to
 * be stored (a delayed message, a persistent
 * subscriber's queue, a retained message, the QoS 2 id of a persistent session), the
 * acknowledgement waits until that is durable. `frame` is the PUBLISH as received; `forwardable`
 * says whether subscribers of its wire format may get those very bytes.
 */
function accept(
  connection: Connection,
  packet: IPublishPacket,
  topic: string,
  frame: Buffer,
  forwardable: boolean,
  delaySeconds: number,
  now: number,
): void | Promise<void> {
  const { broker } = connection;
  const session = connection.session!;
  connection.counts.messagesReceived++;
  const publication = Publication.fromPacket(
    packet,
    topic,
    connection.clientId,
    packet.properties?.userProperties === undefined ? undefined : publishUserProperties(frame),
    forwardable ? frame : null,
    connection.family,
    now,
  );
  if (packet.qos === 2 && session.log !== null && delaySeconds === 0) {
    return acceptExactlyOnce(connection, publication, packet.messageId!);
  }
  // A delayed message is stored before it is acknowledged, and published when its time comes.
  const stored =
    delaySeconds > 0
      ? broker.delayed.schedule(publication, now + delaySeconds * 1000)
      : broker.publish(publication, connection.origin, now);
  if (packet.qos === 0) {
    void stored?.catch((error: unknown) => broker.logger.error({ err: error, topic }, 'publish not stored'));
    return;
  }
  const id = packet.messageId!;
  let released: Promise<void> | null = null;
  if (packet.qos === 2) released = session.inboundAccepted(id, null);
  const pending = stored === null && released === null ? null : Promise.all([stored, released]);
  return connection.acknowledgePublish(
    packet.qos === 1 ? 'puback' : 'pubrec',
    id,
    ReasonCode.Success,
    pending,
  );
}

/**
 * QoS 2 from a persistent session: the message is stored with its packet id first, and routed
 * once that is durable, under an id of its own that sessions tell repeats by. The subscribers'
 * queues and the publisher's log are different shards, written apart: were both written at once,
 * a crash between the two writes would lose the message (id stored, a resend taken for a repeat)
 * or deliver it twice (queues written, a resend taken for new). This way a broker taking the
 * session over routes again what it finds not marked routed, and a resend waits for that.
 */
function acceptExactlyOnce(
  connection: Connection,
  publication: Publication,
  id: number,
): Promise<void> | undefined {
  const { broker } = connection;
  const session = connection.session!;
  publication.uid = broker.newMessageId();
  publication.exactlyOnce = true;
  publication.detach();
  const origin = connection.origin;
  const routing: Promise<void> = session
    .inboundAccepted(id, publication)!
    .then(() => broker.publish(publication, origin, Date.now()))
    .then(
      () => session.inboundRouted(id, routing),
      (error: unknown) => {
        // Not known to be routed: a resend is routed as new (the stored id is routed again at a
        // takeover, and sessions that had it drop the repeat).
        if (session.inbound.routing(id) === routing) session.inbound.release(id);
        throw error;
      },
    );
  session.inbound.accept(id, routing);
  return connection.acknowledgePublish('pubrec', id, ReasonCode.Success, routing);
}

/** Not authorized: MQTT 5 says so in the acknowledgement; MQTT 3 acknowledges and drops. */
function refuse(connection: Connection, packet: IPublishPacket): void {
  connection.broker.logger.info(
    { clientId: connection.clientId, topic: packet.topic },
    'publish not authorized',
  );
  if (packet.qos === 1) {
    void connection.acknowledgePublish('puback', packet.messageId!, ReasonCode.NotAuthorized, null);
  } else if (packet.qos === 2) {
    void connection.acknowledgePublish('pubrec', packet.messageId!, ReasonCode.NotAuthorized, null);
  }
}

/** PUBREL: the QoS 2 identifier is free again; PUBCOMP (0x92 if it was not known, MQTT 5). */
export function handlePubrel(connection: Connection, packet: IPubrelPacket): void {
  const { known, stored } = connection.session!.inboundReleased(packet.messageId!);
  connection.acknowledgeStored(
    'pubcomp',
    packet.messageId!,
    known ? ReasonCode.Success : ReasonCode.PacketIdentifierNotFound,
    stored,
  );
}

/** PUBACK for a QoS 1 message the broker sent. */
export function handlePuback(connection: Connection, packet: IPubackPacket, now: number): void {
  const session = connection.session!;
  if (session.puback(packet.messageId!)) session.pump(now);
}

/** PUBREC for a QoS 2 message the broker sent: PUBREL follows (0x92 for an unknown id, MQTT 5). */
export function handlePubrec(connection: Connection, packet: IPubrecPacket, now: number): void {
  const session = connection.session!;
  const failed = connection.version === 5 && (packet.reasonCode ?? 0) >= 0x80;
  const { outcome, stored } = session.pubrec(packet.messageId!, failed);
  if (outcome === 'released') session.pump(now);
  else {
    connection.acknowledgeStored(
      'pubrel',
      packet.messageId!,
      outcome === 'unknown' ? ReasonCode.PacketIdentifierNotFound : ReasonCode.Success,
      stored,
    );
  }
}

/** PUBCOMP ends a QoS 2 exchange the broker started. */
export function handlePubcomp(connection: Connection, packet: IPubcompPacket, now: number): void {
  const session = connection.session!;
  if (session.pubcomp(packet.messageId!)) session.pump(now);
}
