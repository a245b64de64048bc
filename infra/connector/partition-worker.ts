/**
 * Feeds one partition of an event function: pulls what is waiting (up to a batch), POSTs it,
 * and acks only after a 2xx. A failed batch is retried with backoff while its messages are
 * kept alive; after max-deliver failures it is split so the failing message can be isolated
 * and dead-lettered, never dropped. One batch at a time, so order within the partition holds.
 */
import { type Consumer, type JetStreamClient, type JsMsg, headers as natsHeaders } from "nats"
import type { Logger } from "../../lib/log"
import { HEADERS, subjects } from "../../lib/protocol/subjects"
import type { FunctionSpec, TopicSpec } from "../stack"
import { type BatchMessage, batchMessage, type InvokeOutcome, invokeBatch } from "./invoke"
import type { ConnectorMetrics } from "./metrics"

export type WorkerOptions = {
  readonly fn: FunctionSpec & { topic: TopicSpec }
  readonly partition: number
  readonly consumer: Consumer
  readonly durable: string
  readonly js: JetStreamClient
  readonly functionUrl: () => string | undefined
  readonly metrics: ConnectorMetrics
  readonly log: Logger
}

export class PartitionWorker {
  private stopped = false
  private readonly abort = new AbortController()
  private iterator: Awaited<ReturnType<Consumer["consume"]>> | undefined
  private readonly labels: { function: string; partition: string }

  constructor(private readonly o: WorkerOptions) {
    this.labels = { function: o.fn.name, partition: String(o.partition) }
  }

