import rhea from 'rhea';
import type { RheaDelivery, RheaError, RheaReceiver } from './rhea-shapes.js';

/** rhea's outcome constructors; each gives a described value rhea writes into a disposition. */
interface RheaOutcomes {
  accepted(): { described(): unknown };
  released(): { described(): unknown };
  modified(params: Record<string, unknown>): { described(): unknown };
  rejected(params: { error?: RheaError }): { described(): unknown };
}

const outcomes = (rhea as unknown as { message: RheaOutcomes }).message;
/** Never changed once built, so every accepted delivery shares it. */
const ACCEPTED = outcomes.accepted().described();

/** The part of rhea's session state for incoming transfers that a delivery reports back to. */
export interface RheaIncoming {
  next_transfer_id: number;
  next_delivery_id: number | undefined;
  readonly deliveries: { available(): number; push(delivery: unknown): void };
  update(delivery: IncomingDelivery, settled: boolean, state: unknown): void;
}

/**
 * A delivery the broker read itself (see `readIncomingTransfer`), kept in rhea's session like one
 * of rhea's own: rhea sends its disposition, counts it against the session window and drops it once
 * settled. Its methods live on the class, where rhea gives each delivery six closures.
 */
export class IncomingDelivery {
  settled = false;
  state: unknown = undefined;
  remote_state: RheaDelivery['remote_state'] = undefined;

  constructor(
    readonly id: number,
    readonly link: RheaReceiver,
    public remote_settled: boolean,
    private readonly incoming: RheaIncoming,
  ) {}

  /** As rhea: without `settled`, settles unless the link settles second (rcv-settle-mode 1). */
  update(settled: boolean | undefined, state?: unknown): void {
    this.incoming.update(this, settled ?? this.link.local.attach.rcv_settle_mode !== 1, state);
  }

  accept(): void {
    this.update(undefined, ACCEPTED);
  }

  release(params?: { delivery_failed?: boolean; undeliverable_here?: boolean }): void {
    this.update(undefined, (params ? outcomes.modified(params) : outcomes.released()).described());
  }

  reject(error?: RheaError): void {
    this.update(undefined, outcomes.rejected({ error }).described());
  }
}
