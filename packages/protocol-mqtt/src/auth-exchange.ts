import type { Principal } from '@robustmq/core';
import { ClientAuthorization } from './authorization.js';
import type { IAuthPacket } from './codec/packets.js';
import { ReasonCode } from './codec/reason-codes.js';
import type { Connection } from './connection.js';
import type { EnhancedAuthExchange, EnhancedAuthStep } from './enhanced-auth.js';

/** How an exchange at CONNECT ended. */
export type ConnectExchangeResult =
  | { principal: Principal; data: Uint8Array | undefined }
  | { refusal: 'bad_authentication_method' | 'not_authorized' | 'protocol_violation'; detail: string };

/**
 * Enhanced authentication at CONNECT (MQTT 5 section 4.12): runs the method's exchange, sending
 * AUTH 0x18 and waiting for the client's AUTH 0x18 as long as the method asks for more.
 */
export async function runConnectExchange(
  connection: Connection,
  method: string,
  data: Uint8Array | undefined,
  clientId: string,
  username: string | null,
): Promise<ConnectExchangeResult> {
  const exchange = startExchange(connection, method, clientId, username);
  if (exchange === null) {
    return { refusal: 'bad_authentication_method', detail: `authentication method ${method} is not offered` };
  }
  for (;;) {
    const step = await stepSafely(connection, exchange, data);
    if (step.outcome === 'success') return { principal: step.principal, data: step.data };
    if (step.outcome === 'failure') {
      return { refusal: 'not_authorized', detail: step.reason ?? `${method} authentication failed` };
    }
    connection.send(authPacket(ReasonCode.ContinueAuthentication, method, step.data));
    let answer: IAuthPacket;
    try {
      answer = await connection.nextAuth();
    } catch {
      return { refusal: 'not_authorized', detail: 'connection closed during authentication' };
    }
    const problem = answerProblem(answer, method);
    if (problem !== null) return { refusal: 'protocol_violation', detail: problem };
    data = answer.properties?.authenticationData;
  }
}

/**
 * AUTH from a connected client: 0x19 starts re-authentication with the method of its CONNECT,
 * 0x18 answers the broker's AUTH 0x18. Success gets AUTH 0x00 and the new principal takes effect;
 * failure gets DISCONNECT 0x87. Other packets keep flowing meanwhile.
 */
export function handleAuth(connection: Connection, packet: IAuthPacket): void {
  const method = connection.authMethod;
  if (method === null) {
    return connection.violation(
      ReasonCode.ProtocolError,
      'protocol_violation',
      'AUTH from a client that did not use enhanced authentication',
    );
  }
  const problem = reauthProblem(connection, packet, method);
  if (problem !== null) return connection.violation(ReasonCode.ProtocolError, 'protocol_violation', problem);
  let exchange = connection.reauthentication;
  if (exchange === null) {
    exchange = startExchange(
      connection,
      method,
      connection.clientId,
      connection.authorization!.principal.username,
    );
    if (exchange === null) {
      return connection.violation(ReasonCode.BadAuthenticationMethod, 'protocol_violation', 'method gone');
    }
    connection.reauthentication = exchange;
  }
  const current = exchange;
  connection.reauthenticating = true;
  void stepSafely(connection, current, packet.properties?.authenticationData).then((step) => {
    connection.reauthenticating = false;
    if (connection.state !== 'connected') return;
    if (step.outcome === 'continue') {
      connection.send(authPacket(ReasonCode.ContinueAuthentication, method, step.data));
      return;
    }
    connection.reauthentication = null;
    if (step.outcome === 'failure') {
      connection.kick(ReasonCode.NotAuthorized, step.reason ?? 're-authentication failed');
      return;
    }
    const { broker } = connection;
    connection.authorization = new ClientAuthorization(
      broker.context.auth,
      step.principal,
      broker.settings.authorizationCacheSeconds * 1000,
      broker.logger,
    );
    connection.send(authPacket(ReasonCode.Success, method, step.data));
  });
}

function reauthProblem(connection: Connection, packet: IAuthPacket, method: string): string | null {
  if (connection.reauthenticating) return 'AUTH before the broker answered the previous one';
  if (packet.properties?.authenticationMethod !== method) {
    return 'AUTH with another authentication method than CONNECT';
  }
  if (packet.reasonCode === ReasonCode.ReAuthenticate) {
    return connection.reauthentication === null ? null : 'AUTH 0x19 during re-authentication';
  }
  if (packet.reasonCode === ReasonCode.ContinueAuthentication) {
    return connection.reauthentication === null ? 'AUTH 0x18 outside an exchange' : null;
  }
  return `AUTH with reason code 0x${packet.reasonCode.toString(16)} from a client`;
}

function answerProblem(answer: IAuthPacket, method: string): string | null {
  if (answer.reasonCode !== ReasonCode.ContinueAuthentication) {
    return `AUTH with reason code 0x${answer.reasonCode.toString(16)} during authentication`;
  }
  if (answer.properties?.authenticationMethod !== method) return 'AUTH with another authentication method';
  return null;
}

function startExchange(
  connection: Connection,
  method: string,
  clientId: string,
  username: string | null,
): EnhancedAuthExchange | null {
  const start = connection.broker.authMethods.get(method);
  if (start === undefined) return null;
  return start({
    method,
    clientId,
    username,
    remoteAddress: connection.info.remoteAddress,
    authorizer: connection.broker.context.auth,
  });
}

async function stepSafely(
  connection: Connection,
  exchange: EnhancedAuthExchange,
  data: Uint8Array | undefined,
): Promise<EnhancedAuthStep> {
  try {
    return await exchange.step(data);
  } catch (error) {
    connection.broker.logger.error(
      { err: error, clientId: connection.clientId || undefined },
      'enhanced authentication failed with an error',
    );
    return { outcome: 'failure', reason: 'authentication failed with an error' };
  }
}

function authPacket(reasonCode: number, method: string, data: Uint8Array | undefined): IAuthPacket {
  return {
    cmd: 'auth',
    reasonCode,
    properties: {
      authenticationMethod: method,
      ...(data === undefined ? {} : { authenticationData: Buffer.from(data) }),
    },
  };
}
