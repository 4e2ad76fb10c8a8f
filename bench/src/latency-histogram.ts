/**
 * A latency histogram with about 1% resolution, small enough to send between processes and add
 * up: bucket i holds values whose natural log of (microseconds + 1), times 100, rounds to i.
 */
const STEPS_PER_E = 100;
/** Up to e^20 µs (about 8 minutes): far past any delay a run can see. */
const BUCKETS = 20 * STEPS_PER_E;

export class LatencyHistogram {
  readonly counts = new Float64Array(BUCKETS);
  total = 0;

  /** Records one latency given in nanoseconds. */
  record(nanoseconds: number): void {
    const micros = nanoseconds > 0 ? nanoseconds / 1000 : 0;
    const index = Math.min(BUCKETS - 1, Math.round(Math.log1p(micros) * STEPS_PER_E));
    this.counts[index] = (this.counts[index] ?? 0) + 1;
    this.total++;
  }

  clear(): void {
    this.counts.fill(0);
    this.total = 0;
  }

  /** The non-empty buckets as [index, count] pairs, to send to another process. */
  toPairs(): [number, number][] {
    const pairs: [number, number][] = [];
    this.counts.forEach((count, index) => {
      if (count > 0) pairs.push([index, count]);
    });
    return pairs;
  }

  addPairs(pairs: readonly (readonly [number, number])[]): void {
    for (const [index, count] of pairs) {
      this.counts[index] = (this.counts[index] ?? 0) + count;
      this.total += count;
    }
  }

  /** The latency in milliseconds below which `fraction` of the values fall; null when empty. */
  percentileMs(fraction: number): number | null {
    if (this.total === 0) return null;
    const rank = fraction * this.total;
    let seen = 0;
    for (let index = 0; index < BUCKETS; index++) {
      seen += this.counts[index] ?? 0;
      if (seen >= rank) return Math.expm1(index / STEPS_PER_E) / 1000;
    }
    return Math.expm1((BUCKETS - 1) / STEPS_PER_E) / 1000;
  }
}