  /**
   * Runs until stop(); resolves when the loop has ended. Receiving and processing are two
   * loops: whatever arrived while a batch was being POSTed becomes the next batch, so batches
   * grow with the load and a lone message is not held back waiting for company.
   */
  async run(): Promise<void> {
    // Two batches' worth in flight: the next batch is already here when the current one is acked.
    const messages = await this.o.consumer.consume({ max_messages: this.o.fn.topic.batchSize * 2 })
    this.iterator = messages
    const queue: JsMsg[] = []
    let wake: (() => void) | undefined
    let ended = false
    const receiving = (async () => {
      try {
        for await (const msg of messages) {
          queue.push(msg)
          wake?.()
        }
      } finally {
        ended = true
        wake?.()
      }
    })()
    while (!this.stopped) {
      if (queue.length === 0) {
        if (ended) break
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
        continue
      }
      // Let messages that are already on their way join this batch.
      await new Promise((resolve) => setImmediate(resolve))
      const { batchSize, batchWaitMs } = this.o.fn.topic
      // A follower may wait for a fuller batch (its cost is mostly per batch, not per message).
      if (batchWaitMs > 0 && queue.length < batchSize && !ended) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, batchWaitMs)
          wake = () => {
            if (queue.length < batchSize && !ended) return
            clearTimeout(timer)
            resolve()
          }
        })
        wake = undefined
      }
      await this.process(queue.splice(0, this.o.fn.topic.batchSize))
    }
    // Hand back what we hold, including what the iterator still yields after its stop, so that
    // the next worker gets it at once and in order instead of after ack-wait.
    this.iterator.stop()
    await receiving
    for (const m of queue.splice(0)) m.nak()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.abort.abort()
    this.iterator?.stop()
  }

  private async process(msgs: readonly JsMsg[]): Promise<void> {
    const { valid, invalid } = decode(msgs)
    for (const m of invalid) await this.deadLetter(m, "INVALID_EVENT_JSON: the message data is not JSON")
    if (valid.length === 0) {
      ackAll(msgs)
      return
    }
    const priorDeliveries = Math.max(...valid.map((b) => b.delivered)) - 1
    const outcome = await this.attempt(valid, priorDeliveries)
    if (outcome.ok) {
      await this.finish(valid, outcome)
      ackAll(msgs)
      return
    }
    if (this.stopped) {
      for (const m of msgs) m.nak()
      return
    }
    // The batch keeps failing: find out which message is at fault, one at a time, in order.
    this.o.log.warn(
      { ...this.labels, size: valid.length, reason: outcome.reason },
      "batch failed; isolating messages",
    )
    for (const item of valid) {
      const single = await this.attempt([item], item.delivered - 1)
      if (this.stopped) {
        for (const m of msgs) m.nak()
        return
      }
      if (single.ok) await this.finish([item], single)
      else await this.deadLetter(item.msg, single.reason)
      item.msg.ack()
    }
    // The invalid ones, dead-lettered above.
    for (const m of invalid) m.ack()
  }

  /** POSTs until success, a non-retryable answer, max-deliver attempts, or stop. */
  private async attempt(batch: readonly BatchMessage[], priorAttempts: number): Promise<InvokeOutcome> {
    const { topic } = this.o.fn
    for (let attempt = Math.max(0, priorAttempts); ; attempt++) {
      const started = performance.now()
      const outcome = await invokeBatch({
        url: this.o.functionUrl(),
        functionName: this.o.fn.name,
        stream: topic.stream,
        consumer: this.o.durable,
        batch,
        timeoutMs: this.o.fn.execTimeoutMs + 5_000,
      })
      this.o.metrics.batchSeconds.observe((performance.now() - started) / 1000, { function: this.o.fn.name })
      this.o.metrics.batches.inc({ ...this.labels, outcome: outcome.ok ? "ok" : "failed" })
      if (outcome.ok) return outcome
      this.o.log.warn(
        { ...this.labels, attempt: attempt + 1, size: batch.length, reason: outcome.reason },
        "batch attempt failed",
      )
      if (!outcome.retryable || attempt + 1 >= topic.maxDeliver || this.stopped) return outcome
      this.o.metrics.retries.inc(this.labels)
      const delay = topic.backoffMs[Math.min(attempt, topic.backoffMs.length - 1)] ?? 1000
      await this.keepAliveFor(batch, delay)
    }
  }

  /** Waits `ms`, telling JetStream the messages are still being worked on. */
  private async keepAliveFor(batch: readonly BatchMessage[], ms: number): Promise<void> {
    const step = Math.max(100, Math.floor(this.o.fn.topic.ackWaitMs / 3))
    for (let left = ms; left > 0 && !this.stopped; left -= step) {
      for (const b of batch) b.msg.working()
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(step, left))
        this.abort.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer)
            resolve()
          },
          { once: true },
        )
      })
    }
    for (const b of batch) b.msg.working()
  }

  private async finish(batch: readonly BatchMessage[], outcome: InvokeOutcome & { ok: true }): Promise<void> {
    this.o.metrics.messages.inc(this.labels, batch.length)
    for (const r of outcome.result.rejected) {
      const item = batch.find((b) => b.msg.seq === r.seq)
      if (item !== undefined) await this.deadLetter(item.msg, `${r.code}: ${r.message}`)
    }
  }

  /** Stores the message on the dead-letter stream (awaiting the PubAck) before it is acked. */
  private async deadLetter(msg: JsMsg, reason: string): Promise<void> {
    const h = natsHeaders()
    if (msg.headers !== undefined) for (const [k, v] of msg.headers) for (const value of v) h.append(k, value)
    h.set(HEADERS.dlqFunction, this.o.fn.name)
    h.set(HEADERS.dlqReason, reason.slice(0, 1000))
    h.set(HEADERS.dlqStream, this.o.fn.topic.stream)
    h.set(HEADERS.dlqSequence, String(msg.seq))
    h.set(HEADERS.dlqSubject, msg.subject)
    await this.o.js.publish(subjects.deadLetter(this.o.fn.name), msg.data, { headers: h })
    this.o.metrics.deadLettered.inc({ function: this.o.fn.name, reason: reason.split(":")[0] ?? "unknown" })
    this.o.log.error({ ...this.labels, seq: msg.seq, reason }, "message dead-lettered")
  }
}

/** Each message its own ack (the consumers' ack policy is explicit: streams.ts says why). */
function ackAll(msgs: readonly JsMsg[]): void {
  for (const m of msgs) m.ack()
}

function decode(msgs: readonly JsMsg[]): { valid: BatchMessage[]; invalid: JsMsg[] } {
  const valid: BatchMessage[] = []
  const invalid: JsMsg[] = []
  for (const msg of msgs) {
    const item = batchMessage(msg)
    // Not JSON: no function of ours can use it; it is dead-lettered by the caller.
    if (item === undefined) invalid.push(msg)
    else valid.push(item)
  }
  return { valid, invalid }
}
