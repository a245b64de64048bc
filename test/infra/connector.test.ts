import { AckPolicy, connect, headers, type NatsConnection } from "nats"
import t, { type Test } from "tap"
import { startConnector } from "../../infra/connector/connector"
import { parseStack } from "../../infra/stack"
import { AppError } from "../../lib/errors"
import { defineFunction } from "../../lib/function/harness"
import { serveHandler } from "../../lib/function/server"
import { Registry } from "../../lib/metrics"
import { DEAD_LETTER_STREAM, HEADERS } from "../../lib/protocol/subjects"
import { eventually, testLog, withNats } from "../support/servers"

type Item = { seq: number; subject: string; data: { n: number; poison?: boolean; reject?: boolean } }

/**
 * A real event function served by Cove's harness and function server; its behaviour is set by
 * the test (`failNext`, poison and reject markers in the data).
 */
async function recordingFunction(t: Test) {
  const state = { batches: [] as Item[][], failNext: 0, calls: 0, delayMs: 0 }
  const handler = defineFunction({
    name: "recorder",
    log: testLog,
    ports: async () => ({}),
    routes: [
      [
        "POST",
        // The connector POSTs to <gateway>/function/<name>; this server stands in for the gateway.
        "/function/recorder",
        async (req) => {
          state.calls++
          if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs))
          const items = (req.body as { messages: Item[] }).messages
          if (state.failNext > 0) {
            state.failNext--
            throw new AppError("UNAVAILABLE", "database down")
          }
          if (items.some((i) => i.data.poison)) throw new AppError("UNAVAILABLE", "poison")
          state.batches.push(items)
          const rejected = items
            .filter((i) => i.data.reject)
            .map((i) => ({ seq: i.seq, code: "INVALID_INPUT", message: "no" }))
          return { body: { processed: items.length - rejected.length, rejected } }
        },
      ],
    ],
  })
  const server = await serveHandler(handler, {
    host: "127.0.0.1",
    port: 0,
    maxBodyBytes: 10_000_000,
    log: testLog,
  })
  t.teardown(() => server.drain(100))
  return { state, url: `http://127.0.0.1:${server.port}` }
}

/** A NATS server, a connection to it and the recording function: every test's starting point. */
async function natsAndFunction(t: Test) {
  const nats = await withNats(t)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  return { nc, fn: await recordingFunction(t) }
}

function stackFor(gatewayPartitions: number, maxDeliver = 3, batchWait = "0ms") {
  return parseStack("stack.yml", {
    version: "1.0",
    provider: { name: "openfaas" },
    functions: {
      recorder: {
        lang: "node20",
        handler: "./build/functions/recorder",
        image: "test/recorder",
        environment: { exec_timeout: "5s" },
        annotations: {
          topic: "test.in",
          "com.cove.stream": "TEST_IN",
          "com.cove.partitions": String(gatewayPartitions),
          "com.cove.batch-size": "50",
          "com.cove.batch-wait": batchWait,
          "com.cove.max-deliver": String(maxDeliver),
          "com.cove.retry-backoff": "10ms,20ms",
          "com.cove.ack-wait": "2s",
        },
      },
    },
  })
}

async function start(
  t: Test,
  nc: NatsConnection,
  url: string,
  partitions: number,
  maxDeliver?: number,
  more: { batchWait?: string; functionUrl?: (name: string) => string | undefined } = {},
) {
  const registry = new Registry()
  const connector = await startConnector({
    nc,
    stack: stackFor(partitions, maxDeliver, more.batchWait),
    gatewayUrl: url,
    ...(more.functionUrl === undefined ? {} : { functionUrl: more.functionUrl }),
    registry,
    log: testLog,
  })
  t.teardown(() => connector.stop())
  return { connector, registry }
}

async function publish(nc: NatsConnection, subject: string, data: unknown) {
  await nc
    .jetstream()
    .publish(subject, new TextEncoder().encode(typeof data === "string" ? data : JSON.stringify(data)))
}

t.test("batches reach the function in order per partition and are acked after a 2xx", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  // Streams are created by the connector; start it once, then publish.
  const { connector } = await start(t, nc, fn.url, 2)
  t.equal(connector.workers, 2)
  for (let n = 0; n < 200; n++) await publish(nc, `test.in.${n % 2}`, { n })

  await eventually(async () => (fn.state.batches.flat().length >= 200 ? true : undefined), "all messages")
  const seen = fn.state.batches.flat()
  t.equal(seen.length, 200, "each message once")
  for (const p of [0, 1]) {
    const ns = seen.filter((i) => i.subject === `test.in.${p}`).map((i) => i.data.n)
    t.same(
      ns,
      [...ns].sort((a, b) => a - b),
      `partition ${p} in order`,
    )
  }
  const jsm = await nc.jetstreamManager()
  await eventually(async () => {
    const infos = await Promise.all([0, 1].map((p) => jsm.consumers.info("TEST_IN", `recorder-p${p}`)))
    return infos.every((i) => i.num_ack_pending === 0 && i.num_pending === 0) ? true : undefined
  }, "everything acked")
})

