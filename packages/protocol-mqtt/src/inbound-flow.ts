/**
 * The receiver side of QoS 2 for one session (MQTT 5 section 4.3.3, method B's state): the
 * packet identifiers of PUBLISH packets that were accepted and answered with PUBREC but not yet
 * released. A PUBLISH repeating such an identifier is a duplicate and is not delivered again.
 */
export class InboundFlow {
  /** Made at the first QoS 2 PUBLISH: most sessions never see one. */
  private awaitingRelease: Set<number> | null = null;

  /** Identifiers waiting for PUBREL. */
  get size(): number {
    return this.awaitingRelease?.size ?? 0;
  }

  /** Whether a QoS 2 PUBLISH with `packetId` was already accepted and awaits its PUBREL. */
  isDuplicate(packetId: number): boolean {
    return this.awaitingRelease?.has(packetId) ?? false;
  }

  /** Records an accepted QoS 2 PUBLISH. */
  accept(packetId: number): void {
    (this.awaitingRelease ??= new Set()).add(packetId);
  }

  /** A PUBREL arrived; returns whether the identifier was known (MQTT 5 answers 0x92 if not). */
  release(packetId: number): boolean {
    return this.awaitingRelease?.delete(packetId) ?? false;
  }

  clear(): void {
    this.awaitingRelease = null;
  }
}
