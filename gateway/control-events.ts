/**
 * Membership changes and revocations, which an edge must not miss: a member removed from a
 * conversation would keep receiving it, a disabled user would keep their sockets. Publishers
 * send them as core NATS (`subjects.userMembership`, `subjects.userRevoked`); the JetStream
 * stream COVE_CONTROL keeps them for a short while, and each edge reads it with one ordered
 * consumer. After a dropped connection nats.js resumes (or recreates) that consumer after the
 * last stream sequence it delivered, so what was published meanwhile arrives late, in order,
 * instead of never. NATS 2.9 allows one filter subject per consumer: the stream holds only these
 * two kinds, so the consumer reads all of it and the subject says which kind each event is.
 */
import {
  AckPolicy,
  ConsumerEvents,
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "nats"
import type { Logger } from "../lib/log"
import { CONTROL_STREAM, CONTROL_SUBJECTS, USER_REVOKED_SUBJECTS } from "../lib/protocol/subjects"

export type ControlHandlers = {
  /** `cove.user.<user>.membership` */
  readonly membership: (subject: string, data: Uint8Array) => void
  /**
   * `cove.user.<user>.revoked`. `publishedAt` (ms) is given for the revocations replayed at
   * start, which were published before this edge was there.
   */
  readonly revoked: (subject: string, data: Uint8Array, publishedAt?: number) => void
  /**
   * Events were lost before this edge read them (they expired while it was cut off from NATS
   * for longer than the stream keeps them, or the stream was deleted): what it knows of its
   * sockets' memberships may be stale, and only loading them again makes it right.
   */
  readonly lost: (detail: { expected: number; got: number }) => void
}

export type ControlEvents = {
  /**
   * Resolves true once every control event stored before the call has been handled; false
   * after `timeoutMs`, or if the stream cannot be read now.
   */
  caughtUp(timeoutMs: number): Promise<boolean>
  /** Stops reading; resolves once the consumer has stopped. */
  stop(): Promise<void>
}

const API_NOT_FOUND = [10059, 10014]
const API_NAME_IN_USE = 10058

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } }).api_error?.err_code
}

/**
 * Creates the stream when missing and answers its last sequence. A stream that exists keeps
 * its settings (another edge, or the operator, made it; edges rolled out with a new max age must
 * not fight older ones over it), except that it gains any of CONTROL_SUBJECTS it lacks: without
 * them events of that kind would not be kept at all.
 */
