import type { Entry } from './message-queue.js';
import type { RheaDelivery, RheaSender } from './rhea-shapes.js';

/** rhea's session state for outgoing deliveries, as a delivery is added to it. */
export interface RheaOutgoingQueue {
  next_delivery_id: number;
  readonly deliveries: { push(delivery: unknown): void };
  update(delivery: OutgoingDelivery, settled: boolean, state: unknown): void;
  /** The most payload one transfer frame carries with a tag of this length. */
  compute_max_payload(tag: Buffer): number | undefined;
}

/** Stands in for a four-byte tag when asking rhea how much payload a frame carries. */
const FOUR_BYTE_TAG = Buffer.alloc(4);

/**
 * A delivery to a consumer, in the form rhea keeps deliveries in its session (it sends, counts
 * and drops it like one of its own) but with its method on the class where rhea gives each
 * delivery a closure, and with the queue entry it carries as a field of its own.
 */
export class OutgoingDelivery {
  readonly format = 0;
  next_to_send = 0;
  sent = false;
  settled = false;
  state: unknown = undefined;
  remote_settled = false;
  remote_state: RheaDelivery['remote_state'] = undefined;
  /** The queue entry it delivers, until the consumer's outcome for it is taken (then null). */
  queueEntry: Entry | null = null;

  constructor(
    readonly id: number,
    /** A number: the broker writes its four bytes (see sendTransfersDirectly). */
    public tag: number | Buffer,
    readonly link: RheaSender,
    /** The payload, one piece per frame: always one here. */
    readonly data: Buffer[],
    private readonly outgoing: RheaOutgoingQueue,
  ) {}

  update(settled: boolean, state?: unknown): void {
    this.outgoing.update(this, settled, state);
  }
}

/**
 * Adds a delivery of `payload` to the sender's session as rhea's `send` would, or returns null when
 * the payload needs more than one frame (then rhea's `send` does it).
 */
export function addDelivery(
  sender: RheaSender & { readonly connection: { _register(): void } },
  outgoing: RheaOutgoingQueue,
  payload: Buffer,
  tag: number,
): OutgoingDelivery | null {
  const max = outgoing.compute_max_payload(FOUR_BYTE_TAG);
  if (max !== undefined && payload.length > max) return null;
  const delivery = new OutgoingDelivery(outgoing.next_delivery_id++, tag, sender, [payload], outgoing);
  if (sender.local.attach.snd_settle_mode === 1) delivery.settled = true;
  outgoing.deliveries.push(delivery);
  sender.connection._register();
  return delivery;
}
