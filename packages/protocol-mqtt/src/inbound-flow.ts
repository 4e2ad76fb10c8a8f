/**
 * The receiver side of QoS 2 for one session (MQTT 5 section 4.3.3): the packet identifiers of
 * PUBLISH packets that were accepted but not yet released, each with the routing of its message
 * (settled once every queue it went to holds it durably). A PUBLISH repeating such an identifier
 * is a duplicate: it is not routed again, and its PUBREC waits for the first one's routing.
 */
export class InboundFlow {
  /** Made at the first QoS 2 PUBLISH: most sessions never see one. */
  private awaitingRelease: Map<number, Promise<void> | null> | null = null;

  /** Identifiers waiting for PUBREL. */
  get size(): number {
    return this.awaitingRelease?.size ?? 0;
  }

  /** Whether a QoS 2 PUBLISH with `packetId` was already accepted and awaits its PUBREL. */
  isDuplicate(packetId: number): boolean {
    return this.awaitingRelease?.has(packetId) ?? false;
  }

  /** The routing of an accepted message; null once done, or when nothing had to be stored. */
  routing(packetId: number): Promise<void> | null {
    return this.awaitingRelease?.get(packetId) ?? null;
  }

  /** Records an accepted QoS 2 PUBLISH, with its routing when that is still under way. */
  accept(packetId: number, routing: Promise<void> | null = null): void {
    (this.awaitingRelease ??= new Map()).set(packetId, routing);
  }

  /** The message of `packetId` is routed: a repeat of it can be answered at once. */
  routed(packetId: number, routing: Promise<void>): void {
    if (this.awaitingRelease?.get(packetId) === routing) this.awaitingRelease.set(packetId, null);
  }

  /** A PUBREL arrived; returns whether the identifier was known (MQTT 5 answers 0x92 if not). */
  release(packetId: number): boolean {
    return this.awaitingRelease?.delete(packetId) ?? false;
  }

  clear(): void {
    this.awaitingRelease = null;
  }
}
