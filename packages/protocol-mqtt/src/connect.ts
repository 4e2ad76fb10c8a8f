import { randomUUID } from 'node:crypto';
import { ErrorCode, isRobustMQError, type Principal } from '@robustmq/core';
import { runConnectExchange } from './auth-exchange.js';
import { ClientAuthorization } from './authorization.js';
import type { IConnackPacket, IConnectPacket, IDisconnectPacket, ProtocolVersion } from './codec/packets.js';
import { ConnectReturnCode, ReasonCode } from './codec/reason-codes.js';
import type { Connection } from './connection.js';
import { NEVER_EXPIRES } from './session.js';
import { topicNameProblem } from './topic-names.js';
import { willFromConnect } from './wills.js';

/** The refusals CONNACK can express, as MQTT 5 reason code and MQTT 3 return code. */
/** How long a CONNECT tries to take its session over while storage or the meta service cannot serve. */
const CLAIM_WAIT_MS = 15_000;
const CLAIM_RETRY_MS = 250;

/** A failure that passes: storage or the meta service not serving now, or not in time. */
function passing(error: unknown): boolean {
  return isRobustMQError(error, ErrorCode.Unavailable) || isRobustMQError(error, ErrorCode.Timeout);
}

const REFUSALS = {
  client_id_rejected: [ReasonCode.ClientIdentifierNotValid, ConnectReturnCode.IdentifierRejected],
  bad_credentials: [ReasonCode.BadUserNameOrPassword, ConnectReturnCode.BadUserNameOrPassword],
  not_authorized: [ReasonCode.NotAuthorized, ConnectReturnCode.NotAuthorized],
  server_unavailable: [ReasonCode.ServerUnavailable, ConnectReturnCode.ServerUnavailable],
  bad_authentication_method: [ReasonCode.BadAuthenticationMethod, ConnectReturnCode.NotAuthorized],
  invalid_will_topic: [ReasonCode.TopicNameInvalid, null],
  unsupported_protocol_version: [
    ReasonCode.UnsupportedProtocolVersion,
    ConnectReturnCode.UnacceptableProtocolVersion,
  ],
  protocol_violation: [ReasonCode.ProtocolError, null],
} as const;

type Refusal = keyof typeof REFUSALS;

/**
 * CONNECT (MQTT 5 section 3.1): checks the client id and will, authenticates, takes over or
 * resumes the session, answers CONNACK, then sends what the session had pending.
 */
export function handleConnect(
  connection: Connection,
  packet: IConnectPacket,
  frame: Buffer,
  now: number,
): Promise<void> {
  connection.state = 'connecting';
  return connect(connection, packet, frame, now);
}

