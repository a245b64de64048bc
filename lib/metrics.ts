/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format (version 0.0.4). Every process keeps its own registry; nothing global.
 */

type Labels = Readonly<Record<string, string>>

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort()
  if (keys.length === 0) return ""
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k] ?? "")}"`).join(",")}}`
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
}

abstract class Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
  ) {}
  abstract lines(): string[]
}

export class Counter extends Metric {
  private readonly values = new Map<string, number>()
  constructor(name: string, help: string) {
    super(name, help, "counter")
  }
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0
  }
  lines(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k} ${v}`)
  }
}

export class Gauge extends Metric {
  private readonly values = new Map<string, number>()
  constructor(name: string, help: string) {
    super(name, help, "gauge")
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value)
  }
  add(by: number, labels: Labels = {}): void {
    const key = labelKey(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
  lines(): string[] {
    return [...this.values].map(([k, v]) => `${this.name}${k} ${v}`)
  }
}

/** Buckets in seconds, as Prometheus convention asks. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class Histogram extends Metric {
  private readonly series = new Map<
    string,
    { labels: Labels; counts: number[]; sum: number; count: number }
  >()
  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(name, help, "histogram")
  }
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels)
    let s = this.series.get(key)
    if (s === undefined) {
      s = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 }
      this.series.set(key, s)
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] as number)) s.counts[i] = (s.counts[i] ?? 0) + 1
    s.sum += value
    s.count++
  }
  lines(): string[] {
    const out: string[] = []
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: String(b) })} ${s.counts[i]}`)
      })
      out.push(`${this.name}_bucket${labelKey({ ...s.labels, le: "+Inf" })} ${s.count}`)
      out.push(`${this.name}_sum${labelKey(s.labels)} ${s.sum}`)
      out.push(`${this.name}_count${labelKey(s.labels)} ${s.count}`)
    }
    return out
  }
}

export class Registry {
  private readonly metrics: Metric[] = []
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help))
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help))
  }
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets))
  }
  private add<M extends Metric>(metric: M): M {
    this.metrics.push(metric)
    return metric
  }
  /** The text exposition format; serve with content-type PROMETHEUS_CONTENT_TYPE. */
  render(): string {
    const out: string[] = []
    for (const m of this.metrics)
      out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.lines())
    return `${out.join("\n")}\n`
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
