import type {
  Counter,
  Gauge,
  Histogram,
  HistogramOptions,
  MetricLabels,
  MetricOptions,
  Metrics,
} from '@robustmq/core';
import * as prom from 'prom-client';

/**
 * The node's metrics on prom-client. Each node has its own registry (two nodes in one process, as in
 * tests, do not collide); process metrics (heap, RSS, event-loop lag) are included.
 */
export class NodeMetrics implements Metrics {
  readonly registry = new prom.Registry();

  constructor(defaultLabels: Record<string, string>) {
    this.registry.setDefaultLabels(defaultLabels);
    prom.collectDefaultMetrics({ register: this.registry, prefix: 'robustmq_' });
  }

  counter(options: MetricOptions): Counter {
    const metric = this.existing(options.name, prom.Counter) ?? new prom.Counter({ ...this.base(options) });
    return {
      inc: (labels?: MetricLabels, value = 1) => (labels ? metric.inc(labels, value) : metric.inc(value)),
    };
  }

  gauge(options: MetricOptions): Gauge {
    const metric = this.existing(options.name, prom.Gauge) ?? new prom.Gauge({ ...this.base(options) });
    return {
      set: (labels, value) => (labels ? metric.set(labels, value) : metric.set(value)),
      inc: (labels?: MetricLabels, value = 1) => (labels ? metric.inc(labels, value) : metric.inc(value)),
      dec: (labels?: MetricLabels, value = 1) => (labels ? metric.dec(labels, value) : metric.dec(value)),
    };
  }

  histogram(options: HistogramOptions): Histogram {
    const metric =
      this.existing(options.name, prom.Histogram) ??
      new prom.Histogram({
        ...this.base(options),
        ...(options.buckets ? { buckets: [...options.buckets] } : {}),
      });
    return {
      observe: (labels, value) => (labels ? metric.observe(labels, value) : metric.observe(value)),
    };
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  private base(options: MetricOptions) {
    return {
      name: options.name,
      help: options.help,
      labelNames: [...(options.labelNames ?? [])],
      registers: [this.registry],
    };
  }

  private existing<T>(name: string, kind: abstract new (...args: never[]) => T): T | undefined {
    const metric = this.registry.getSingleMetric(name);
    if (metric === undefined) return undefined;
    if (!(metric instanceof kind)) throw new Error(`metric ${name} is already registered as another type`);
    return metric;
  }
}

/**
 * How long a scrape waits for a value that needs another node (the meta group, a journal node).
 * Prometheus gives up on a whole scrape after 10 s by default, so one unreachable node must not
 * hold up the rest.
 */
export const SCRAPE_WAIT_MS = 2000;

/** `value`'s result, or undefined if it fails or takes longer than `ms`. */
export async function within<T>(value: Promise<T>, ms = SCRAPE_WAIT_MS): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([value.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