export async function ensureControlStream(
  jsm: JetStreamManager,
  maxAgeMs: number,
  log: Logger,
): Promise<number> {
  const wanted: Partial<StreamConfig> & { name: string } = {
    name: CONTROL_STREAM,
    subjects: [...CONTROL_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(maxAgeMs),
    // Publishers name each event (the control outbox's id, nats-control.ts). A copy that a
    // publisher cut off from NATS held in its buffer and sends long after the relay published
    // the event and newer ones is dropped, instead of undoing them, as long as it is this late.
    duplicate_window: nanos(maxAgeMs),
  }
  for (let attempt = 0; ; attempt++) {
    try {
      const info = await jsm.streams.info(CONTROL_STREAM)
      const missing = CONTROL_SUBJECTS.filter((s) => !info.config.subjects.includes(s))
      if (missing.length > 0) {
        log.warn({ stream: CONTROL_STREAM, missing }, "control stream lacks subjects; adding them")
        await jsm.streams.update(CONTROL_STREAM, {
          ...info.config,
          subjects: [...info.config.subjects, ...missing],
        })
      }
      if (info.config.max_age !== wanted.max_age || info.config.storage !== wanted.storage)
        log.warn(
          {
            stream: CONTROL_STREAM,
            maxAgeMs: info.config.max_age / 1e6,
            storage: info.config.storage,
            wantedMaxAgeMs: maxAgeMs,
          },
          "the control stream exists with other settings; keeping them",
        )
      return info.state.last_seq
    } catch (err) {
      if (!API_NOT_FOUND.includes(apiErrorCode(err) ?? 0)) throw err
    }
    try {
      const created = await jsm.streams.add(wanted)
      log.info({ stream: CONTROL_STREAM, maxAgeMs }, "control stream created")
      return created.state.last_seq
    } catch (err) {
      // Another edge created it between our look and our add: read theirs, once.
      if (apiErrorCode(err) !== API_NAME_IN_USE || attempt > 0) throw err
    }
  }
}

/**
 * Starts reading after the stream's last event (an edge's own start replays nothing, as with
 * the core subscriptions before: it has no sockets yet, and a connecting user's memberships are
 * loaded fresh) and keeps reading, in stream order, until `stop`. A consumer that ends or fails
 * is logged and replaced after a growing delay, from the sequence after the last one handled.
 */
export async function followControlEvents(o: {
  nc: NatsConnection
  maxAgeMs: number
  /**
   * Revocations published this long before the start are handed to `handlers.revoked` first:
   * the tokens they revoked may still be valid, and this edge must refuse them too.
   */
  replayRevokedMs: number
  handlers: ControlHandlers
  log: Logger
}): Promise<ControlEvents> {
  const jsm = await o.nc.jetstreamManager()
  const js = o.nc.jetstream()
  const log = o.log.child({ stream: CONTROL_STREAM })
  const last = await ensureControlStream(jsm, o.maxAgeMs, log)
  const replayed = await replayRevocations(jsm, js, last, o.replayRevokedMs, o.handlers.revoked)
  if (replayed > 0) log.info({ replayed }, "revocations published before this edge started replayed")
  let next = last + 1
  let stopped = false
  let current: ConsumerMessages | undefined = await open(js, next, log)
  let wake: (() => void) | undefined
  // Callers of caughtUp, each waiting for `next` to pass the stream's last sequence at its call.
  const waiters = new Set<{ last: number; done: (ok: boolean) => void }>()
  const settle = () => {
    for (const w of waiters) if (next > w.last) w.done(true)
  }

  // After a reconnect the consumer resumes after the last event handled; if the stream no longer
  // has the next one (it expired meanwhile), say so now, not at the next event, which may be far.
  // Ends with the connection.
  void (async () => {
    for await (const s of o.nc.status()) {
      if (stopped) return
      if (s.type !== "reconnect") continue
      try {
        const { state } = await jsm.streams.info(CONTROL_STREAM)
        if (state.first_seq > next) {
          log.error(
            { expected: next, first: state.first_seq },
            "control events expired before this edge read them; its sockets must load their memberships again",
          )
          o.handlers.lost({ expected: next, got: state.first_seq })
          next = state.first_seq
          settle()
        }
      } catch (err) {
        // The consumer's own loop finds a missing stream; the next event still shows a gap.
        log.warn({ err }, "could not check the control stream after a reconnect")
      }
    }
  })()

  const dispatch = (subject: string, data: Uint8Array) => {
    const kind = subject.slice(subject.lastIndexOf(".") + 1)
    if (kind === "membership") o.handlers.membership(subject, data)
    else if (kind === "revoked") o.handlers.revoked(subject, data)
    else log.warn({ subject }, "control event of an unknown kind; ignored")
  }

  const loop = (async () => {
    for (let failures = 0; !stopped; ) {
      if (current !== undefined) {
        try {
          for await (const m of current) {
            // Limits retention and no filter: sequences are contiguous unless events expired
            // (max age) or were deleted before this edge read them.
            if (m.seq > next) {
              log.error(
                { expected: next, got: m.seq },
                "control events were lost before this edge read them; its sockets must load their memberships again",
              )
              o.handlers.lost({ expected: next, got: m.seq })
            }
            next = m.seq + 1
            failures = 0
            dispatch(m.subject, m.data)
            settle()
          }
          if (stopped) return
          log.error({ next }, "control event consumer ended; following again")
        } catch (err) {
          if (stopped) return
          log.error({ err, next }, "control event consumer failed; following again")
        }
      }
      failures++
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(100 * 2 ** failures, 10_000))
        wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      wake = undefined
      if (stopped) return
      try {
        const last = await ensureControlStream(jsm, o.maxAgeMs, log)
        if (last + 1 < next) {
          // The stream was deleted and made again: its sequences started over.
          log.error({ last, next }, "the control stream was recreated; following it from its end")
          o.handlers.lost({ expected: next, got: last + 1 })
          next = last + 1
          settle()
        }
        current = await open(js, next, log)
      } catch (err) {
        current = undefined
        log.error({ err, failures }, "could not follow the control stream; trying again")
      }
    }
  })()

  return {
    async caughtUp(timeoutMs) {
      const deadline = Date.now() + timeoutMs
      let last: number | undefined
      // Right after a reconnect JetStream may not answer yet (a restarted server recovers its
      // streams first): asked again until the deadline.
      while (last === undefined) {
        try {
          last = (await jsm.streams.info(CONTROL_STREAM)).state.last_seq
        } catch (err) {
          if (stopped || Date.now() + 250 > deadline) {
            log.warn({ err }, "could not read where the control stream ends")
            return false
          }
          await new Promise((resolve) => setTimeout(resolve, 250))
        }
      }
      if (next > last) return true
      return new Promise<boolean>((resolve) => {
        const waiter = {
          last,
          done: (ok: boolean) => {
            clearTimeout(timer)
            waiters.delete(waiter)
            resolve(ok)
          },
        }
        const timer = setTimeout(() => waiter.done(false), Math.max(0, deadline - Date.now()))
        waiters.add(waiter)
      })
    },
    async stop() {
      stopped = true
      for (const w of waiters) w.done(false)
      wake?.()
      current?.stop()
      await loop
    },
  }
}

