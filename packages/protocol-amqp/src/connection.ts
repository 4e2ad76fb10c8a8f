import type { ConnectionInfo, Logger, Principal } from '@robustmq/core';
import type { Duplex } from 'node:stream';
import rhea from 'rhea';
import { AmqpRefusal, type AmqpBroker, type LinkView, type ResolvedAddress } from './broker.js';
import {
  AMQP_PROTOCOL,
  encodeCloseFrame,
  GuardedSocket,
  SASL_PROTOCOL,
  type FrameViolation,
} from './frame-guard.js';
import { IncomingLink } from './incoming-link.js';
import { countReceiverDeliveries } from './link-credit.js';
import { fileLinksByDirection } from './link-names.js';
import { MalformedMessageError, parseIncoming, type Incoming } from './message-format.js';
import type { ConsumedQueue, MessageQueue, Outcome } from './message-queue.js';
import { OutgoingLink } from './outgoing-link.js';
import { IncomingDelivery } from './incoming-delivery.js';
import {
  encodeTransferFrame,
  IncomingTransfer,
  readIncomingTransfer,
  tagBytes,
  transferFields,
  type TransferFields,
} from './transfer-frame.js';
import type {
  RheaConnection,
  RheaContext,
  RheaDelivery,
  RheaDispositionFields,
  RheaOutgoing,
  RheaOutgoingDelivery,
  RheaReceiver,
  RheaSender,
  RheaSession,
  RheaSessionLinks,
  RheaTerminus,
  SessionFrame,
  TransferFrame,
} from './rhea-shapes.js';
import { saslMechanisms } from './sasl.js';

let connections = 0;

const EMPTY = Buffer.alloc(0);
/** What rhea gets in place of each message: an empty data section. */
const PLACEHOLDER = Buffer.from([0x00, 0x53, 0x75, 0xa0, 0x00]);
/**
 * The message format rhea is told incoming messages have: any but 0 makes it hand the payload on
 * as bytes instead of decoding it. The broker reads messages itself, whatever rhea is told.
 */
const UNDECODED_FORMAT = 1;

interface RheaContainer {
  sasl_server_mechanisms: Record<string, unknown>;
  create_connection(options: Record<string, unknown>): RheaConnection;
}

/**
 * Whether an attach's target, as decoded before rhea reads it as a terminus, is a transaction
 * coordinator (AMQP 1.0 section 4.5.1, descriptor 0x30 or its symbol).
 */
function isCoordinator(target: unknown): boolean {
  const descriptor = (target as { descriptor?: { value?: unknown } } | null | undefined)?.descriptor?.value;
  return String(descriptor) === '48' || descriptor === 'amqp:coordinator:list';
}

function capabilities(terminus: RheaTerminus | null | undefined): string[] {
  const caps = terminus?.capabilities;
  if (!caps) return [];
  return (Array.isArray(caps) ? caps : [caps]).map(String);
}

function describe(error: unknown): { condition: string; description: string } {
  if (error instanceof AmqpRefusal) return { condition: error.condition, description: error.message };
  return { condition: 'amqp:internal-error', description: 'the link could not be set up' };
}

/**
 * The broker's answer to a peer's detach closes the link only if the peer's did (AMQP 1.0 section
 * 2.6.6): rhea would always close it, and a client detaching without
 * closing (AMQP.Net Lite's `Detach`) takes a closing answer as an error. The link ends here either
 * way, as links are not resumed; rhea then lets go of it as it does after closing it.
 */
function answerDetachInKind(link: RheaSender | RheaReceiver): void {
  if (link.remote.detach?.closed === true || link.is_closed()) return;
  link.detach();
  process.nextTick(() => link.remove());
}

const ACCEPTED: Outcome = Object.freeze({ type: 'accepted' });
const RELEASED: Outcome = Object.freeze({ type: 'released' });

/** rhea's reading of a delivery state: an object whose constructor names the outcome. */
const rheaMessage = (rhea as unknown as { message: { unwrap_outcome(state: unknown): unknown } }).message;
const unwrapOutcome = (state: unknown) =>
  rheaMessage.unwrap_outcome(state) as RheaOutgoingDelivery['remote_state'];

/**
 * Whether a disposition's state is a described value, as outcomes are. rhea writes a settlement
 * without an outcome as an AMQP null, which rhea reads back as a value of its own and, given it to
 * unwrap, takes for an unknown outcome and prints to the console.
 */
function isOutcome(state: unknown): boolean {
  return typeof state === 'object' && state !== null && 'descriptor' in state;
}

/** The queue outcome for a delivery's remote state; null for a state that is no outcome. */
function outcomeOf(delivery: Pick<RheaDelivery, 'remote_state'>): Outcome | null {
  const state = delivery.remote_state as
    (RheaDelivery['remote_state'] & { constructor: { composite_type?: string } }) | undefined;
  switch (state?.constructor.composite_type) {
    case 'accepted':
      return ACCEPTED;
    case 'released':
      return RELEASED;
    case 'rejected': {
      const description = state.error?.description;
      return description ? { type: 'rejected', description } : { type: 'rejected' };
    }
    case 'modified':
      return {
        type: 'modified',
        deliveryFailed: state.delivery_failed === true,
        undeliverableHere: state.undeliverable_here === true,
      };
    default:
      return null;
  }
}

/** A message's fields as the broker reads them, or why its sections do not decode. */
function readIncoming(raw: Buffer): Incoming | MalformedMessageError {
  try {
    return parseIncoming(raw);
  } catch (error) {
    return error instanceof MalformedMessageError ? error : new MalformedMessageError(String(error));
  }
}

interface OutgoingState {
  link: OutgoingLink;
  /** A topic subscription or temporary queue this link owns and ends with it. */
  owned: { kind: 'subscription' | 'temporary'; name: string } | null;
}

/**
 * One client connection: rhea runs the AMQP state machine (SASL, open, sessions, links, flow)
 * over a {@link GuardedSocket}; this class answers its events with the broker's addresses.
 */