async function connect(
  connection: Connection,
  packet: IConnectPacket,
  frame: Buffer,
  now: number,
): Promise<void> {
  const { broker } = connection;
  const settings = broker.settings;
  const version: ProtocolVersion = packet.protocolVersion ?? 4;
  connection.version = version;
  const clean = packet.clean !== false;
  const props = version === 5 ? packet.properties : undefined;

  if ((version === 3) !== (packet.protocolId === 'MQIsdp')) {
    // A client set up with one version's name and another's level (mqtt.js with only
    // `protocolVersion: 3`) learns why rather than being dropped without a word, as from Mosquitto.
    return refuse(
      connection,
      'unsupported_protocol_version',
      `protocol name ${packet.protocolId} with level ${version}`,
    );
  }
  let clientId = packet.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    // MQTT 3.1.1 allows an empty id only with a clean session (3.1.3-8); 3.1 never does.
    if (!settings.allowEmptyClientId || version === 3 || (version === 4 && !clean)) {
      return refuse(connection, 'client_id_rejected', 'empty client id');
    }
    clientId = `auto-${randomUUID()}`;
    assigned = true;
  }
  if (props?.receiveMaximum === 0 || props?.maximumPacketSize === 0) {
    return refuse(connection, 'protocol_violation', 'receive maximum or maximum packet size of 0');
  }
  // From here on, every packet to the client fits its limit, a refusal's CONNACK too.
  if (props?.maximumPacketSize !== undefined) connection.clientMaxPacketSize = props.maximumPacketSize;
  if (packet.will) {
    const problem = topicNameProblem(packet.will.topic, settings.maxTopicLevels);
    if (problem) return refuse(connection, 'invalid_will_topic', `will ${problem}`);
  }
  if (version !== 5 && packet.password !== undefined && packet.username === undefined) {
    return refuse(connection, 'protocol_violation', 'password without user name');
  }

  const authMethod = props?.authenticationMethod;
  let principal: Principal | null;
  let authData: Uint8Array | undefined;
  if (authMethod !== undefined) {
    const result = await runConnectExchange(
      connection,
      authMethod,
      props?.authenticationData,
      clientId,
      packet.username ?? null,
    );
    if (connection.state !== 'connecting') return;
    if ('refusal' in result) return refuse(connection, result.refusal, result.detail);
    principal = result.principal;
    authData = result.data;
    connection.authMethod = authMethod;
  } else {
    try {
      principal = await broker.context.auth.authenticate({
        protocol: 'mqtt',
        username: packet.username ?? null,
        password: packet.password ?? null,
        clientId,
        remoteAddress: connection.info.remoteAddress,
      });
    } catch (error) {
      broker.logger.error({ err: error, clientId }, 'authentication failed with an error');
      return refuse(connection, 'server_unavailable', 'authentication failed with an error');
    }
    if (connection.state !== 'connecting') return;
    if (principal === null) {
      return packet.username === undefined
        ? refuse(connection, 'not_authorized', 'anonymous clients are not allowed')
        : refuse(connection, 'bad_credentials', 'bad user name or password');
    }
  }

  connection.authorization = new ClientAuthorization(
    broker.context.auth,
    principal,
    settings.authorizationCacheSeconds * 1000,
    broker.logger,
  );
  if (props) {
    connection.clientReceiveMaximum = props.receiveMaximum ?? 65_535;
    connection.acceptOutboundAliases(props.topicAliasMaximum ?? 0);
  }
  const requestedExpiry = version === 5 ? (props?.sessionExpiryInterval ?? 0) : clean ? 0 : NEVER_EXPIRES;
  const expiry = Math.min(requestedExpiry, settings.maxSessionExpiryInterval);
  let keepAlive = packet.keepalive ?? 0;
  let serverKeepAlive: number | undefined;
  if (
    version === 5 &&
    settings.maxKeepAlive < 65_535 &&
    (keepAlive === 0 || keepAlive > settings.maxKeepAlive)
  ) {
    keepAlive = serverKeepAlive = settings.maxKeepAlive;
  }

  if (broker.peers !== null) {
    // Storage or the meta service out for a moment (a journal node restarting) is waited out:
    // most clients take a refused CONNACK as final (MQTT.js does not reconnect).
    const giveUpAt = Date.now() + CLAIM_WAIT_MS;
    for (;;) {
      try {
        await broker.peers.claim(clientId);
        break;
      } catch (error) {
        if (connection.state !== 'connecting') return;
        if (passing(error) && Date.now() < giveUpAt) {
          await new Promise((resolve) => setTimeout(resolve, CLAIM_RETRY_MS));
          if (connection.state !== 'connecting') return;
          continue;
        }
        broker.logger.warn({ err: error, clientId }, 'session not taken over from another broker');
        return refuse(connection, 'server_unavailable', 'the session is held by another broker');
      }
    }
    if (connection.state !== 'connecting') return;
  }
  const { session, present } = broker.attach(connection, clientId, clean);
  session.expiryInterval = expiry;
  connection.askedSessionExpiry = requestedExpiry !== 0;
  connection.will = packet.will ? willFromConnect(packet.will, frame) : null;
  // Written in order with the session's later writes: a SUBACK waits for its own record.
  void broker.persist(session, now)?.catch(() => {});
  connection.established(version, clientId, session, keepAlive);

  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: present };
  if (version === 5) {
    connack.reasonCode = ReasonCode.Success;
    connack.properties = {
      maximumPacketSize: settings.maxPacketSize,
      topicAliasMaximum: settings.topicAliasMaximum,
      sharedSubscriptionAvailable: true,
      ...(settings.receiveMaximum < 65_535 ? { receiveMaximum: settings.receiveMaximum } : {}),
      ...(assigned ? { assignedClientIdentifier: clientId } : {}),
      ...(expiry !== requestedExpiry ? { sessionExpiryInterval: expiry } : {}),
      ...(serverKeepAlive !== undefined ? { serverKeepAlive } : {}),
      ...(props?.requestResponseInformation && settings.responseInformation.length > 0
        ? { responseInformation: settings.responseInformation.replaceAll('{clientId}', clientId) }
        : {}),
      ...(authMethod !== undefined ? { authenticationMethod: authMethod } : {}),
      ...(authData !== undefined ? { authenticationData: Buffer.from(authData) } : {}),
    };
  } else {
    connack.returnCode = ConnectReturnCode.Accepted;
  }
  connection.send(connack);
  session.resume(now);
}

/** CONNACK with a refusal (MQTT 3 has no code for some: the connection just closes). */
function refuse(connection: Connection, reason: Refusal, detail: string): void {
  const [reasonCode, returnCode] = REFUSALS[reason];
  const { broker } = connection;
  broker.metrics.refused(reason);
  broker.logger.warn({ remoteAddress: connection.info.remoteAddress, reason, detail }, 'connection refused');
  if (connection.version === 5) {
    connection.send({
      cmd: 'connack',
      reasonCode,
      sessionPresent: false,
      properties: { reasonString: detail },
    });
  } else if (returnCode !== null) {
    connection.send({ cmd: 'connack', returnCode, sessionPresent: false });
  }
  connection.close(false);
}

/**
 * DISCONNECT from the client: the will is dropped only by a normal disconnection (MQTT 3, or
 * MQTT 5 reason 0x00); any other MQTT 5 reason, 0x04 or an error, leaves it to be published
 * (MQTT-3.1.2-8). MQTT 5 may change the session expiry, but not from a CONNECT that asked for 0
 * (a protocol error; what counts is what the client asked, not what the server granted).
 */
export function handleDisconnect(connection: Connection, packet: IDisconnectPacket): void {
  if (connection.version !== 5) return connection.close(false);
  const expiry = packet.properties?.sessionExpiryInterval;
  const session = connection.session!;
  if (expiry !== undefined) {
    if (!connection.askedSessionExpiry && expiry !== 0) {
      return connection.violation(
        ReasonCode.ProtocolError,
        'protocol_violation',
        'session expiry set on DISCONNECT after 0 on CONNECT',
      );
    }
    session.expiryInterval = Math.min(expiry, connection.broker.settings.maxSessionExpiryInterval);
  }
  connection.close((packet.reasonCode ?? ReasonCode.Success) !== ReasonCode.Success);
}
