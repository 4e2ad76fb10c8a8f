/**
 * A `Metrics` registry that keeps totals in memory, so a run can report how many fsyncs an engine
 * did and how long they took, from the engine's own metrics.
 */
import type { Counter, Gauge, Histogram, MetricLabels, Metrics } from '@robustmq/core';

/** `name` or `name{a="x",b="y"}`, labels in the order given. */
export function seriesKey(name: string, labels?: MetricLabels): string {
  if (labels === undefined) return name;
  const pairs = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  return pairs.length === 0 ? name : `${name}{${pairs.join(',')}}`;
}

export class RecordingMetrics implements Metrics {
  readonly #counters = new Map<string, number>();
  readonly #histograms = new Map<string, { count: number; sum: number }>();

  counter(options: { name: string }): Counter {
    return {
      inc: (labels, value = 1) => {
        const key = seriesKey(options.name, labels);
        this.#counters.set(key, (this.#counters.get(key) ?? 0) + value);
      },
    };
  }

  gauge(): Gauge {
    return { set: () => {}, inc: () => {}, dec: () => {} };
  }

  histogram(options: { name: string }): Histogram {
    return {
      observe: (labels, value) => {
        const key = seriesKey(options.name, labels);
        const totals = this.#histograms.get(key) ?? { count: 0, sum: 0 };
        totals.count++;
        totals.sum += value;
        this.#histograms.set(key, totals);
      },
    };
  }

  /** The total of a counter series; 0 when it was never incremented. */
  counterTotal(key: string): number {
    return this.#counters.get(key) ?? 0;
  }

  /** Observations and their sum for a histogram series. */
  histogramTotals(key: string): { count: number; sum: number } {
    return this.#histograms.get(key) ?? { count: 0, sum: 0 };
  }
}
