import { ErrorCode, RobustMQError } from '@robustmq/core';

/**
 * Leader epochs per shard, as a journal server has seen them, for fencing: once a write carrying
 * epoch `e` has been accepted for a shard, or the placement has raised it to `e`, writes carrying
 * an older epoch are refused with CONFLICT. That is what stops a deposed broker, still writing under
 * the placement it used to lead, from appending after its successor (core's `ShardPlacement.epoch`
 * grows with each leader change).
 *
 * Writes without an epoch are let through: standalone nodes and tools do not track placement.
 * The fence lives in memory; after a restart it is raised again by the first write of the current
 * leader or by the node applying the placement it reads from the meta service ({@link fence}).
 */
export class EpochFence {
  readonly #epochs = new Map<string, number>();

  /** The highest epoch seen for `shard`, if any. */
  epochOf(shard: string): number | undefined {
    return this.#epochs.get(shard);
  }

  /** Raises the shard's epoch to `epoch`; a lower value changes nothing. */
  fence(shard: string, epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new RobustMQError(
        ErrorCode.InvalidArgument,
        `epoch must be a non-negative integer, got ${epoch}`,
      );
    }
    if (epoch > (this.#epochs.get(shard) ?? -1)) this.#epochs.set(shard, epoch);
  }

  /**
   * Admits a write under `epoch` (undefined: not fenced), raising the shard's epoch to it, or
   * throws CONFLICT when the shard has seen a newer one. Returns true when this was the first epoch
   * seen for the shard, so a caller whose write then finds no such shard can {@link forget} it.
   */
  admit(shard: string, epoch: number | undefined, what: string): boolean {
    if (epoch === undefined) return false;
    const seen = this.#epochs.get(shard);
    if (seen !== undefined && epoch < seen) {
      throw new RobustMQError(
        ErrorCode.Conflict,
        `${what} to shard ${shard} refused: leader epoch ${epoch} is older than epoch ${seen}`,
      );
    }
    if (seen === undefined || epoch > seen) this.#epochs.set(shard, epoch);
    return seen === undefined;
  }

  /** Forgets a deleted shard, so that a shard created again under the name starts afresh. */
  forget(shard: string): void {
    this.#epochs.delete(shard);
  }
}