t.test("a failing function is retried with backoff until it answers", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  const { registry } = await start(t, nc, fn.url, 1, 5)
  fn.state.failNext = 2
  await publish(nc, "test.in.0", { n: 1 })
  await eventually(async () => (fn.state.batches.length === 1 ? true : undefined), "the retried batch")
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    [1],
  )
  t.equal(fn.state.calls, 3)
  t.match(registry.render(), /cove_connector_retries_total\{function="recorder",partition="0"\} 2/)
})

t.test("a function addressed directly is retried while it has no address (restarting)", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  const asked: string[] = []
  // The gateway address is never used: every batch goes to the function's own address.
  const { registry } = await start(t, nc, "http://127.0.0.1:9", 1, 5, {
    functionUrl: (name) => {
      asked.push(name)
      return asked.length <= 2 ? undefined : `${fn.url}/function/${name}`
    },
  })
  await publish(nc, "test.in.0", { n: 7 })
  await eventually(
    async () => (fn.state.batches.length === 1 ? true : undefined),
    "the batch, once reachable",
  )
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    [7],
  )
  t.equal(fn.state.calls, 1, "no request while the function had no address")
  t.same([...new Set(asked)], ["recorder"])
  t.match(registry.render(), /cove_connector_retries_total\{function="recorder",partition="0"\} 2/)
})

t.test("with a batch wait, messages that arrive apart are POSTed together", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  await start(t, nc, fn.url, 1, 3, { batchWait: "1s" })
  for (let n = 0; n < 5; n++) {
    await publish(nc, "test.in.0", { n })
    await new Promise((resolve) => setTimeout(resolve, 30))
  }
  await eventually(async () => (fn.state.batches.flat().length === 5 ? true : undefined), "all five")
  t.same(
    fn.state.batches.map((b) => b.map((i) => i.data.n)),
    [[0, 1, 2, 3, 4]],
    "one batch, in order",
  )
  // The wait ends as soon as a batch is full; the rest waits for the next one.
  for (let n = 5; n < 65; n++) await publish(nc, "test.in.0", { n })
  await eventually(async () => (fn.state.batches.flat().length === 65 ? true : undefined), "sixty more")
  t.same(
    fn.state.batches.map((b) => b.length),
    [5, 50, 10],
  )
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    Array.from({ length: 65 }, (_, n) => n),
  )
})

t.test("a message that keeps failing is dead-lettered; the others go on, in order", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  const { connector } = await start(t, nc, fn.url, 1, 3)
  await connector.stop()
  // Published while the connector is down, so they arrive as one batch.
  await publish(nc, "test.in.0", { n: 1 })
  await publish(nc, "test.in.0", { n: 2, poison: true })
  await publish(nc, "test.in.0", { n: 3 })
  await publish(nc, "test.in.0", { n: 4, reject: true })
  await publish(nc, "test.in.0", "not json {")
  await publish(nc, "test.in.0", { n: 5 })
  const { registry } = await start(t, nc, fn.url, 1, 3)

  await eventually(
    async () => (fn.state.batches.flat().some((i) => i.data.n === 5) ? true : undefined),
    "message 5",
  )
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    [1, 3, 4, 5],
    "the poison message is skipped, the others arrive in order",
  )
  const jsm = await nc.jetstreamManager()
  const dlq = await eventually(async () => {
    const info = await jsm.streams.info(DEAD_LETTER_STREAM)
    return info.state.messages === 3 ? info : undefined
  }, "three dead letters")
  t.equal(dlq.state.messages, 3)
  const reasons: string[] = []
  for (let seq = 1; seq <= 3; seq++) {
    const m = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq })
    t.equal(m.header.get(HEADERS.dlqFunction), "recorder")
    t.equal(m.header.get(HEADERS.dlqStream), "TEST_IN")
    reasons.push(m.header.get(HEADERS.dlqReason).split(":")[0] ?? "")
  }
  t.same(reasons.sort(), ["HTTP 503", "INVALID_EVENT_JSON", "INVALID_INPUT"])
  const metrics = registry.render()
  t.match(metrics, /cove_connector_dead_lettered_total\{function="recorder",reason="INVALID_EVENT_JSON"\} 1/)
  t.match(metrics, /cove_connector_dead_lettered_total\{function="recorder",reason="INVALID_INPUT"\} 1/)
  await eventually(async () => {
    const info = await jsm.consumers.info("TEST_IN", "recorder-p0")
    return info.num_ack_pending === 0 && info.num_pending === 0 ? true : undefined
  }, "all acked")
})

