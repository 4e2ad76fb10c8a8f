import type { RheaReceiver, RheaSender, SenderFlow } from './rhea-shapes.js';

/** The most a link-credit or delivery-count can be: both are 32-bit unsigned on the wire. */
const MAX_UINT = 2 ** 32 - 1;

/**
 * Keeps a link's delivery-count a 32-bit serial number (AMQP 1.0 section 2.6.7). rhea counts with
 * plain numbers, and its encoder throws on the flow that follows a link's 2^32nd delivery.
 */
function wrapDeliveryCount(link: RheaSender | RheaReceiver): void {
  let count = link.delivery_count >>> 0;
  Object.defineProperty(link, 'delivery_count', {
    get: () => count,
    set: (value: number) => {
      count = value >>> 0;
    },
    enumerable: true,
    configurable: true,
  });
}

/**
 * The credit a receiver's flow gives the broker's sending link, as section 2.6.7 computes it: the
 * receiver's delivery-count (the initial one when the flow has none, as from a receiver that has not
 * seen the attach) plus its link-credit, less what the broker has sent, in serial arithmetic; never
 * below 0. rhea subtracts plain numbers: a flow written before the receiver saw the last transfers
 * gave negative credit, which rhea's drain then counted down one by one without end.
 */
function senderCredit(flow: SenderFlow, sent: number, initial: number): number {
  const counted = typeof flow.delivery_count === 'number' ? flow.delivery_count : initial;
  if (typeof flow.link_credit !== 'number') return 0;
  // `| 0` takes the difference modulo 2^32 as a signed number: how far the receiver's count is
  // ahead of (or, when negative, behind) the broker's.
  return Math.min(MAX_UINT, Math.max(0, flow.link_credit + ((counted - sent) | 0)));
}

/**
 * Makes a sending link take credit by `senderCredit` and give back what is left of it in one step
 * when a drain ends. Its flows say drain for as long as the peer's last flow asked for one, even once
 * the messages used the credit up: rhea says so only while it gives credit back, and a drain whose
 * flow lacks it does not end for the peer (rhea's `receiver_drained` does not fire; section 2.6.7:
 * the sender's flow carries the drain the peer last asked for).
 */
export function countSenderCredit(sender: RheaSender): void {
  wrapDeliveryCount(sender);
  const initial = sender.local.attach.initial_delivery_count ?? 0;
  const takeFlow = sender.on_flow.bind(sender);
  sender.on_flow = (frame) => {
    const flow = frame.performative;
    const credit = senderCredit(flow, sender.delivery_count, initial);
    // rhea adds the flow's delivery-count and link-credit and takes off its own count: given its own
    // count, it arrives at the credit above.
    takeFlow({
      performative: { delivery_count: sender.delivery_count, link_credit: credit, drain: flow.drain },
    });
  };
  sender._get_drain = () => {
    if (!sender._draining) return false;
    if (sender._drained && sender.credit > 0) {
      sender.delivery_count += sender.credit;
      sender.credit = 0;
    }
    return true;
  };
}

/**
 * Makes a receiving link count deliveries from the producer's initial-delivery-count, as section
 * 2.6.7 has it, within 32 bits. rhea starts every receiver at 0, so the credit the broker gave a
 * producer that starts elsewhere was, by the producer's count, none or less than none.
 */
export function countReceiverDeliveries(receiver: RheaReceiver): void {
  wrapDeliveryCount(receiver);
  receiver.delivery_count = receiver.remote.attach?.initial_delivery_count ?? 0;
}
