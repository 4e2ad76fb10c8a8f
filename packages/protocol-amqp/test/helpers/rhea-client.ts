import rhea, {
  type Connection,
  type ConnectionOptions,
  type Delivery,
  type EventContext,
  type Message,
  type Receiver,
  type ReceiverOptions,
  type Sender,
  type SenderOptions,
} from 'rhea';

export type Outcome = 'accepted' | 'released' | 'rejected' | 'modified';

/** A received message with its delivery, for tests to settle as they like. */
export interface Received {
  message: Message;
  delivery: Delivery;
}

export class TestReceiver {
  readonly inbox: Received[] = [];
  closedWith: { condition: string; description: string } | null = null;

  constructor(readonly link: Receiver) {
    link.on('message', (context: EventContext) => {
      this.inbox.push({ message: context.message!, delivery: context.delivery! });
    });
    link.on('receiver_close', (context: EventContext) => {
      const error = context.receiver?.error as { condition: string; description: string } | undefined;
      this.closedWith = error ?? { condition: '', description: '' };
    });
  }

  /** Waits until `count` messages have arrived in total. */
  async waitFor(count: number, timeoutMs = 5000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.inbox.length < count) {
      if (Date.now() > deadline) throw new Error(`got ${this.inbox.length} of ${count} messages`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.inbox.slice(0, count);
  }

  async waitClosed(timeoutMs = 5000): Promise<{ condition: string; description: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closedWith) {
      if (Date.now() > deadline) throw new Error('receiver not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closedWith;
  }

  bodies(): unknown[] {
    return this.inbox.map((r) => r.message.body as unknown);
  }
}

export class TestSender {
  private readonly waiting = new Map<Delivery, (outcome: { outcome: Outcome; state: unknown }) => void>();
  closedWith: { condition: string; description: string } | null = null;

  constructor(readonly link: Sender) {
    for (const outcome of ['accepted', 'released', 'rejected', 'modified'] as const) {
      link.on(outcome, (context: EventContext) => {
        const resolve = this.waiting.get(context.delivery!);
        this.waiting.delete(context.delivery!);
        resolve?.({ outcome, state: context.delivery!.remote_state });
      });
    }
    link.on('sender_close', (context: EventContext) => {
      const error = context.sender?.error as { condition: string; description: string } | undefined;
      this.closedWith = error ?? { condition: '', description: '' };
    });
  }

  /** Waits for credit, sends, and resolves with the broker's outcome. */
  async send(message: Message, timeoutMs = 5000): Promise<{ outcome: Outcome; state: unknown }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.link.sendable()) {
      if (this.closedWith) throw new Error(`sender closed: ${this.closedWith.condition}`);
      if (Date.now() > deadline) throw new Error('no credit');
      await new Promise((r) => setTimeout(r, 5));
    }
    const delivery = this.link.send(message);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no outcome')), timeoutMs);
      this.waiting.set(delivery, (result) => {
        clearTimeout(timer);
        resolve(result);
      });
    });
  }

  async waitClosed(timeoutMs = 5000): Promise<{ condition: string; description: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closedWith) {
      if (Date.now() > deadline) throw new Error('sender not closed');
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.closedWith;
  }
}

/** A rhea client connection with promise helpers. */
export class TestClient {
  private constructor(readonly connection: Connection) {}

  static connect(port: number, options: Partial<ConnectionOptions> = {}): Promise<TestClient> {
    const container = rhea.create_container();
    const connection = container.connect({
      host: '127.0.0.1',
      port,
      reconnect: false,
      ...options,
    } as ConnectionOptions);
    return new Promise((resolve, reject) => {
      connection.once('connection_open', () => resolve(new TestClient(connection)));
      connection.once('connection_error', (context: EventContext) =>
        reject(new Error(`connection error: ${JSON.stringify(context.connection.error)}`)),
      );
      connection.once('disconnected', (context: EventContext) =>
        reject(new Error(`disconnected: ${String(context.error ?? 'closed')}`)),
      );
      connection.on('error', () => {});
    });
  }

  async sender(target: string | null, options: Partial<SenderOptions> = {}): Promise<TestSender> {
    const link = this.connection.open_sender({
      target: target === null ? {} : { address: target },
      ...options,
    });
    const sender = new TestSender(link);
    await new Promise<void>((resolve) => link.once('sender_open', () => resolve()));
    return sender;
  }

  async receiver(
    source: string | { dynamic: true } | Record<string, unknown>,
    options: Partial<ReceiverOptions> = {},
  ): Promise<TestReceiver> {
    const link = this.connection.open_receiver({
      source: typeof source === 'string' ? { address: source } : source,
      autoaccept: true,
      ...options,
    } as ReceiverOptions);
    const receiver = new TestReceiver(link);
    await new Promise<void>((resolve) => link.once('receiver_open', () => resolve()));
    return receiver;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.connection.is_closed()) {
        resolve();
        return;
      }
      this.connection.once('connection_close', () => resolve());
      this.connection.once('disconnected', () => resolve());
      this.connection.close();
      setTimeout(resolve, 1000);
    });
  }
}
