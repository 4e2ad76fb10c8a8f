import type { EventEmitter } from 'node:events';
import type { RheaIncoming } from './incoming-delivery.js';

/*
 * The parts of rhea's server-side objects this plugin uses. rhea's own typings describe the client
 * API; accepting a socket, transfer frames and link internals are typed here once.
 */

export interface RheaTerminus {
  address?: string | null;
  dynamic?: boolean;
  capabilities?: string | string[] | null;
  distribution_mode?: string;
  durable?: number;
  expiry_policy?: string;
}

export interface RheaError {
  condition: string;
  description: string;
}

export interface RheaDelivery {
  readonly id: number;
  readonly remote_settled: boolean;
  readonly settled: boolean;
  readonly remote_state?: { error?: RheaError; delivery_failed?: boolean; undeliverable_here?: boolean };
  update(settled: boolean | undefined, state?: unknown): void;
  accept(): void;
  release(params?: { delivery_failed?: boolean; undeliverable_here?: boolean }): void;
  reject(error?: RheaError): void;
}

interface RheaLinkBase {
  readonly name: string;
  readonly connection: { _register(): void };
  credit: number;
  readonly local: {
    handle: number;
    attach: {
      snd_settle_mode?: number;
      rcv_settle_mode?: number;
      max_message_size?: number;
      /** A sending end's delivery-count when the link attached. */
      initial_delivery_count?: number;
      /** This end's terminus, as rhea encodes it; null for none. */
      source?: unknown;
      target?: unknown;
    };
  };
  /** Whether this end's attach is still to be written (taking it leaves the writing to the caller). */
  readonly state: { need_open(): boolean };
  readonly remote: {
    attach?: {
      /** The sending end's delivery-count when the link attached. */
      initial_delivery_count?: number | null;
      source?: RheaTerminus | null;
      target?: RheaTerminus | null;
      snd_settle_mode?: number;
      rcv_settle_mode?: number;
      max_message_size?: number;
    };
    detach?: { closed?: boolean };
  };
  readonly session: { readonly outgoing: { available(): number } };
  set_source(fields: Record<string, unknown>): void;
  set_target(fields: Record<string, unknown>): void;
  /** Attaches this end: its attach goes out on rhea's next turn (see `state.need_open`). */
  open(): void;
  close(error?: RheaError): void;
  /** Ends the link with a detach that does not close it. */
  detach(): void;
  /** Takes the ended link out of its session. */
  remove(): void;
  is_open(): boolean;
  /** Whether the peer has attached the link and not detached it. */
  is_remote_open(): boolean;
  is_closed(): boolean;
  is_sender(): boolean;
  /** Events on the link itself; rhea passes an event on to the session only when the link has no handler. */
  on(event: string, handler: (context: RheaContext) => void): void;
}

/** The fields of a receiver's flow that its sending end takes (AMQP 1.0 section 2.7.4). */
export interface SenderFlow {
  delivery_count?: number | null;
  link_credit?: number | null;
  drain?: boolean;
}

export interface RheaSender extends RheaLinkBase {
  delivery_count: number;
  /** Takes the peer's flow for this link: its credit, and whether to drain. */
  on_flow(frame: { performative: SenderFlow }): void;
  /** Whether the broker has nothing more to send for the drain the peer asked for. */
  _drained: boolean;
  readonly session: RheaLinkBase['session'] & { readonly local: { channel: number } };
  sendable(): boolean;
  /** `tag` may be a number only while the broker writes the delivery's frame itself (see sendTransfersDirectly). */
  send(payload: Buffer, tag: Buffer | number | undefined, format: number): RheaDelivery;
  set_drained(drained: boolean): void;
  /** Whether the peer's last flow asked to drain. */
  readonly _draining: boolean;
  /** Whether the link's next flow says drain; gives back the credit left when it does. */
  _get_drain(): boolean;
}

export interface RheaReceiver extends RheaLinkBase {
  add_credit(credit: number): void;
  delivery_count: number;
  /** A delivery whose frames have not all arrived. */
  readonly _incomplete?: unknown;
  /** Takes the peer's flow for this link. */
  on_flow(frame: unknown): void;
}

export interface RheaSession {
  /** Links by the peer's handle. */
  readonly remote: { handles: Record<number, RheaSender | RheaReceiver | undefined> };
  readonly incoming: RheaIncoming;
  readonly outgoing: RheaOutgoing;
  readonly local: { readonly begin: unknown; readonly end: unknown };
  /** Whether this end's `begin` or `end` is still to be written (taking it leaves the writing to the caller). */
  readonly state: { need_open(): boolean; need_close(): boolean };
  /** Ends the session: its `end`, with the error, goes out on rhea's next turn. */
  end(error?: RheaError): void;
  /** Writes one frame on the session's channel. */
  output(performative: unknown): void;
  /** rhea's turn for the session: its frames (begin, transfers, dispositions, flows, attaches, detaches, end). */
  _process(): void;
}

/** A frame for a session, as rhea hands it to the connection's `on_<performative>`. */
export interface SessionFrame {
  channel: number;
  /** An attach's `name` and `target` as decoded, before rhea reads the target as a terminus. */
  performative: { handle?: unknown; name?: unknown; target?: unknown };
}