export class AmqpConnection {
  readonly id: string;
  private readonly rhea: RheaConnection;
  private readonly guard: GuardedSocket;
  private readonly logger: Logger;
  private principal: Promise<Principal | null> | null = null;
  private opened = false;
  private closed = false;
  /** Closes a connection that has not sent its `open` (after the protocol header and SASL) in time. */
  private readonly handshakeTimer: NodeJS.Timeout;
  private readonly outgoing = new Map<RheaSender, OutgoingState>();
  private readonly incoming = new Map<RheaReceiver, IncomingLink>();
  private readonly partial = new Map<string, Buffer[]>();
  /** What takes each attached link out of the broker's registry of link names (see fileByName). */
  private readonly filedNames = new Map<RheaSender | RheaReceiver, () => void>();
  /** Links detached for transfers the broker does not take; their transfers are dropped. */
  private readonly droppingTransfers = new WeakSet<RheaSender | RheaReceiver>();
  /** Per session, deliveries sent and unsettled that were taken out of rhea's ring (see parkUnsettled). */
  private readonly parked = new WeakMap<RheaSession, Map<number, RheaOutgoingDelivery>>();
  private lastIncoming: Incoming | MalformedMessageError = new MalformedMessageError('no message');
  /** Set while rhea reads a transfer that aborts its delivery. */
  private aborting = false;
  private lastSize = 0;
  private links = 0;
  /** Whether incoming bytes are split into frames here (from the first whole frame after `open`). */
  private framing = false;
  /** The start of a frame not yet whole, and how many bytes it needs before another look. */
  private held: Buffer[] = [];
  private heldBytes = 0;
  private heldWanted = 0;
  private readonly transfer = new IncomingTransfer();
  /** Whether a link found the socket over `max_outgoing_bytes` and waits for it to write. */
  private waitingForRoom = false;

  constructor(
    private readonly broker: AmqpBroker,
    socket: Duplex,
    readonly info: ConnectionInfo,
    private readonly onClosed: (connection: AmqpConnection) => void,
  ) {
    this.id = `amqp-${++connections}`;
    const { settings, context, metrics } = broker;
    this.logger = broker.logger.child({
      connection: this.id,
      remote: `${info.remoteAddress}:${info.remotePort}`,
    });
    metrics.connectionOpened(info.listener);

    this.guard = new GuardedSocket(
      socket,
      settings.maxFrameSize,
      (violation) => this.violation(violation),
      settings.channelMax,
    );
    socket.on('close', () => this.cleanup());
    this.guard.on('written', () => this.socketWritten());
    this.guard.once('sasl-outcome', () => this.readInputHeldThroughSasl());

    this.handshakeTimer = setTimeout(() => this.handshakeTimedOut(), settings.handshakeTimeoutMs);
    this.handshakeTimer.unref();

    const container = rhea.create_container({ id: `robustmq-${context.nodeId}` }) as unknown as RheaContainer;
    this.rhea = container.create_connection({
      id: this.id,
      container_id: `robustmq-${context.nodeId}`,
      max_frame_size: settings.maxFrameSize,
      channel_max: settings.channelMax,
      idle_time_out: settings.idleTimeoutMs,
      offered_capabilities: ['ANONYMOUS-RELAY'],
      properties: { product: 'RobustMQ', version: context.version },
      receiver_options: { credit_window: 0, autoaccept: false, max_message_size: settings.maxMessageSize },
      sender_options: { autosettle: true, treat_modified_as_released: false },
      reconnect: false,
      // Frames of one turn already leave in one write (GuardedSocket corks), so Nagle only delays them.
      tcp_no_delay: true,
    });
    this.captureRawTransfers();
    this.endSessionsOnHandleErrors();
    this.readTransfersDirectly();
    this.writeTransfersDirectly();
    this.listen();
    void this.admit(container);
  }

  /**
   * Offers what the node would accept now: SASL ANONYMOUS, and AMQP without SASL, only while
   * anonymous clients are admitted (`auth.allow_anonymous` may change at runtime), SASL PLAIN
   * always. The socket is read from then on.
   */
  private async admit(container: RheaContainer): Promise<void> {
    const { settings, context, metrics } = this.broker;
    let anonymous = false;
    if (settings.allowAnonymous) {
      try {
        anonymous = (await context.auth.authenticate(this.anonymousCredentials())) !== null;
      } catch (error) {
        this.logger.error({ err: error }, 'checking whether anonymous clients are admitted failed');
      }
    }
    if (this.closed) return;
    Object.assign(
      container.sasl_server_mechanisms,
      saslMechanisms(
        context.auth,
        anonymous,
        this.info.remoteAddress,
        (principal, mechanism) => {
          this.principal = Promise.resolve(principal);
          if (!principal) {
            metrics.refused('bad_credentials');
            this.logger.info({ mechanism }, 'SASL authentication refused');
          }
        },
        () => this.fail('amqp:connection:framing-error', 'a second sasl-init', 'protocol_error'),
      ),
    );
    this.rhea.options.require_sasl = !anonymous;
    this.rhea.accept(this.guard);
    this.guard.start(anonymous ? [AMQP_PROTOCOL, SASL_PROTOCOL] : [SASL_PROTOCOL]);
  }

  /**
   * A client may send its AMQP header and `open` right behind its sasl-init, without waiting for
   * the outcome. rhea reads them while its SASL layer is still on (the mechanism answers
   * asynchronously), takes the header for the size of a SASL frame and waits for bytes that never
   * come. Once the outcome is out, what it holds back is read again, by the AMQP layer.
   */
  private readInputHeldThroughSasl(): void {
    const engine = this.rhea;
    const held = engine.chunks ? Buffer.concat(engine.chunks) : engine.previous_input;
    if (this.closed || !held || held.length === 0) return;
    engine.chunks = null;
    engine.frame_size = undefined;
    engine.previous_input = null;
    engine.input(held);
  }

  private anonymousCredentials() {
    return { protocol: 'amqp', username: null, password: null, remoteAddress: this.info.remoteAddress };
  }

  /** A client that connects and never completes the handshake holds a socket and costs nothing to make. */
  private handshakeTimedOut(): void {
    const ms = this.broker.settings.handshakeTimeoutMs;
    this.fail('amqp:resource-limit-exceeded', `no AMQP open within ${ms} ms`, 'handshake_timeout');
  }

  /**
   * The broker keeps each message's bytes as they came and reads the few fields it needs itself,
   * so rhea gets a five-byte placeholder instead of the message, marked with a message format
   * other than 0 so that rhea does not decode even that. A message whose sections do not decode is
   * then rejected alone, where rhea would fail the whole connection.
   */
  private captureRawTransfers(): void {
    const original = this.rhea.on_transfer.bind(this.rhea);
    this.rhea.on_transfer = (frame: TransferFrame) => {
      if (this.refusedTransfer(frame)) return;
      const performative = frame.performative;
      const payload = frame.payload ?? EMPTY;
      const more = performative.more === true;
      const aborted = performative.aborted === true;
      // Most messages come in one frame: no key and no lookup for them while nothing is partial.
      const split = more || aborted || this.partial.size > 0;
      const key = split ? `${frame.channel}/${performative.handle}` : '';
      // The frame is rhea's, freshly read for this call: it is changed in place rather than copied.
      performative.message_format = UNDECODED_FORMAT;
      if (aborted) {
        // rhea knows no abort: it would end the delivery as a message. Its bookkeeping (ids, credit)
        // stands; the delivery itself is dropped in the message handler (see discardAborted).
        this.partial.delete(key);
        performative.more = false;
        frame.payload = EMPTY;
        this.aborting = true;
        try {
          original(frame);
        } finally {
          this.aborting = false;
        }
        return;
      }
      if (more) {
        const chunks = this.partial.get(key);
        if (chunks) chunks.push(payload);
        else this.partial.set(key, [payload]);
        frame.payload = EMPTY;
        original(frame);
        return;
      }
      const chunks = split ? this.partial.get(key) : undefined;
      if (chunks) this.partial.delete(key);
      const raw = chunks ? Buffer.concat([...chunks, payload]) : payload;
      this.lastSize = raw.length;
      this.lastIncoming = readIncoming(raw);
      frame.payload = PLACEHOLDER;
      original(frame);
    };
  }

