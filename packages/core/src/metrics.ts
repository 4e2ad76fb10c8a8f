/** Label values of one time series, e.g. `{ protocol: 'mqtt', listener: 'tcp' }`. */
export type MetricLabels = Readonly<Record<string, string | number>>;

export interface MetricOptions {
  /** Prometheus name, `robustmq_` prefixed by convention, e.g. `robustmq_mqtt_messages_in_total`. */
  name: string;
  help: string;
  labelNames?: readonly string[];
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, in the metric's unit (seconds for latencies). */
  buckets?: readonly number[];
}

export interface Counter {
  inc(labels?: MetricLabels, value?: number): void;
}

export interface Gauge {
  set(labels: MetricLabels | undefined, value: number): void;
  inc(labels?: MetricLabels, value?: number): void;
  dec(labels?: MetricLabels, value?: number): void;
}

export interface Histogram {
  observe(labels: MetricLabels | undefined, value: number): void;
}

/**
 * Where packages register their metrics. Registering the same name twice returns the same
 * metric, so a plugin started twice in one process (tests) does not fail.
 */
export interface Metrics {
  counter(options: MetricOptions): Counter;
  gauge(options: MetricOptions): Gauge;
  histogram(options: HistogramOptions): Histogram;
}
