/** Creates, when missing, the JetStream streams and durable consumers that stack.yml asks for. */
import { AckPolicy, DeliverPolicy, type JetStreamManager, nanos, RetentionPolicy, StorageType } from "nats"
import { DEAD_LETTER_STREAM, DEAD_LETTER_SUBJECTS, partitionSubject } from "../../lib/protocol/subjects"
import type { FunctionSpec, TopicSpec } from "../stack"

/** JetStream's "not found" API error; anything else is a real failure. */
function isNotFound(err: unknown): boolean {
  return (
    (err as { api_error?: { err_code?: number } }).api_error?.err_code === 10059 ||
    (err as { api_error?: { err_code?: number } }).api_error?.err_code === 10014 ||
    (err as { code?: string }).code === "404"
  )
}

export function partitionSubjects(topic: TopicSpec): string[] {
  return Array.from({ length: topic.partitions }, (_, p) => partitionSubject(topic.subject, p))
}

/**
 * Creates the stream, or adds the partitions stack.yml asks for that it lacks. Answers how many
 * partitions the stream has: publishers hash over that many (nats-partitions.ts), so every one
 * of them must be served, even when stack.yml now asks for fewer (partitions can be added, not
 * taken away: a conversation's pending messages stay on the partition they were hashed to).
 */
export async function ensureStream(jsm: JetStreamManager, topic: TopicSpec): Promise<number> {
  // Exactly one subject per partition: a publish to a partition that does not exist fails
  // loudly (no stream answers) instead of being stored where no consumer reads it.
  const subjects = partitionSubjects(topic)
  try {
    const info = await jsm.streams.info(topic.stream)
    const missing = subjects.filter((s) => !info.config.subjects.includes(s))
    if (missing.length > 0)
      await jsm.streams.update(topic.stream, {
        ...info.config,
        subjects: [...new Set([...info.config.subjects, ...subjects])],
      })
    return Math.max(subjects.length, info.config.subjects.length)
  } catch (err) {
    if (!isNotFound(err)) throw err
    await jsm.streams.add({
      name: topic.stream,
      subjects,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: topic.replicas,
      max_age: nanos(topic.maxAgeMs),
      // The dedup window behind idempotent sends (Nats-Msg-Id); PostgreSQL covers beyond it.
      duplicate_window: nanos(2 * 60_000),
    })
    return subjects.length
  }
}

export function consumerName(fn: FunctionSpec, partition: number): string {
  return `${fn.name}-p${partition}`
}

/**
 * Messages the server may have handed out unacknowledged: the batch being worked on plus the
 * next ones buffered behind it. Order does not rest on this limit (one worker per partition
 * takes batches in stream order, and a redelivered message is a duplicate the function drops);
 * a limit of exactly one batch would make the server refuse pulls while a batch is out.
 */
export function maxAckPending(topic: TopicSpec): number {
  return topic.batchSize * 4
}

export async function ensureConsumer(
  jsm: JetStreamManager,
  fn: FunctionSpec & { topic: TopicSpec },
  partition: number,
): Promise<string> {
  const durable = consumerName(fn, partition)
  const settings = {
    ack_wait: nanos(fn.topic.ackWaitMs),
    max_ack_pending: maxAckPending(fn.topic),
  }
  const create = (from: number) =>
    jsm.consumers.add(fn.topic.stream, {
      durable_name: durable,
      filter_subject: partitionSubject(fn.topic.subject, partition),
      ...(from > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from }
        : { deliver_policy: DeliverPolicy.All }),
      // Every message is acked on its own. With AckAll, one ack per batch also acknowledged
      // whatever the server had sent before it, so messages lost on their way to a worker that
      // died (or whose connection dropped) were acknowledged unseen by its successor's first ack.
      ack_policy: AckPolicy.Explicit,
      // Never let the server give up on a message: the connector dead-letters it explicitly.
      max_deliver: -1,
      ...settings,
    })
  try {
    const info = await jsm.consumers.info(fn.topic.stream, durable)
    if (info.config.ack_policy !== AckPolicy.Explicit) {
      // Made by an earlier Cove with AckAll, which cannot be changed in place: made again from
      // its ack floor. What was delivered but not acked comes again (the functions are idempotent).
      await jsm.consumers.delete(fn.topic.stream, durable)
      // Made again at once: a consumer recreated later, from the start, would replay the stream.
      for (let attempt = 1; ; attempt++) {
        try {
          await create(info.ack_floor.stream_seq + 1)
          return durable
        } catch (err) {
          if (attempt >= 5) throw err
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
        }
      }
    }
    // Annotations may have changed since the consumer was made: these two can be updated in place.
    if (
      info.config.ack_wait !== settings.ack_wait ||
      info.config.max_ack_pending !== settings.max_ack_pending
    ) {
      await jsm.consumers.update(fn.topic.stream, durable, settings)
    }
  } catch (err) {
    if (!isNotFound(err)) throw err
    await create(1)
  }
  return durable
}

export async function ensureDeadLetterStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.info(DEAD_LETTER_STREAM)
  } catch (err) {
    if (!isNotFound(err)) throw err
    await jsm.streams.add({
      name: DEAD_LETTER_STREAM,
      subjects: [DEAD_LETTER_SUBJECTS],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(30 * 24 * 3_600_000),
    })
  }
}