/** A link as rhea's session files it. */
export interface RheaSessionLink {
  readonly name: string;
  readonly local: { handle: number };
  readonly remote: { handle?: number; attach?: unknown };
  readonly state: { remote_opened(): boolean };
  is_sender(): boolean;
  is_remote_open(): boolean;
  on_attach(frame: AttachFrame): void;
}

export interface AttachFrame {
  performative: { name: string; handle: number; role: boolean };
}

/** How rhea's session keeps its links: by name, and by each end's handle. */
export interface RheaSessionLinks {
  links: Record<string, RheaSessionLink | undefined>;
  readonly local: { handles: Record<number, RheaSessionLink | undefined> };
  readonly remote: { handles: Record<number, RheaSessionLink | undefined> };
  create_sender(name: string): RheaSessionLink;
  create_receiver(name: string): RheaSessionLink;
  create_link(
    name: string,
    constructor: new (
      session: RheaSessionLinks,
      name: string,
      handle: number,
      options: unknown,
    ) => RheaSessionLink,
    options: unknown,
  ): RheaSessionLink;
  remove_link(link: RheaSessionLink): void;
  on_attach(frame: AttachFrame): void;
}

/** A delivery rhea sends, as its session keeps it. */
export interface RheaOutgoingDelivery extends RheaDelivery {
  readonly link: RheaSender;
  /** The message's bytes, one piece per frame. */
  readonly data: Buffer[];
  readonly next_to_send: number;
  tag: Buffer | number;
  readonly format: number;
  remote_settled: boolean;
  remote_state?: RheaDelivery['remote_state'];
  settled: boolean;
}

/** A disposition's fields as rhea decodes them. */
export interface RheaDispositionFields {
  first: number;
  last?: number;
  settled?: boolean;
  state?: unknown;
}

/** rhea's session state for outgoing transfers. */
export interface RheaOutgoing {
  next_pending_delivery: number;
  readonly next_delivery_id: number;
  next_transfer_id: number;
  window: number;
  /** Transfers the peer's session window still admits. */
  transfer_window(): number;
  /** Sends what credit and window allow, reports outcomes, writes dispositions, drops settled deliveries. */
  process(): void;
  /** A ring of `capacity` deliveries, by id from the oldest kept; freed from the oldest on. */
  readonly deliveries: {
    readonly size: number;
    readonly capacity: number;
    by_id(id: number): RheaOutgoingDelivery | undefined;
    get_head(): RheaOutgoingDelivery | undefined;
    /** Drops the oldest while `drop` says so; how many were dropped. */
    pop_if(drop: (delivery: RheaOutgoingDelivery) => boolean): number;
  };
  /** Deliveries whose outcome or settlement rhea reports to the application on its next turn. */
  readonly updated: RheaOutgoingDelivery[];
  on_disposition(fields: RheaDispositionFields): void;
}

export interface TransferFrame {
  channel: number;
  performative: {
    handle: number;
    delivery_id?: number | null;
    more?: boolean;
    aborted?: boolean;
    message_format?: number;
  };
  payload?: Buffer;
}

export interface RheaConnection extends EventEmitter {
  readonly options: { id: string; require_sasl?: boolean };
  /** Whether the broker's own `open` is still to be written (taking it leaves the writing to the caller). */
  readonly state: { need_open(): boolean };
  /** Queues the broker's `open` and writes it, after the protocol header when that is not out yet. */
  _write_open(): void;
  readonly remote: { open?: { container_id?: string } };
  /** Reads bytes from the socket: whole frames and what rhea holds back of a partial one. */
  input(buffer: Buffer): void;
  /** What rhea holds back of input: the start of a frame not yet whole, or a frame's size and its pieces. */
  previous_input?: Buffer | null;
  frame_size?: number | undefined;
  chunks?: Buffer[] | null;
  /** Sessions by the peer's channel. */
  readonly remote_channel_map: Record<number, RheaSession | undefined>;
  /** The timer that closes the connection when the peer is idle too long. */
  readonly heartbeat_in?: NodeJS.Timeout;
  accept(socket: unknown): RheaConnection;
  on_transfer(frame: TransferFrame): void;
  /** Queues one frame (a performative, rhea's own object) and writes what is queued. */
  _write_frame(channel: number, performative: unknown, payload?: Buffer): void;
  readonly socket_ready: boolean;
  readonly transport: { has_writes_pending(): boolean };
  close(error?: RheaError): void;
  /** Ends the link with a detach that does not close it. */
  detach(): void;
  /** Takes the ended link out of its session. */
  remove(): void;
  is_open(): boolean;
  is_closed(): boolean;
  _register(): void;
}

export interface RheaContext {
  connection: RheaConnection;
  session?: RheaSession;
  sender?: RheaSender;
  receiver?: RheaReceiver;
  delivery?: RheaDelivery;
  error?: unknown;
}

/** A SASL mechanism as rhea's server drives it: `start` sets `outcome` (and `username`). */
export interface SaslMechanism {
  outcome: boolean | undefined;
  username: string | undefined;
  start(response: Buffer | undefined, hostname: string | undefined): Promise<void>;
}