/**
 * Hands the revocations published in the last `sinceMs`, up to stream sequence `untilSeq`, to
 * `handle` in order, with the time each was stored; answers how many. One ephemeral consumer,
 * deleted after: it says up front how many there are, so an edge with none to replay starts
 * without waiting.
 */
async function replayRevocations(
  jsm: JetStreamManager,
  js: JetStreamClient,
  untilSeq: number,
  sinceMs: number,
  handle: ControlHandlers["revoked"],
): Promise<number> {
  if (untilSeq === 0) return 0
  const info = await jsm.consumers.add(CONTROL_STREAM, {
    filter_subject: USER_REVOKED_SUBJECTS,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(Date.now() - sinceMs).toISOString(),
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(30_000),
    mem_storage: true,
  })
  let handled = 0
  try {
    const consumer = await js.consumers.get(CONTROL_STREAM, info.name)
    for (let left = info.num_pending; left > 0; ) {
      const batch = await consumer.fetch({ max_messages: Math.min(left, 1_000), expires: 5_000 })
      let got = 0
      for await (const m of batch) {
        got++
        // Later ones reach the live consumer, which starts after untilSeq.
        if (m.seq > untilSeq) return handled
        handle(m.subject, m.data, Math.floor(m.info.timestampNanos / 1e6))
        handled++
      }
      if (got === 0) break
      left -= got
    }
    return handled
  } finally {
    await jsm.consumers.delete(CONTROL_STREAM, info.name).catch(() => undefined)
  }
}

async function open(js: JetStreamClient, from: number, log: Logger): Promise<ConsumerMessages> {
  // Without a name: an ordered consumer (ephemeral, no acks, one at a time, in stream order).
  const consumer = await js.consumers.get(CONTROL_STREAM, { opt_start_seq: from })
  const messages = await consumer.consume()
  const watch = async () => {
    for await (const s of await messages.status()) {
      if (s.type === ConsumerEvents.StreamNotFound) {
        // nats.js would retry for ever; the loop above re-creates the stream instead.
        messages.stop(new Error(`stream ${CONTROL_STREAM} not found`))
      } else if (
        s.type === ConsumerEvents.ConsumerNotFound ||
        s.type === ConsumerEvents.ConsumerDeleted ||
        s.type === ConsumerEvents.OrderedConsumerRecreated ||
        s.type === ConsumerEvents.HeartbeatsMissed
      ) {
        log.warn({ status: s.type, data: String(s.data) }, "control event consumer status")
      }
    }
  }
  watch().catch((err: unknown) => log.warn({ err }, "control event consumer status not followed"))
  return messages
}
