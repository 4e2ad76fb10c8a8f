import type { Duplex } from 'node:stream';
import type { ConnectionInfo, MessageOrigin } from '@robustmq/core';
import type { ClientAuthorization } from './authorization.js';
import type { MqttBroker } from './broker.js';
import { encodeAck, encodePacketWithin } from './codec/encode.js';
import type { MqttCodecError } from './codec/errors.js';
import type { IAuthPacket, Packet, ProtocolVersion } from './codec/packets.js';
import { MAX_PACKET_SIZE, PacketParser } from './codec/parser.js';
import { ReasonCode } from './codec/reason-codes.js';
import { handleAuth } from './auth-exchange.js';
import { handleConnect, handleDisconnect } from './connect.js';
import type { EnhancedAuthExchange } from './enhanced-auth.js';
import type { KeptAlive } from './keep-alive.js';
import type { ListenerCounts } from './metrics.js';
import { OutboundTopicAliases } from './outbound-aliases.js';
import type { Publication, WireFamily } from './publication.js';
import { handlePuback, handlePubcomp, handlePublish, handlePubrec, handlePubrel } from './publish.js';
import type { Delivery, Session } from './session.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import type { Will } from './wills.js';

type State = 'awaiting-connect' | 'connecting' | 'connected' | 'closed';

/** Packets kept while an asynchronous step (authentication, authorization) is under way. */
const BACKLOG_PAUSE = 256;
/** PUBACK/PUBREC answers waiting for durable writes, past which the connection stops reading. */
const MAX_PENDING_ACKS = 256;
/** How long a closing socket may take to flush its last packet. */
const LINGER_MS = 2000;

/**
 * One client connection: reads and decodes packets in order, hands them to the handlers,
 * batches writes per tick, enforces keep-alive, and tears down cleanly on any error.
 */
export class Connection implements KeptAlive {
  state: State = 'awaiting-connect';
  version: ProtocolVersion = 4;
  family: WireFamily = 4;
  clientId = '';
  session: Session | null = null;
  will: Will | null = null;
  authorization: ClientAuthorization | null = null;
  /** MQTT 5: how many QoS 1/2 messages the client accepts in flight. */
  clientReceiveMaximum = 65_535;
  /** QoS 1 PUBLISH packets received whose PUBACK has not gone out (it waits for durable writes). */
  unansweredQos1 = 0;
  /** MQTT 5: the largest packet the client accepts. */
  clientMaxPacketSize = MAX_PACKET_SIZE;
  /**
   * MQTT 5: whether the CONNECT asked for a session that outlives the connection (a non-zero
   * Session Expiry Interval, even if the server lowered it): only then may DISCONNECT set one.
   */
  askedSessionExpiry = false;
  /** MQTT 5 topic aliases the client has set, alias -> topic; null until it sets one. */
  topicAliases: Map<number, string> | null = null;
  /** MQTT 5 topic aliases the broker assigns on what it sends; null when the client takes none. */
  outboundAliases: OutboundTopicAliases | null = null;
  origin: MessageOrigin = { protocol: 'mqtt' };
  /** MQTT 5: the enhanced authentication method of the CONNECT, null without one. */
  authMethod: string | null = null;
  /** A re-authentication under way (AUTH 0x19 received, not finished). */
  reauthentication: EnhancedAuthExchange | null = null;
  /** Whether the broker is working out its answer to the client's last AUTH. */
  reauthenticating = false;
  /** When the connection was accepted, ms since the epoch. */
  readonly openedAt = Date.now();
  /** The keep-alive granted, in seconds. */
  keepAliveSeconds = 0;
  /** How long the client may stay silent, in ms (1.5 times its keep-alive); 0 for no limit. */
  silenceLimitMs = 0;
  /** When the client's last packet arrived, ms since the epoch. */
  lastPacketAt = this.openedAt;
  private authWaiter: { resolve: (packet: IAuthPacket) => void; reject: (error: Error) => void } | null =
    null;
  private connectTimer: NodeJS.Timeout | null;
  private corked = false;
  private backlog: Array<[Packet, Buffer]> | null = null;
  /** The last PUBACK/PUBREC still waiting to go out, or null when none is. */
  private publishAcks: Promise<void> | null = null;
  private pendingAcks = 0;
  /** A bad packet that came after those in the backlog: refused once they are handled. */
  private badPacket: MqttCodecError | null = null;
  private paused = false;
  private readonly parser: PacketParser;
  private readonly maxOutgoingBytes: number;
  /** This connection's listener's traffic counts. */
  readonly counts: ListenerCounts;
  /** Settled once the socket has closed; made only when someone waits for it. */
  private closedSocket: Promise<void> | null = null;

