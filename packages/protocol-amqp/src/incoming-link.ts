import { ErrorCode, isRobustMQError, type Logger, type Message, type Principal } from '@robustmq/core';
import { AmqpRefusal, type AmqpBroker, type ResolvedAddress } from './broker.js';
import { MalformedMessageError, toStoredMessage, type Incoming } from './message-format.js';
import type { RheaDelivery, RheaReceiver } from './rhea-shapes.js';

/**
 * A link on which the broker receives (the peer's sender). Credit is granted as storage keeps
 * up: `link_credit` at first, then topped up again as stored messages free room, so a producer
 * never has more than that in flight. The top-up waits until half the window is free, so one
 * flow frame answers many messages rather than one each. `accepted` goes out only once the
 * message is durable.
 */
export class IncomingLink {
  private readonly relay = new Map<string, Promise<ResolvedAddress>>();
  private target: ResolvedAddress | null = null;
  private principal: Principal = { username: null, superuser: false };
  private open = false;
  private inFlight = 0;

  constructor(
    readonly id: string,
    /** The target address; null for the anonymous relay (each message says where in `to`). */
    readonly address: string | null,
    /** The temporary address this link's dynamic target created, which ends with the link. */
    readonly dynamicAddress: string | null,
    private readonly receiver: RheaReceiver,
    private readonly broker: AmqpBroker,
    private readonly logger: Logger,
  ) {}

  /** Starts taking messages once the target is checked (null for the anonymous relay). */
  start(target: ResolvedAddress | null, principal: Principal): void {
    this.target = target;
    this.principal = principal;
    this.open = true;
    this.receiver.add_credit(this.broker.settings.linkCredit);
  }

  /**
   * Gives back the credit of messages no longer in flight once that is half the window (or the
   * producer has none left), keeping credit plus messages in flight within `link_credit`.
   */
  private refill(): void {
    if (!this.open || !this.receiver.is_open()) return;
    const window = this.broker.settings.linkCredit;
    const credit = this.receiver.credit;
    const room = window - credit - this.inFlight;
    if (room > 0 && (room * 2 >= window || (credit === 0 && this.inFlight === 0))) {
      this.receiver.add_credit(room);
    }
  }

  get credit(): number {
    return this.receiver.credit;
  }

  get unsettled(): number {
    return this.inFlight;
  }

  close(): void {
    this.open = false;
  }

  /** A complete message: split and read (`Incoming`) or found malformed; `size` is its encoded length. */
  message(delivery: RheaDelivery, incoming: Incoming | MalformedMessageError, size: number): void {
    const { settings, metrics } = this.broker;
    // The peer sent it settled: settling it here too frees its place in the session's incoming
    // window, which rhea only gives back for deliveries settled at this end.
    if (delivery.remote_settled) delivery.update(true);
    if (!this.open) {
      delivery.release();
      return;
    }
    if (incoming instanceof MalformedMessageError) {
      this.refuse(delivery, incoming);
      this.refill();
      return;
    }
    if (size > settings.maxMessageSize) {
      metrics.badInput('message_too_large');
      this.logger.warn({ link: this.id, bytes: size }, 'message over max_message_size; link closed');
      this.open = false;
      this.receiver.close({
        condition: 'amqp:link:message-size-exceeded',
        description: `message of ${size} bytes exceeds max-message-size ${settings.maxMessageSize}`,
      });
      return;
    }
    this.inFlight++;
    const done = (error: unknown) => {
      this.inFlight--;
      // Called from the log's write loop: a failure here must not stop the other messages' answers.
      try {
        if (error === null) {
          metrics.messagesIn++;
          metrics.bytesIn += size;
          if (!delivery.remote_settled) delivery.accept();
        } else {
          this.refuse(delivery, error);
        }
        this.refill();
      } catch (failure) {
        this.logger.error({ link: this.id, err: failure }, 'answering a stored message failed');
      }
    };
    if (this.target) {
      this.store(this.target, incoming, done);
    } else {
      const to = incoming.to;
      this.relayTarget(to).then(
        (resolved) =>
          this.store(resolved, incoming, (error) => {
            // Its topic was deleted: the next message to it checks (and makes) the address again.
            if (isRobustMQError(error, ErrorCode.NotFound)) this.relay.delete(to!);
            done(error);
          }),
        (error: unknown) => done(error),
      );
    }
  }

  private store(target: ResolvedAddress, incoming: Incoming, done: (error: unknown) => void): void {
    let message: Message;
    try {
      message = toStoredMessage(target.name, incoming, Date.now());
    } catch (error) {
      done(error);
      return;
    }
    this.broker.publishThen(target, message, done);
  }

  private relayTarget(to: string | null | undefined): Promise<ResolvedAddress> {
    if (!to) {
      return Promise.reject(
        new AmqpRefusal('amqp:precondition-failed', 'a message on an anonymous link needs a "to" address'),
      );
    }
    let resolved = this.relay.get(to);
    if (!resolved) {
      resolved = (async () => {
        const address = this.broker.parse(to, []);
        await this.broker.authorize(this.principal, 'publish', address);
        await this.broker.ensure(address, this.principal);
        return address;
      })();
      if (this.relay.size > 1000) this.relay.clear();
      this.relay.set(to, resolved);
      resolved.catch(() => this.relay.delete(to));
    }
    return resolved;
  }

  private refuse(delivery: RheaDelivery, error: unknown): void {
    if (error instanceof MalformedMessageError) {
      this.broker.metrics.badInput('malformed_message');
      this.logger.warn({ link: this.id, err: error }, 'malformed message rejected');
      delivery.reject({ condition: 'amqp:decode-error', description: error.message });
    } else if (error instanceof AmqpRefusal) {
      this.logger.info({ link: this.id, condition: error.condition }, error.message);
      delivery.reject({ condition: error.condition, description: error.message });
    } else if (isRobustMQError(error, ErrorCode.TooLarge)) {
      delivery.reject({ condition: 'amqp:link:message-size-exceeded', description: error.message });
    } else if (isRobustMQError(error, ErrorCode.NotFound)) {
      // The address's topic was deleted a moment ago: the link is being detached.
      this.logger.info({ link: this.id, err: error }, 'message for a deleted address released');
      delivery.release();
    } else {
      this.logger.error({ link: this.id, err: error }, 'storing a message failed; released');
      delivery.release();
    }
  }
}
