import type { Counter, Histogram, Registry } from "../../lib/metrics"

export type ConnectorMetrics = {
  readonly batches: Counter
  readonly messages: Counter
  readonly retries: Counter
  readonly deadLettered: Counter
  readonly batchSeconds: Histogram
}

export function connectorMetrics(registry: Registry): ConnectorMetrics {
  return {
    batches: registry.counter(
      "cove_connector_batches_total",
      "Batches POSTed to event functions, by outcome",
    ),
    messages: registry.counter("cove_connector_messages_total", "Messages an event function handled"),
    retries: registry.counter("cove_connector_retries_total", "Batch retries after a failure"),
    deadLettered: registry.counter(
      "cove_connector_dead_lettered_total",
      "Messages moved to the dead-letter stream",
    ),
    batchSeconds: registry.histogram(
      "cove_connector_batch_seconds",
      "Time to POST one batch and get the answer",
    ),
  }
}