t.test("a stream with more partitions than stack.yml now asks for is served whole", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  // Made with three partitions, as an earlier stack.yml asked for; then lowered to one.
  const first = await start(t, nc, fn.url, 3)
  await first.connector.stop()
  const { connector } = await start(t, nc, fn.url, 1)
  t.equal(connector.workers, 3, "one worker per partition the stream has")
  // Publishers hash over the stream's three subjects, so the last partition still gets messages.
  await publish(nc, "test.in.2", { n: 42 })
  await eventually(async () => (fn.state.batches.flat().length === 1 ? true : undefined), "the message")
  t.same(
    fn.state.batches.flat().map((i) => [i.subject, i.data.n]),
    [["test.in.2", 42]],
  )
})

t.test("messages published while the connector is down are delivered when it is back", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  const first = await start(t, nc, fn.url, 1)
  await publish(nc, "test.in.0", { n: 1 })
  await eventually(async () => (fn.state.batches.flat().length === 1 ? true : undefined), "first message")
  await first.connector.stop()
  const h = headers()
  h.set("Cove-Version", "1")
  await nc
    .jetstream()
    .publish("test.in.0", new TextEncoder().encode(JSON.stringify({ n: 2 })), { headers: h })
  await start(t, nc, fn.url, 1)
  await eventually(async () => (fn.state.batches.flat().length === 2 ? true : undefined), "second message")
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    [1, 2],
  )
})

/**
 * A backlog of `total` messages on partition 0, a first connector that has POSTed some of it
 * (slowly: it holds messages not yet POSTed), then `interrupt`, then a second connector.
 * Messages on their way to the first one come back after ack-wait (2 s here) at the latest; none
 * may be acknowledged without having been POSTed.
 */
async function interruptedBacklog(
  t: Test,
  interrupt: (first: { stop(): Promise<void> }, conn: NatsConnection) => Promise<void>,
) {
  const nats = await withNats(t)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const fn = await recordingFunction(t)
  // Its own connection, so that it can die as a process would, without a word to the server.
  const firstConn = await connect({ servers: nats.url })
  const first = await start(t, firstConn, fn.url, 1)
  fn.state.delayMs = 30
  const total = 600
  const js = nc.jetstream()
  await Promise.all(
    Array.from({ length: total }, (_, n) =>
      js.publish("test.in.0", new TextEncoder().encode(JSON.stringify({ n }))),
    ),
  )
  await eventually(
    async () => (fn.state.batches.flat().length >= 100 ? true : undefined),
    "the first batches",
  )
  await interrupt(first.connector, firstConn)
  const processedByFirst = new Set(fn.state.batches.flat().map((i) => i.data.n)).size
  t.ok(processedByFirst < total, `the first connector stopped with messages left (${processedByFirst} done)`)
  fn.state.delayMs = 0
  await start(t, nc, fn.url, 1)
  const seen = await eventually(
    async () => {
      const ns = new Set(fn.state.batches.flat().map((i) => i.data.n))
      return ns.size === total ? ns : undefined
    },
    "every message processed",
    15_000,
  )
  t.equal(seen.size, total, "every message reached the function")
  const jsm = await nc.jetstreamManager()
  await eventually(async () => {
    const info = await jsm.consumers.info("TEST_IN", "recorder-p0")
    return info.num_ack_pending === 0 && info.num_pending === 0 ? true : undefined
  }, "everything acked")
}

t.test("a connector stopped in the middle of a backlog and started again processes every message", (t) =>
  interruptedBacklog(t, (first) => first.stop()),
)

t.test("a connector that dies in the middle of a backlog loses nothing", (t) =>
  // The process is gone: its connection closes, and what it held is never acked or handed back.
  interruptedBacklog(t, async (_first, conn) => {
    await conn.close()
  }),
)

t.test("a consumer made with AckAll by an earlier version is made again from its ack floor", async (t) => {
  const { nc, fn } = await natsAndFunction(t)
  const first = await start(t, nc, fn.url, 1)
  await first.connector.stop()
  const jsm = await nc.jetstreamManager()
  await jsm.consumers.delete("TEST_IN", "recorder-p0")
  await jsm.consumers.add("TEST_IN", {
    durable_name: "recorder-p0",
    filter_subject: "test.in.0",
    ack_policy: AckPolicy.All,
  })
  for (const n of [1, 2, 3]) await publish(nc, "test.in.0", { n })
  // The earlier version had processed and acked the first message.
  const consumer = await nc.jetstream().consumers.get("TEST_IN", "recorder-p0")
  const firstMessage = await consumer.next({ expires: 2000 })
  t.equal(firstMessage?.seq, 1)
  await firstMessage?.ackAck()

  await start(t, nc, fn.url, 1)
  await eventually(async () => (fn.state.batches.flat().length >= 2 ? true : undefined), "the rest")
  t.same(
    fn.state.batches.flat().map((i) => i.data.n),
    [2, 3],
    "what was acked is not sent again; what was not is",
  )
  const info = await jsm.consumers.info("TEST_IN", "recorder-p0")
  t.equal(info.config.ack_policy, AckPolicy.Explicit)
  await eventually(async () => {
    const now = await jsm.consumers.info("TEST_IN", "recorder-p0")
    return now.num_ack_pending === 0 && now.num_pending === 0 ? true : undefined
  }, "everything acked")
})