  /**
   * A frame naming a handle wrongly ends its session, where rhea would throw (and so fail the whole
   * connection) or, for an attach, take the handle from the link that has it: a transfer, flow or
   * detach naming a handle that no attached link has with `amqp:session:unattached-handle`, an
   * attach on a handle that an attached link has with `amqp:session:handle-in-use` (AMQP 1.0
   * sections 2.7.3 and 2.8.16: both are session errors). The session then discards the peer's
   * frames until its `end` (section 2.5.5, DISCARDING); the connection's other sessions go on.
   */
  private endSessionsOnHandleErrors(): void {
    const connection = this.rhea as unknown as Record<string, (frame: SessionFrame) => void>;
    for (const performative of ['attach', 'flow', 'transfer', 'disposition', 'detach']) {
      const key = `on_${performative}`;
      const original = connection[key]!.bind(connection);
      const attach = performative === 'attach';
      connection[key] = (frame: SessionFrame) => {
        if (attach && isCoordinator(frame.performative.target)) {
          this.coordinators.add(frame.performative.name);
          // rhea knows no such terminus: it would print a warning and read the link as targetless.
          frame.performative.target = null;
        }
        const session = this.rhea.remote_channel_map[frame.channel];
        if (session && this.discarding.has(session)) return;
        const handle = frame.performative.handle;
        // A handle that is no number (or a transfer's or detach's missing one) is a decode error,
        // which rhea raises; a flow without a handle is for the session alone.
        if (!session || typeof handle !== 'number' || performative === 'disposition') {
          original(frame);
          return;
        }
        const attached = session.remote.handles[handle]?.is_remote_open() === true;
        if (attached !== attach) {
          if (attach) this.endedHere.get(session)?.delete(handle);
          original(frame);
          return;
        }
        if (!attach && this.endedHere.get(session)?.has(handle)) {
          if (performative === 'transfer') this.countDropped(session, frame as TransferFrame);
          return;
        }
        if (attach)
          this.endSession(
            session,
            'amqp:session:handle-in-use',
            `attach on handle ${String(handle)}, which an attached link has`,
            'handle_in_use',
          );
        else
          this.endSession(
            session,
            'amqp:session:unattached-handle',
            `${performative} on handle ${String(handle)}, which no attached link has`,
            'unattached_handle',
          );
      };
    }
  }

  /**
   * Per session, the peer's handles of links this end detached (an error, an operator, a deleted
   * address). rhea writes the transfers it had queued on such a link after its own detach; they
   * are dropped, as transfers after this end's detach are, rather than taken for frames on a
   * handle never attached. An attach on the handle ends that.
   */
  private readonly endedHere = new WeakMap<RheaSession, Set<number>>();
  /**
   * Names of links the client attached to a transaction coordinator, which rhea reads as links
   * without a target (it knows no coordinator terminus); each is refused as it opens.
   */
  private readonly coordinators = new Set<unknown>();

  /** Notes that this end is detaching `link` (see {@link endedHere}). */
  private detachingHere(link: RheaSender | RheaReceiver): void {
    // rhea leaves `remote.handle` unset (it reads the handle from the wrong place); the peer's
    // attach has it.
    const handle = (link.remote.attach as { handle?: unknown } | undefined)?.handle;
    if (typeof handle !== 'number') return;
    const session = link.session as unknown as RheaSession;
    let handles = this.endedHere.get(session);
    if (!handles) {
      handles = new Set();
      this.endedHere.set(session, handles);
    }
    handles.add(handle);
  }

  /** Counts a dropped transfer in its session as rhea would have, so the session's other links go on. */
  private countDropped(session: RheaSession, frame: TransferFrame): void {
    const counts = session.incoming;
    counts.next_transfer_id++;
    const id = frame.performative.delivery_id;
    if (typeof id === 'number') counts.next_delivery_id = id + 1;
  }

  /** Sessions this end ended for an error, whose frames are discarded until the peer's `end`. */
  private readonly discarding = new WeakSet<RheaSession>();

  /**
   * Ends a session for bad input: its links end at the broker (unsettled messages go back to their
   * queues), and nothing more goes out on it but its `end`, which rhea would follow with its links'
   * transfers, flows and outcomes.
   */
  private endSession(session: RheaSession, condition: string, description: string, reason: string): void {
    this.broker.metrics.badInput(reason);
    this.logger.warn({ condition, reason }, `bad input, session ended: ${description}`);
    this.discarding.add(session);
    const ofSession = (link: RheaSender | RheaReceiver) => (link.session as unknown) === session;
    for (const sender of [...this.outgoing.keys()]) if (ofSession(sender)) this.closeOutgoing(sender);
    for (const receiver of [...this.incoming.keys()]) if (ofSession(receiver)) this.closeIncoming(receiver);
    session._process = () => {
      if (session.state.need_open()) session.output(session.local.begin);
      if (session.state.need_close()) session.output(session.local.end);
    };
    session.end({ condition, description });
  }

  /**
   * Transfers the broker takes no message from, where rhea would take them all the same: one
   * starting a delivery on a link that has no credit breaks flow control (AMQP 1.0 section 2.6.7;
   * rhea writes a line on stderr for each), and one on a link where the broker is the sender is not
   * the peer's to send (rhea would read a message from it that nothing answers, holding a place in
   * the session for good). The link is detached with `amqp:link:transfer-limit-exceeded` or
   * `amqp:illegal-state`, and its transfers are dropped until the peer's detach; they count in the
   * session as rhea would count them, so its other links go on. (Transfers within credit do not
   * come here: `takeTransfer` takes them.)
   */
  private refusedTransfer(frame: TransferFrame): boolean {
    const session = this.rhea.remote_channel_map[frame.channel];
    const link = session?.remote.handles[frame.performative.handle];
    if (!session || !link) return false;
    if (!this.droppingTransfers.has(link)) {
      const refusal = this.transferRefusal(link);
      if (!refusal) return false;
      this.droppingTransfers.add(link);
      this.broker.metrics.badInput(refusal.reason);
      const id = link.is_sender()
        ? this.outgoing.get(link as RheaSender)?.link.id
        : this.incoming.get(link as RheaReceiver)?.id;
      this.logger.warn({ link: id, condition: refusal.condition }, `${refusal.description}; link detached`);
      this.detachingHere(link);
      if (link.is_sender()) this.closeOutgoing(link as RheaSender);
      else this.closeIncoming(link as RheaReceiver);
      if (!link.is_closed()) {
        this.sendAttach(link);
        link.close({ condition: refusal.condition, description: refusal.description });
      }
    }
    this.countDropped(session, frame);
    return true;
  }