  constructor(
    readonly broker: MqttBroker,
    readonly socket: Duplex,
    readonly info: ConnectionInfo,
  ) {
    const settings = broker.settings;
    this.maxOutgoingBytes = settings.maxOutgoingBytes;
    this.parser = new PacketParser({
      maxPacketSize: settings.maxPacketSize,
      onPacket: (packet, frame) => this.onPacket(packet, frame),
      onError: (error) => this.onCodecError(error),
    });
    broker.connections.add(this);
    this.counts = broker.metrics.listener(info.listener);
    broker.metrics.connectionOpened(this.counts);
    socket.on('data', (chunk: Buffer) => {
      this.counts.bytesReceived += chunk.length;
      if (this.state === 'awaiting-connect' && !this.parser.started && chunk[0] !== 0x10) {
        // Not MQTT at all (or not CONNECT first): no need to wait for the rest of it.
        this.refuse('packet_before_connect', `first byte 0x${chunk[0]!.toString(16)} is not CONNECT`);
        return;
      }
      this.parser.parse(chunk);
    });
    socket.on('drain', () => {
      if (this.state === 'connected' && this.session?.connection === this) this.session.pump(Date.now());
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.close(true));
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      if (this.state === 'awaiting-connect' || this.state === 'connecting') {
        this.refuse('connect_timeout', `no CONNECT within ${settings.connectTimeout} s`);
      }
    }, settings.connectTimeout * 1000);
    this.connectTimer.unref();
  }

  /** The connection was accepted: version and keep-alive are set, the session is attached. */
  established(version: ProtocolVersion, clientId: string, session: Session, keepAliveSeconds: number): void {
    this.state = 'connected';
    this.version = version;
    this.family = version === 5 ? 5 : 4;
    this.clientId = clientId;
    this.session = session;
    this.origin = { protocol: 'mqtt', clientId };
    this.keepAliveSeconds = keepAliveSeconds;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.silenceLimitMs = keepAliveSeconds * 1500;
  }

  /** Whether the socket holds more unsent bytes than allowed: QoS 0 is dropped, QoS 1/2 waits. */
  congested(): boolean {
    return this.socket.writableLength > this.maxOutgoingBytes;
  }

  /** Writes bytes; everything written in one tick leaves in one system call. */
  write(buffer: Buffer): void {
    if (!this.socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(buffer);
    this.counts.bytesSent += buffer.length;
  }

  /**
   * Encodes and writes a packet in this connection's protocol version, within the client's
   * Maximum Packet Size: its reason string and user properties are left out if need be, and a
   * packet that cannot fit is not sent.
   */
  send(packet: Packet): void {
    const encoded = encodePacketWithin(packet, this.version, this.clientMaxPacketSize);
    if (encoded !== null) this.write(encoded);
    else this.tooLargeForClient(packet.cmd);
  }

  /** An acknowledgement, with an MQTT 5 reason code when this client speaks 5. */
  /**
   * Answers a PUBLISH (PUBACK, or PUBREC for QoS 2) once `pending` (its durable writes) is done,
   * and never before the answers to the PUBLISH packets received earlier (MQTT-4.6.0-2 and -3);
   * the packets after it are handled meanwhile. Returns what to wait for only while too many
   * answers are outstanding: the connection then stops reading until they go out.
   */
  acknowledgePublish(
    cmd: 'puback' | 'pubrec',
    packetId: number,
    reasonCode: number,
    pending: Promise<unknown> | null,
  ): Promise<void> | undefined {
    const previous = this.publishAcks;
    if (pending === null && previous === null) {
      this.sendAck(cmd, packetId, reasonCode);
      return undefined;
    }
    this.pendingAcks++;
    const qos1 = cmd === 'puback';
    if (qos1) this.unansweredQos1++;
    const answered: Promise<void> = Promise.all([previous, pending])
      .then(
        () => {
          if (this.state === 'connected') this.sendAck(cmd, packetId, reasonCode);
        },
        (error: unknown) => this.failed(error),
      )
      .finally(() => {
        this.pendingAcks--;
        if (qos1) this.unansweredQos1--;
        if (this.publishAcks === answered) this.publishAcks = null;
      });
    this.publishAcks = answered;
    return this.pendingAcks >= MAX_PENDING_ACKS ? answered : undefined;
  }

  /**
   * Sends an acknowledgement once `stored` (the session's log write it reports) is durable, on
   * this connection if it is still open; a failed write fails the connection.
   */
  acknowledgeStored(
    cmd: 'pubrel' | 'pubcomp',
    packetId: number,
    reasonCode: number,
    stored: Promise<unknown> | null,
  ): void {
    if (stored === null) {
      this.sendAck(cmd, packetId, reasonCode);
      return;
    }
    stored.then(
      () => {
        if (this.state === 'connected') this.sendAck(cmd, packetId, reasonCode);
      },
      (error: unknown) => {
        if (this.state === 'connected') this.failed(error);
      },
    );
  }

  sendAck(cmd: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp', packetId: number, reasonCode: number): void {
    const encoded = encodeAck(cmd, packetId, this.version === 5 ? reasonCode : 0);
    if (encoded.length <= this.clientMaxPacketSize) this.write(encoded);
    else this.tooLargeForClient(cmd);
  }

  private tooLargeForClient(cmd: string): void {
    this.broker.logger.warn(
      { clientId: this.clientId || undefined, maximumPacketSize: this.clientMaxPacketSize },
      `${cmd.toUpperCase()} not sent: over the client's maximum packet size`,
    );
  }

  /** A QoS 0 delivery: dropped (and counted) when the client is not keeping up. */
  sendQos0(
    publication: Publication,
    retain: boolean,
    subscriptionIds: readonly number[] | null,
    now: number,
  ): void {
    const metrics = this.broker.metrics;
    if (this.congested()) {
      metrics.dropped('slow_client');
      return;
    }
    const frame =
      this.outboundAliases !== null
        ? this.aliasedFrame(publication, 0, 0, false, retain, subscriptionIds, now)
        : subscriptionIds === null || this.family !== 5
          ? publication.qos0Frame(this.family, retain, now)
          : publication.encode(5, 0, 0, false, retain, subscriptionIds, now);
    if (frame === null || frame.length > this.clientMaxPacketSize) {
      metrics.dropped('too_large');
      return;
    }
    if (!retain) this.counts.delivered(now, publication.timestamp);
    else this.counts.messagesSent++;
    this.write(frame);
  }

  /** A QoS 1/2 PUBLISH with its packet id; false when it is over the client's maximum size. */
  sendPublish(delivery: Delivery, packetId: number, dup: boolean, now: number): boolean {
    const { publication, qos, retain } = delivery;
    const ids = this.family === 5 ? delivery.subscriptionIds : null;
    const frame =
      this.outboundAliases !== null
        ? this.aliasedFrame(publication, qos, packetId, dup, retain, ids, now)
        : publication.encode(this.family, qos, packetId, dup, retain, ids, now);
    if (frame === null || frame.length > this.clientMaxPacketSize) return false;
    // Retained messages sent on subscribe would skew the latency: they are not sampled.
    if (!retain) this.counts.delivered(now, publication.timestamp);
    else this.counts.messagesSent++;
    this.write(frame);
    return true;
  }

  /**
   * A PUBLISH with a topic alias: the topic and a new alias the first time, the alias alone
   * afterwards. The alias is recorded only for a frame the client will get (null: too large).
   */
  private aliasedFrame(
    publication: Publication,
    qos: 0 | 1 | 2,
    packetId: number,
    dup: boolean,
    retain: boolean,
    subscriptionIds: readonly number[] | null,
    now: number,
  ): Buffer | null {
    const aliases = this.outboundAliases!;
    const known = aliases.lookup(publication.topic);
    const alias = known ?? aliases.next();
    const frame =
      known !== undefined && qos === 0 && subscriptionIds === null
        ? publication.aliasedQos0Frame(known, retain, now)
        : publication.encode(5, qos, packetId, dup, retain, subscriptionIds, now, {
            alias,
            known: known !== undefined,
          });
    if (frame.length > this.clientMaxPacketSize) return null;
    if (known === undefined) aliases.set(publication.topic, alias);
    return frame;
  }

  /** MQTT 5: the client accepts up to `clientMaximum` topic aliases from the broker. */
  acceptOutboundAliases(clientMaximum: number): void {
    const maximum = Math.min(clientMaximum, this.broker.settings.outboundTopicAliases);
    this.outboundAliases = maximum > 0 ? new OutboundTopicAliases(maximum) : null;
  }

  /**
   * Ends the connection for bad input or a protocol violation: counted, logged, MQTT 5 clients
   * get a DISCONNECT with `reasonCode`, and the will is published.
   */
  violation(reasonCode: number, reason: string, detail: string): void {
    if (this.state === 'closed') return;
    this.broker.metrics.badInput(reason);
    this.broker.logger.warn(
      {
        clientId: this.clientId || undefined,
        remoteAddress: this.info.remoteAddress,
        reason,
        reasonCode,
        detail,
      },
      'bad input',
    );
    if (this.state === 'connected' && this.version === 5) {
      this.send({ cmd: 'disconnect', reasonCode, properties: { reasonString: detail } });
    }
    this.close(true);
  }

  /** Refuses before CONNACK was sent: counted, logged, closed. */
  refuse(reason: string, detail: string): void {
    this.broker.metrics.badInput(reason);
    this.broker.logger.warn({ remoteAddress: this.info.remoteAddress, reason, detail }, 'bad input');
    this.close(false);
  }

  /** The client's next AUTH packet during authentication at CONNECT; rejects if it closes first. */
  nextAuth(): Promise<IAuthPacket> {
    return new Promise((resolve, reject) => {
      if (this.badPacket !== null) {
        // The client sent a bad packet where its AUTH should be: no AUTH will come.
        const error = this.badPacket;
        this.badPacket = null;
        this.refuseCodecError(error);
      }
      if (this.state === 'closed') reject(new Error('connection closed'));
      else this.authWaiter = { resolve, reject };
    });
  }

  /**
   * Ends the connection on the broker's initiative (an operator's kick, a failed
   * re-authentication): MQTT 5 clients get DISCONNECT with `reasonCode`; the will is published.
   */
  kick(reasonCode: number, detail: string): void {
    if (this.state === 'closed') return;
    this.broker.logger.info(
      { clientId: this.clientId || undefined, remoteAddress: this.info.remoteAddress, reasonCode, detail },
      'client disconnected by the broker',
    );
    if (this.state === 'connected' && this.version === 5) {
      this.send({ cmd: 'disconnect', reasonCode, properties: { reasonString: detail } });
    }
    this.close(true);
  }

  /** Another connection took this client id (MQTT 5: DISCONNECT 0x8E). */
  takeOver(): void {
    if (this.version === 5 && this.state === 'connected') {
      this.send({ cmd: 'disconnect', reasonCode: ReasonCode.SessionTakenOver });
    }
    this.close(true);
  }

  /** The broker is stopping: MQTT 5 clients hear 0x8B; no wills. */
  shutDown(): Promise<void> {
    if (this.version === 5 && this.state === 'connected') {
      this.send({ cmd: 'disconnect', reasonCode: ReasonCode.ServerShuttingDown });
    }
    this.close(false);
    return this.socketClosed();
  }

  private socketClosed(): Promise<void> {
    this.closedSocket ??= this.socket.closed
      ? Promise.resolve()
      : new Promise((resolve) => this.socket.once('close', () => resolve()));
    return this.closedSocket;
  }

  /** Closes the connection once; `publishWill` says whether it ended without a clean DISCONNECT. */
  close(publishWill: boolean): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.broker.connections.delete(this);
    this.broker.metrics.connectionClosed(this.counts);
    this.backlog = null;
    this.authWaiter?.reject(new Error('connection closed'));
    this.authWaiter = null;
    if (!this.socket.destroyed) {
      this.socket.end();
      setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
    }
    if (wasConnected) this.broker.detach(this, publishWill ? this.will : null, this.authorization);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /** Nothing came from the client within its keep-alive and a half. */
  keepAliveExpired(): void {
    if (this.state !== 'connected') return;
    this.broker.logger.info(
      { clientId: this.clientId, remoteAddress: this.info.remoteAddress },
      'keep-alive timeout',
    );
    if (this.version === 5) this.send({ cmd: 'disconnect', reasonCode: ReasonCode.KeepAliveTimeout });
    this.close(true);
  }

  private onCodecError(error: MqttCodecError): void {
    if (this.backlog !== null && this.authWaiter === null && this.state !== 'closed') {
      // Packets before it are still being handled (a CONNECT being authenticated, a PUBLISH
      // being authorized): they are answered first, as they came first.
      this.badPacket = error;
      return;
    }
    this.refuseCodecError(error);
  }

  private refuseCodecError(error: MqttCodecError): void {
    if (this.state === 'awaiting-connect' && error.message === 'Invalid protocol version') {
      // An MQTT 3 CONNACK is what clients of every version can read (MQTT 5 section 3.1.2.2).
      this.write(Buffer.from([0x20, 0x02, 0x00, 0x01]));
      this.broker.metrics.refused('unsupported_protocol_version');
      this.broker.logger.warn(
        { remoteAddress: this.info.remoteAddress, reason: 'unsupported_protocol_version' },
        'connection refused',
      );
      this.close(false);
      return;
    }
    const reason =
      error.reasonCode === ReasonCode.PacketTooLarge
        ? 'packet_too_large'
        : error.reasonCode === ReasonCode.ProtocolError
          ? 'protocol_violation'
          : 'malformed_packet';
    if (this.state === 'connected') return this.violation(error.reasonCode, reason, error.message);
    if (
      (this.state === 'awaiting-connect' || this.state === 'connecting') &&
      this.parser.protocolVersion === 5
    ) {
      // The CONNECT itself is bad (or a bad packet came where its AUTH should): an MQTT 5 server
      // may say why in CONNACK before closing (section 3.1.4). No reason string: the client's
      // Maximum Packet Size is not known.
      this.write(Buffer.from([0x20, 0x03, 0x00, error.reasonCode, 0x00]));
    }
    this.refuse(reason, error.message);
  }

  private onPacket(packet: Packet, frame: Buffer): void {
    if (this.state === 'closed') return;
    const now = Date.now();
    this.lastPacketAt = now;
    if (this.authWaiter !== null && packet.cmd === 'auth') {
      // The CONNECT is waiting for this answer: it cannot wait in the backlog behind it.
      const waiter = this.authWaiter;
      this.authWaiter = null;
      waiter.resolve(packet);
      return;
    }
    if (this.backlog !== null) {
      this.backlog.push([packet, frame]);
      if (this.backlog.length >= BACKLOG_PAUSE && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    const pending = this.dispatch(packet, frame, now);
    if (pending) this.waitFor(pending, []);
  }

  private waitFor(pending: Promise<void>, backlog: Array<[Packet, Buffer]>): void {
    this.backlog = backlog;
    pending.then(
      () => this.drainBacklog(),
      (error: unknown) => this.failed(error),
    );
  }

  private drainBacklog(): void {
    const backlog = this.backlog;
    if (backlog === null || this.state === 'closed') return;
    for (let i = 0; i < backlog.length; i++) {
      // A handler may have closed the connection.
      if ((this.state as State) === 'closed') return;
      const [packet, frame] = backlog[i]!;
      const pending = this.dispatch(packet, frame, Date.now());
      if (pending) {
        this.waitFor(pending, backlog.slice(i + 1));
        return;
      }
    }
    this.backlog = null;
    if (this.badPacket !== null) {
      const error = this.badPacket;
      this.badPacket = null;
      this.refuseCodecError(error);
      return;
    }
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private dispatch(packet: Packet, frame: Buffer, now: number): void | Promise<void> {
    try {
      if (this.state === 'awaiting-connect') {
        if (packet.cmd === 'connect') return handleConnect(this, packet, frame, now);
        return this.refuse('packet_before_connect', `${packet.cmd.toUpperCase()} before CONNECT`);
      }
      switch (packet.cmd) {
        case 'publish':
          return handlePublish(this, packet, frame, now);
        case 'puback':
          return handlePuback(this, packet, now);
        case 'pubrec':
          return handlePubrec(this, packet, now);
        case 'pubrel':
          return handlePubrel(this, packet);
        case 'pubcomp':
          return handlePubcomp(this, packet, now);
        case 'subscribe':
          return handleSubscribe(this, packet, now);
        case 'unsubscribe':
          return handleUnsubscribe(this, packet);
        case 'pingreq':
          return this.write(PINGRESP);
        case 'disconnect':
          return handleDisconnect(this, packet);
        case 'auth':
          return handleAuth(this, packet);
        case 'connect':
          return this.violation(ReasonCode.ProtocolError, 'protocol_violation', 'second CONNECT');
        default:
          return this.violation(
            ReasonCode.ProtocolError,
            'protocol_violation',
            `a client must not send ${packet.cmd.toUpperCase()}`,
          );
      }
    } catch (error) {
      this.failed(error);
    }
  }

  private failed(error: unknown): void {
    this.broker.logger.error(
      { err: error, clientId: this.clientId || undefined, remoteAddress: this.info.remoteAddress },
      'MQTT connection failed',
    );
    if (this.state === 'connected' && this.version === 5) {
      this.send({ cmd: 'disconnect', reasonCode: ReasonCode.ImplementationSpecificError });
    }
    this.close(true);
  }
}

const PINGRESP = Buffer.from([0xd0, 0x00]);
