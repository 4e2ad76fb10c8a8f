import type { Segment } from './segment.js';

/**
 * Keeps the indexes of recently used sealed segments in memory, up to a byte budget shared by
 * every shard of an engine; the least recently used are dropped first and reloaded on demand.
 */
export class IndexCache {
  readonly #maxBytes: number;
  readonly #entries = new Map<Segment, number>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Marks a sealed segment's loaded indexes as just used, evicting others over budget. */
  touch(segment: Segment): void {
    const previous = this.#entries.get(segment);
    if (previous !== undefined) {
      this.#entries.delete(segment);
      this.#entries.set(segment, previous);
      return;
    }
    if (!segment.indexesLoaded) return;
    const bytes = segment.index.bytes().length + segment.timeIndex.bytes().length;
    this.#entries.set(segment, bytes);
    this.#bytes += bytes;
    for (const [oldest, size] of this.#entries) {
      if (this.#bytes <= this.#maxBytes || oldest === segment) break;
      this.#entries.delete(oldest);
      this.#bytes -= size;
      oldest.unloadIndexes();
    }
  }

  /** Forgets a segment that is being removed. */
  forget(segment: Segment): void {
    const size = this.#entries.get(segment);
    if (size === undefined) return;
    this.#entries.delete(segment);
    this.#bytes -= size;
  }
}