  /** Why a transfer on `link` is not taken (see refusedTransfer); null when it is. */
  private transferRefusal(
    link: RheaSender | RheaReceiver,
  ): { condition: string; description: string; reason: string } | null {
    if (!link.is_remote_open()) return null;
    if (link.is_sender())
      return {
        condition: 'amqp:illegal-state',
        description: 'transfer on a link where the broker is the sender',
        reason: 'transfer_on_receiving_link',
      };
    const receiver = link as RheaReceiver;
    if (!this.incoming.has(receiver) || receiver._incomplete || receiver.credit > 0) return null;
    return {
      condition: 'amqp:link:transfer-limit-exceeded',
      description: 'transfer without link credit',
      reason: 'transfer_limit_exceeded',
    };
  }

  /**
   * Once AMQP is open, incoming bytes are split into frames here: a transfer carrying one whole
   * message on an attached receiving link is read and handed to its link directly (no rhea frame,
   * performative, delivery closures or events); every other frame goes to rhea, in order and whole.
   */
  private readTransfersDirectly(): void {
    const connection = this.rhea;
    const original = connection.input.bind(connection);
    connection.input = (chunk: Buffer) => {
      if (!this.framing) {
        // Until then rhea reads the protocol headers, SASL and `open`; it must hold no partial frame.
        if (connection.remote.open === undefined || connection.previous_input || connection.frame_size) {
          original(chunk);
          return;
        }
        this.framing = true;
      }
      try {
        this.readFrames(chunk, original);
      } catch (error) {
        // What rhea does with an error while reading input.
        this.fail(
          'amqp:decode-error',
          error instanceof Error ? error.message : String(error),
          'decode_error',
        );
      }
    };
  }

  private readFrames(chunk: Buffer, rheaInput: (buffer: Buffer) => void): void {
    let buffer = chunk;
    if (this.heldBytes > 0) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      if (this.heldBytes < this.heldWanted) return;
      buffer = Buffer.concat(this.held, this.heldBytes);
      this.held = [];
      this.heldBytes = 0;
    }
    let pos = 0;
    /** Start of the frames rhea has not been given yet. */
    let passed = 0;
    let took = false;
    // The guard has already refused frame headers under 8 bytes or over max-frame-size.
    while (buffer.length - pos >= 8) {
      const end = pos + buffer.readUInt32BE(pos);
      if (end > buffer.length) break;
      if (readIncomingTransfer(buffer, pos, end, this.transfer)) {
        // Frames before this one change what it may be (an attach, a flow), so rhea reads them first.
        if (passed < pos) {
          rheaInput(buffer.subarray(passed, pos));
          passed = pos;
          if (this.closed) return;
        }
        if (this.takeTransfer(buffer, end)) {
          passed = end;
          took = true;
        }
      }
      pos = end;
    }
    if (passed < pos) rheaInput(buffer.subarray(passed, pos));
    // What rhea would do for input it read: the peer is not idle.
    else if (took) this.rhea.heartbeat_in?.refresh();
    if (pos < buffer.length && !this.closed) {
      const rest = buffer.subarray(pos);
      this.held = [rest];
      this.heldBytes = rest.length;
      this.heldWanted = rest.length >= 4 ? rest.readUInt32BE(0) : 8;
    }
  }

  /**
   * Takes the transfer just read when rhea would accept it as a new single-frame delivery, and does
   * what rhea does for one: the session's transfer and delivery counts, the delivery in the session
   * (so its disposition and the session window work as before), the link's credit and delivery
   * count. Anything rhea would refuse or treat otherwise is left to rhea.
   */
  private takeTransfer(buffer: Buffer, end: number): boolean {
    const transfer = this.transfer;
    const session = this.rhea.remote_channel_map[transfer.channel];
    const receiver = session?.remote.handles[transfer.handle] as RheaReceiver | undefined;
    if (!session || !receiver) return false;
    const link = this.incoming.get(receiver);
    if (!link || receiver._incomplete || receiver.credit <= 0 || !receiver.is_remote_open()) return false;
    const incoming = session.incoming;
    const expected = incoming.next_delivery_id;
    if (expected !== undefined && expected !== transfer.deliveryId) return false;
    if (incoming.deliveries.available() === 0) return false;
    incoming.next_transfer_id++;
    incoming.next_delivery_id = transfer.deliveryId + 1;
    const delivery = new IncomingDelivery(transfer.deliveryId, receiver, transfer.settled, incoming);
    incoming.deliveries.push(delivery);
    receiver.credit--;
    receiver.delivery_count++;
    const raw = buffer.subarray(transfer.payloadStart, end);
    link.message(delivery, readIncoming(raw), raw.length);
    return true;
  }

  /**
   * Transfers (one frame per delivered message) are encoded here rather than by rhea's generic
   * writer; every other frame, and a transfer while rhea still holds frames back (before the
   * connection is up), goes through rhea, so frames keep their order.
   */
  private writeTransfersDirectly(): void {
    const connection = this.rhea;
    const original = connection._write_frame.bind(connection);
    connection._write_frame = (channel: number, performative: unknown, payload?: Buffer) => {
      if (payload !== undefined && connection.socket_ready && !connection.transport.has_writes_pending()) {
        const fields = transferFields(performative);
        const frame = fields === null ? null : encodeTransferFrame(channel, fields, payload);
        if (frame !== null) {
          this.guard.write(frame);
          return;
        }
      }
      original(channel, performative, payload);
    };
  }

  private listen(): void {
    const on = (event: string, handler: (context: RheaContext) => void) => this.rhea.on(event, handler);
    on('connection_open', () => this.opening());
    on('session_open', (c) => {
      fileLinksByDirection(c.session as unknown as RheaSessionLinks, (link) =>
        this.refuseRepeat(link as unknown as RheaSender | RheaReceiver),
      );
      const parked = new Map<number, RheaOutgoingDelivery>();
      this.parked.set(c.session!, parked);
      this.sendTransfersDirectly(c.session!, parked);
      this.takeOutcomes(c.session!, parked);
    });
    on('receiver_open', (c) => this.receiverOpen(c.receiver!));
    on('sender_open', (c) => this.senderOpen(c.sender!));
    on('sendable', (c) => this.outgoing.get(c.sender!)?.link.wake());
    on('sender_flow', (c) => this.outgoing.get(c.sender!)?.link.wake());
    on('sender_draining', (c) => this.outgoing.get(c.sender!)?.link.drain(() => this.rhea._register()));
    on('sender_close', (c) => {
      this.sendAttach(c.sender!);
      answerDetachInKind(c.sender!);
      this.closeOutgoing(c.sender!);
    });
    on('receiver_close', (c) => {
      this.sendAttach(c.receiver!);
      answerDetachInKind(c.receiver!);
      this.closeIncoming(c.receiver!);
    });
    on('session_close', () => this.sweepClosedLinks());
    on('sender_error', () => {});
    on('receiver_error', () => {});
    on('session_error', () => {});
    on('connection_error', (c) => this.logger.info({ err: c.error }, 'connection closed with an error'));
    on('connection_close', () => {});
    on('disconnected', () => this.cleanup());
    this.rhea.on('protocol_error', (error: Error) =>
      this.fail('amqp:connection:framing-error', error.message, 'protocol_error'),
    );
    this.rhea.on('error', (error: Error) => this.fail('amqp:decode-error', error.message, 'decode_error'));
  }

  private opening(): void {
    this.opened = true;
    clearTimeout(this.handshakeTimer);
    if (this.principal) return;
    // The client skipped SASL, which is offered only while anonymous clients are admitted.
    this.principal = this.broker.context.auth.authenticate(this.anonymousCredentials());
    void this.principal.then((principal) => {
      if (principal) return;
      this.broker.metrics.refused('anonymous');
      this.rhea.close({
        condition: 'amqp:unauthorized-access',
        description: 'anonymous clients are not admitted',
      });
    });
  }

  private async whoIs(): Promise<Principal> {
    const principal = await (this.principal ?? Promise.resolve(null));
    if (!principal) throw new AmqpRefusal('amqp:unauthorized-access', 'not authenticated');
    return principal;
  }

  private linkId(): string {
    return `${this.id}/${++this.links}`;
  }

  private receiverOpen(receiver: RheaReceiver): void {
    // rhea takes a producer's flow with drain set as the link's credit (and writes a line to
    // stderr when it is not 0). Credit is the receiving end's to give, and the broker never asks
    // a producer to drain: the producer's flow changes nothing here.
    receiver.on_flow = () => {};
    countReceiverDeliveries(receiver);
    this.holdAttach(receiver);
    if (this.coordinators.delete(receiver.name)) {
      const refusal = new AmqpRefusal('amqp:not-implemented', 'transactions are not supported');
      this.refuseLink(receiver, this.linkId(), refusal);
      return;
    }
    const target = receiver.remote.attach?.target;
    const dynamic = target?.dynamic === true;
    const address = dynamic ? this.broker.temporaryName() : (target?.address ?? null);
    receiver.set_target(address === null ? {} : { address, ...(dynamic ? { dynamic: true } : {}) });
    const id = this.linkId();
    const link = new IncomingLink(id, address, dynamic ? address : null, receiver, this.broker, this.logger);
    this.incoming.set(receiver, link);
    this.listenForMessages(receiver, link);
    const view: LinkView = {
      id,
      connection: this.id,
      address: address ?? '(anonymous relay)',
      role: 'receiver',
      credit: () => link.credit,
      unsettled: () => link.unsettled,
      topic: null,
      close: () => this.forceClose(receiver),
      end: (condition, description) => this.endLink(receiver, id, condition, description),
    };
    this.broker.links.set(id, view);
    void (async () => {
      const principal = await this.whoIs();
      let resolved: ResolvedAddress | null = null;
      if (dynamic) {
        await this.broker.createTemporary(address!);
        resolved = { name: address!, kind: 'temporary' };
      } else if (address !== null) {
        resolved = this.broker.parse(address, capabilities(target));
        await this.broker.authorize(principal, 'publish', resolved);
        await this.broker.ensure(resolved, principal);
        if (resolved.kind === 'queue') await this.broker.touchQueue(resolved.name);
        view.topic = resolved.name;
      }
      if (this.incoming.has(receiver)) {
        this.fileByName(receiver, principal);
        this.sendAttach(receiver);
        link.start(resolved, principal);
      } else if (dynamic) this.broker.deleteTemporary(address!);
    })().catch((error: unknown) => this.refuseLink(receiver, id, error));
  }

  private senderOpen(sender: RheaSender): void {
    const source = sender.remote.attach?.source;
    sender.local.attach.snd_settle_mode = sender.remote.attach?.snd_settle_mode === 1 ? 1 : 0;
    this.holdAttach(sender);
    const id = this.linkId();
    const dynamic = source?.dynamic === true;
    let resolved: ResolvedAddress;
    let address: string;
    try {
      if (dynamic) {
        resolved = { name: this.broker.temporaryName(), kind: 'temporary' };
        address = resolved.name;
      } else if (!source?.address) {
        throw new AmqpRefusal('amqp:invalid-field', 'a receiving link needs a source address');
      } else {
        address = source.address;
        resolved = this.broker.parse(address, capabilities(source));
      }
    } catch (error) {
      this.refuseLink(sender, id, error);
      return;
    }
    sender.set_source({
      address,
      ...(dynamic ? { dynamic: true } : {}),
      capabilities: [resolved.kind === 'topic' ? 'topic' : 'queue'],
      distribution_mode: resolved.kind === 'topic' ? 'copy' : 'move',
    });
    const metrics = this.broker.metrics;
    const link = new OutgoingLink(
      id,
      address,
      sender,
      () => this.socketRoom(),
      (bytes) => {
        metrics.messagesOut++;
        metrics.bytesOut += bytes;
      },
      (condition, description) => {
        this.logger.info({ link: id, condition }, `link detached: ${description}`);
        this.closeOutgoing(sender);
        if (!sender.is_closed()) sender.close({ condition, description });
      },
    );
    this.listenForOutcomes(sender, link);
    const state: OutgoingState = { link, owned: null };
    // A topic subscription starts now, when the client sees its link attached.
    const subscription = resolved.kind === 'topic' ? this.broker.subscribe(resolved.name) : null;
    if (subscription) {
      state.owned = { kind: 'subscription', name: resolved.name };
      this.ownedQueues.set(state, subscription);
    }
    this.outgoing.set(sender, state);
    const view: LinkView = {
      id,
      connection: this.id,
      address,
      role: 'sender',
      credit: () => link.credit,
      unsettled: () => link.unsettled,
      topic: null,
      close: () => this.forceClose(sender),
      end: (condition, description) => this.endLink(sender, id, condition, description),
    };
    this.broker.links.set(id, view);
    void (async () => {
      const principal = await this.whoIs();
      let queue: ConsumedQueue;
      if (dynamic) {
        const temporary = await this.broker.createTemporary(resolved.name);
        state.owned = { kind: 'temporary', name: resolved.name };
        this.ownedQueues.set(state, temporary);
        queue = temporary;
      } else if (resolved.kind === 'temporary') {
        const temporary = this.broker.temporary(resolved.name);
        if (!temporary) throw new AmqpRefusal('amqp:not-found', `temporary address ${resolved.name} is gone`);
        queue = temporary;
      } else {
        await this.broker.authorize(principal, 'subscribe', resolved);
        await this.broker.ensure(resolved, principal);
        view.topic = resolved.name;
        if (subscription) {
          await subscription.open();
          queue = subscription;
        } else {
          queue = await this.broker.consumerQueue(resolved.name);
        }
      }
      if (!this.outgoing.has(sender)) {
        this.release(state, this.ownedQueues.get(state) ?? null);
        this.ownedQueues.delete(state);
        return;
      }
      this.fileByName(sender, principal);
      this.sendAttach(sender);
      link.attach(queue);
    })().catch((error: unknown) => this.refuseLink(sender, id, error));
  }

  /**
   * Whether the socket holds less than `max_outgoing_bytes` unwritten, so that deliveries go on;
   * when it does not, its links are woken once it does (see socketWritten).
   */
  private socketRoom(): boolean {
    if (this.guard.writableLength < this.broker.settings.maxOutgoingBytes) return true;
    this.waitingForRoom = true;
    return false;
  }

  /** A write left the socket's buffer: links that found no room there go on if there is now. */
  private socketWritten(): void {
    if (!this.waitingForRoom || !this.socketRoom()) return;
    this.waitingForRoom = false;
    for (const { link } of this.outgoing.values()) link.wake();
  }

  /** The topic subscriptions and temporary queues that links own and end with them. */
  private readonly ownedQueues = new Map<OutgoingState, MessageQueue>();

  private refuseLink(link: RheaSender | RheaReceiver, id: string, error: unknown): void {
    const { condition, description } = describe(error);
    if (error instanceof AmqpRefusal) {
      this.broker.metrics.refused(condition.replace(/^amqp:/, '').replace(/[:-]/g, '_'));
      this.logger.info({ link: id, condition }, `link refused: ${description}`);
    } else {
      this.logger.error({ link: id, err: error }, 'link setup failed');
    }
    if (link.is_sender()) this.closeOutgoing(link as RheaSender);
    else this.closeIncoming(link as RheaReceiver);
    if (link.is_closed()) return;
    // AMQP 1.0 section 2.6.3: a refused link is attached with no terminus on this end's side (the
    // source this end would send from, the target it would receive at), then detached.
    if (link.is_sender()) link.local.attach.source = null;
    else link.local.attach.target = null;
    this.sendAttach(link);
    link.close({ condition, description });
  }

  /**
   * An attach naming a link of its direction that the client has attached already, on another
   * handle: a name is one link's per direction (AMQP 1.0 section 2.6.1), and an attached link is
   * not attached again, so the attach is a frame its link's state does not permit
   * (`amqp:illegal-state`). It alone is refused, as section 2.6.3 asks: an attach with no terminus
   * on this end's side, then a detach with the error; its transfers are dropped until the client's
   * detach. The attached link, the session and the connection go on.
   */
  private refuseRepeat(link: RheaSender | RheaReceiver): void {
    const condition = 'amqp:illegal-state';
    const direction = link.is_sender() ? 'receiving' : 'sending';
    const description = `a ${direction} link named ${JSON.stringify(link.name)} is attached already`;
    this.broker.metrics.badInput('link_name_in_use');
    this.logger.warn({ condition, reason: 'link_name_in_use' }, `bad input, link refused: ${description}`);
    this.droppingTransfers.add(link);
    link.open();
    this.holdAttach(link);
    if (link.is_sender()) link.local.attach.source = null;
    else link.local.attach.target = null;
    this.sendAttach(link);
    link.close({ condition, description });
  }

  /**
   * Files a link the broker has taken under its name and the client's container: a link of that
   * name and direction that the container has attached on another session or connection is
   * stolen first (AMQP 1.0 section 2.6.1), so that its unsettled messages are back in the queue
   * before this link starts. (On the same session the attach was refused, see refuseRepeat.)
   */
  private fileByName(link: RheaSender | RheaReceiver, principal: Principal): void {
    const containerId = this.rhea.remote.open?.container_id;
    if (containerId === undefined) return;
    const owner = { containerId, username: principal.username };
    const role = link.is_sender() ? 'sender' : 'receiver';
    this.filedNames.set(
      link,
      this.broker.attachedLinks.attach(owner, role, link.name, { steal: () => this.steal(link) }),
    );
  }

  /**
   * The client's container attached this link's name again elsewhere: this attachment ends as on
   * any detach (unsettled messages go back to the queue) with `amqp:link:stolen`. The detach
   * closes the link, as Qpid Broker-J's does: links are not resumed here, so nothing of this
   * attachment goes on at the new one, and clients such as qpid-proton report only a closing detach
   * as an error.
   */
  private steal(link: RheaSender | RheaReceiver): void {
    const condition = 'amqp:link:stolen';
    const description = `the link named ${JSON.stringify(link.name)} was attached again by its container, on another session or connection`;
    const id = link.is_sender()
      ? this.outgoing.get(link as RheaSender)?.link.id
      : this.incoming.get(link as RheaReceiver)?.id;
    this.logger.info({ link: id, condition }, `link detached: ${description}`);
    this.detachingHere(link);
    if (link.is_sender()) this.closeOutgoing(link as RheaSender);
    else this.closeIncoming(link as RheaReceiver);
    if (link.is_closed()) return;
    link.close({ condition, description });
  }

  /** An operator closed the link (admin API): detach-forced, unsettled messages go back. */
  private forceClose(link: RheaSender | RheaReceiver): void {
    this.detachingHere(link);
    if (link.is_sender()) this.closeOutgoing(link as RheaSender);
    else this.closeIncoming(link as RheaReceiver);
    if (!link.is_closed()) {
      this.sendAttach(link);
      link.close({ condition: 'amqp:link:detach-forced', description: 'closed by an operator' });
    }
  }

  /** The broker ends the link (its address was deleted): unsettled messages go back, as on any detach. */
  private endLink(link: RheaSender | RheaReceiver, id: string, condition: string, description: string): void {
    this.logger.info({ link: id, condition }, `link detached: ${description}`);
    this.detachingHere(link);
    if (link.is_sender()) this.closeOutgoing(link as RheaSender);
    else this.closeIncoming(link as RheaReceiver);
    if (!link.is_closed()) {
      this.sendAttach(link);
      link.close({ condition, description });
    }
  }

  /** Links whose attach from the peer is not answered yet, see {@link holdAttach}. */
  private readonly unanswered = new WeakSet<RheaSender | RheaReceiver>();

  /**
   * rhea answers a peer's attach on its next turn, but whether the broker takes the link is known
   * only once its checks are done (authorization, the address), and a refused link must be answered
   * with no terminus (AMQP 1.0 section 2.6.3): the answer waits for {@link sendAttach}.
   */
  private holdAttach(link: RheaSender | RheaReceiver): void {
    if (link.state.need_open()) this.unanswered.add(link);
  }

  /**
   * Writes a held attach now: the link is taken, refused, or ending (an attach comes before its
   * detach). Not on rhea's next turn, which writes a session's transfers before its links' attaches,
   * and the link's first delivery may be handed over before then. The connection's `open` and the
   * session's `begin` go first when they are not out yet (all may have come in one read).
   */
  private sendAttach(link: RheaSender | RheaReceiver): void {
    const session = link.session as unknown as RheaSession;
    // A session that has sent its `end` sends nothing more (see endSession).
    if (!this.unanswered.delete(link) || this.discarding.has(session)) return;
    this.answerOpen();
    if (session.state.need_open()) session.output(session.local.begin);
    session.output(link.local.attach);
  }

  /**
   * A receiving link's messages go straight to it: with a handler on the link itself, rhea does
   * not pass each message's event on through the session and the connection.
   */
  private listenForMessages(receiver: RheaReceiver, link: IncomingLink): void {
    receiver.on('message', (c) => {
      if (this.aborting) this.discardAborted(c.delivery!);
      else if (this.incoming.get(receiver) === link)
        link.message(c.delivery!, this.lastIncoming, this.lastSize);
    });
  }

  /**
   * An aborted delivery is discarded and settled by the abort itself (AMQP 1.0 section 2.7.5): no
   * message, no outcome. Settling it here frees its place in the session's incoming window.
   */
  private discardAborted(delivery: RheaDelivery): void {
    const settling = delivery as { remote_settled: boolean; settled: boolean };
    settling.remote_settled = true;
    settling.settled = true;
    this.rhea._register();
  }

  /** A sending link's outcomes go straight to it, as {@link listenForMessages} does for messages. */
  private listenForOutcomes(sender: RheaSender, link: OutgoingLink): void {
    for (const event of ['accepted', 'released', 'rejected', 'modified']) {
      sender.on(event, (c) => {
        const outcome = c.delivery ? outcomeOf(c.delivery) : null;
        if (outcome) link.outcome(c.delivery!, outcome);
      });
    }
    sender.on('settled', (c) => {
      if (c.delivery) link.settled(c.delivery);
    });
  }

  /**
   * Before rhea's own turn for a session's outgoing deliveries, the broker sends those it can as
   * one frame each, written directly: rhea would first build each transfer as a generic
   * performative (an object per field). It sends them exactly as rhea would, in order, while the
   * link has credit and the peer's session window room, and stops at the first it cannot (a message
   * over a frame, rhea still holding frames back), leaving that and the rest to rhea.
   */
  private sendTransfersDirectly(session: RheaSession, parked: Map<number, RheaOutgoingDelivery>): void {
    const outgoing = session.outgoing;
    const connection = this.rhea;
    const original = outgoing.process.bind(outgoing);
    const fields = this.outgoingTransfer;
    outgoing.process = () => {
      while (outgoing.next_pending_delivery < outgoing.next_delivery_id) {
        const delivery = outgoing.deliveries.by_id(outgoing.next_pending_delivery);
        if (!delivery || delivery.data.length !== 1 || delivery.next_to_send !== 0) break;
        const link = delivery.link;
        if (link.credit <= 0 || outgoing.transfer_window() <= 0) break;
        if (!connection.socket_ready || connection.transport.has_writes_pending()) break;
        fields.handle = link.local.handle;
        fields.deliveryId = delivery.id;
        fields.deliveryTag = delivery.tag;
        fields.messageFormat = delivery.format;
        fields.settled = delivery.settled;
        const frame = encodeTransferFrame(link.session.local.channel, fields, delivery.data[0]!);
        if (frame === null) break;
        this.guard.write(frame);
        outgoing.window--;
        outgoing.next_transfer_id++;
        // What rhea does once a delivery's last frame is out.
        if (delivery.settled) delivery.remote_settled = true;
        link.credit--;
        link.delivery_count++;
        outgoing.next_pending_delivery++;
      }
      // rhea sends the rest, and reads tags only as bytes.
      for (let id = outgoing.next_pending_delivery; id < outgoing.next_delivery_id; id++) {
        const delivery = outgoing.deliveries.by_id(id);
        if (delivery && typeof delivery.tag === 'number') delivery.tag = tagBytes(delivery.tag);
      }
      original();
      this.parkUnsettled(outgoing, parked);
    };
  }

  /**
   * rhea keeps a session's outgoing deliveries in a ring of 2048 and frees it from the oldest on,
   * each once both ends settled it: one delivery the consumer keeps unsettled (a message it is still
   * working on, or never settles) would hold up every later one, and 2048 deliveries on the session
   * would send nothing more. Past half the ring, deliveries already sent and still unsettled leave
   * it for `parked`, where their outcomes are still taken (see takeOutcomes).
   */
  private parkUnsettled(outgoing: RheaOutgoing, parked: Map<number, RheaOutgoingDelivery>): void {
    const deliveries = outgoing.deliveries;
    if (deliveries.size * 2 <= deliveries.capacity) return;
    deliveries.pop_if((delivery) => {
      if (delivery.id >= outgoing.next_pending_delivery) return false;
      if (!delivery.settled || !delivery.remote_settled) parked.set(delivery.id, delivery);
      return true;
    });
  }

  /** Filled again for each transfer {@link sendTransfersDirectly} writes. */
  private readonly outgoingTransfer: TransferFields = {
    handle: 0,
    deliveryId: 0,
    deliveryTag: EMPTY,
    messageFormat: 0,
    settled: false,
    more: false,
  };

  /**
   * A disposition from the peer for deliveries of the broker's sending links goes to the links as
   * it is read, where rhea would queue each delivery for its next turn and then emit two events for
   * it (each with a context object and a copy of the listener list). What rhea does to the delivery
   * itself stays the same: remote state and settlement, then settled here too (rhea's autosettle).
   * Deliveries of links the broker no longer serves are left to rhea.
   */
  private takeOutcomes(session: RheaSession, parked: Map<number, RheaOutgoingDelivery>): void {
    const outgoing = session.outgoing;
    outgoing.on_disposition = (fields: RheaDispositionFields) => {
      // As rhea reads it: a `last` of 0 counts as absent. Only ids the session still holds are
      // looked at, however wide the range the peer names.
      const named = fields.last ? fields.last : fields.first;
      let state: RheaOutgoingDelivery['remote_state'] | undefined;
      let outcome: Outcome | null = null;
      const take = (delivery: RheaOutgoingDelivery): void => {
        if (delivery.remote_settled) return;
        let changed = false;
        if (fields.settled) {
          delivery.remote_settled = true;
          changed = true;
        }
        if (isOutcome(fields.state) && fields.state !== delivery.remote_state) {
          if (state === undefined) {
            state = unwrapOutcome(fields.state);
            outcome = outcomeOf({ remote_state: state });
          }
          delivery.remote_state = state;
          changed = true;
        }
        if (!changed) return;
        const link = this.outgoing.get(delivery.link)?.link;
        if (!link) {
          outgoing.updated.push(delivery);
          return;
        }
        if (outcome) link.outcome(delivery, outcome);
        if (delivery.remote_settled) {
          link.settled(delivery);
          delivery.settled = true;
        }
      };
      const head = outgoing.deliveries.get_head();
      const inRing = head ? head.id : outgoing.next_pending_delivery;
      if (parked.size > 0 && fields.first < inRing) {
        const to = Math.min(named, inRing - 1);
        const found: RheaOutgoingDelivery[] = [];
        if (to - fields.first < parked.size) {
          for (let id = fields.first; id <= to; id++) {
            const delivery = parked.get(id);
            if (delivery) found.push(delivery);
          }
        } else {
          for (const delivery of parked.values())
            if (delivery.id >= fields.first && delivery.id <= to) found.push(delivery);
        }
        for (const delivery of found) {
          take(delivery);
          if (delivery.settled && delivery.remote_settled) parked.delete(delivery.id);
        }
      }
      if (!head) return;
      const first = Math.max(fields.first, head.id);
      const last = Math.min(named, head.id + outgoing.deliveries.size - 1);
      for (let id = first; id <= last; id++) {
        const delivery = outgoing.deliveries.by_id(id);
        if (delivery) take(delivery);
      }
    };
  }

  private release(state: OutgoingState, queue: MessageQueue | null): void {
    if (!state.owned) return;
    if (state.owned.kind === 'temporary') this.broker.deleteTemporary(state.owned.name);
    else if (queue) this.broker.unsubscribe(queue);
  }

  private closeOutgoing(sender: RheaSender): void {
    const state = this.outgoing.get(sender);
    if (!state) return;
    this.outgoing.delete(sender);
    this.forgetName(sender);
    this.broker.links.delete(state.link.id);
    state.link.close();
    this.forgetDeliveries(sender);
    this.release(state, this.ownedQueues.get(state) ?? null);
    this.ownedQueues.delete(state);
  }

  /**
   * rhea drops a session's outgoing deliveries oldest first, and only once both ends settled them:
   * one that the peer never settles, because its link went away, would keep every later delivery of
   * the session in its buffer, and once that is full (2048) the session sends nothing more. The
   * link's unsettled messages have gone back to the queue, so its deliveries already sent are
   * settled here.
   */
  private forgetDeliveries(sender: RheaSender): void {
    const outgoing = (sender.session as unknown as RheaSession).outgoing;
    const head = outgoing.deliveries.get_head();
    let forgot = false;
    const sent = head ? Math.min(outgoing.next_pending_delivery, head.id + outgoing.deliveries.size) : 0;
    for (let id = head?.id ?? 0; id < sent; id++) {
      const delivery = outgoing.deliveries.by_id(id);
      if (!delivery || delivery.link !== sender || (delivery.settled && delivery.remote_settled)) continue;
      delivery.settled = true;
      delivery.remote_settled = true;
      forgot = true;
    }
    const parked = this.parked.get(sender.session as unknown as RheaSession);
    if (parked) for (const [id, delivery] of parked) if (delivery.link === sender) parked.delete(id);
    if (forgot) this.rhea._register();
  }

  private closeIncoming(receiver: RheaReceiver): void {
    const link = this.incoming.get(receiver);
    if (!link) return;
    this.incoming.delete(receiver);
    this.forgetName(receiver);
    this.broker.links.delete(link.id);
    link.close();
    if (link.dynamicAddress) this.broker.deleteTemporary(link.dynamicAddress);
  }

  private forgetName(link: RheaSender | RheaReceiver): void {
    this.filedNames.get(link)?.();
    this.filedNames.delete(link);
  }

  /** After a session ends, its links are closed too. */
  private sweepClosedLinks(): void {
    setImmediate(() => {
      for (const sender of [...this.outgoing.keys()]) if (sender.is_closed()) this.closeOutgoing(sender);
      for (const receiver of [...this.incoming.keys()])
        if (receiver.is_closed()) this.closeIncoming(receiver);
    });
  }

  private violation(violation: FrameViolation): void {
    this.fail(violation.condition, violation.description, violation.reason, violation.answer);
  }

  /**
   * Bad input: the error condition in a `close` frame (once the client's `open` is in), a log
   * line, a count. `answer` is a protocol header to send first, for a peer that does not speak
   * what this listener does (AMQP 1.0, section 2.2).
   */
  private fail(condition: string, description: string, reason: string, answer?: Buffer): void {
    if (this.closed) return;
    this.broker.metrics.badInput(reason);
    this.logger.warn({ condition, reason }, `bad input, connection closed: ${description}`);
    this.guard.stop();
    this.answerOpen();
    // Frames rhea already wrote go first, as they were written before the failure.
    this.guard.flush();
    const socket = this.guard.socket;
    if (answer && socket.writable) socket.write(answer);
    if (this.opened && socket.writable) socket.write(encodeCloseFrame(condition, description));
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
    this.cleanup();
  }

  /**
   * A `close` must follow the broker's protocol header and `open`; rhea writes those on its next
   * turn after the client's `open`, which may have come with more in the same read.
   */
  private answerOpen(): void {
    if (this.opened && this.rhea.state.need_open()) this.rhea._write_open();
  }

  /** Closes the connection for shutdown. */
  close(): void {
    if (this.closed) return;
    const socket = this.guard.socket;
    this.answerOpen();
    this.guard.flush();
    if (this.opened && socket.writable) {
      this.guard.stop();
      socket.write(encodeCloseFrame('amqp:connection:forced', 'the node is stopping'));
    }
    socket.end();
    setTimeout(() => socket.destroy(), 500).unref();
    this.cleanup();
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    for (const sender of [...this.outgoing.keys()]) this.closeOutgoing(sender);
    for (const receiver of [...this.incoming.keys()]) this.closeIncoming(receiver);
    this.broker.metrics.connectionClosed(this.info.listener);
    this.onClosed(this);
  }
}
