/**
 * End-to-end messaging: clients on two edges (separate processes) send through the whole stack
 * and the recipients, on the other edge, receive. Baseline in the same run: a raw JetStream
 * publish loop from this process (PubAck awaited, same window). Reports stored-and-delivered
 * throughput, send → delivered latency p50/p90/p99 at a paced rate, losses, duplicates and seq
 * gaps, each edge's CPU per message against the baseline's, and the CPU per message of every
 * process of the stack (where the time goes). A script, not a test:
 * `npx tsx bench/messaging.ts [pairs=25] [messages per sender=2000] [paced rate=5000]` after
 * `npm run build`.
 */
import { randomUUID } from "node:crypto"
import { connect } from "nats"
import WebSocket from "ws"
import {
  cpuByProcess,
  cpuPerMessage,
  cpuSeconds,
  functionPoster,
  metricSum,
  percentile,
  startTwoEdgeStack,
  UNLIMITED_EDGE_RATES,
} from "./two-edge-stack"

const pairs = Number(process.argv[2] ?? "25")
// 50,000 messages by default: each phase then runs for seconds, not the JIT's warm-up alone.
const perSender = Number(process.argv[3] ?? "2000")
const pacedRate = Number(process.argv[4] ?? "5000")
const WINDOW = 8

type Client = {
  ws: WebSocket
  userId: string
  name: string
  onFrame: (f: Record<string, unknown>) => void
  /** Frames received, by type (a socket closed early shows how far it got). */
  frames: Map<string, number>
  closed?: string
}

/**
 * Sockets that closed before their first pong and were opened again, as a client reconnects:
 * the edge's uWebSockets.js build (20.30) now and then drops a socket it has just upgraded
 * asynchronously (1006 on both sides, no close frame; docs/benchmarks.md).
 */
const reopened: string[] = []

/** One attempt: resolves once the edge has answered the first ping, or once the socket closed. */
function attempt(url: string, token: string, userId: string, name: string): Promise<Client> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
  const client: Client = { ws, userId, name, onFrame: () => undefined, frames: new Map() }
  const openedAt = performance.now()
  return new Promise((resolve) => {
    ws.on("message", (data) => {
      const f = JSON.parse(String(data)) as Record<string, unknown>
      client.frames.set(String(f.type), (client.frames.get(String(f.type)) ?? 0) + 1)
      if (f.type === "pong" && client.frames.get("pong") === 1) resolve(client)
      client.onFrame(f)
    })
    // How the TCP connection ended under the WebSocket: a FIN, or a reset (ws reports neither).
    let tcp = ""
    ws.once("upgrade", (res) => {
      const socket = res.socket
      socket.once("end", () => {
        tcp += " FIN received"
      })
      socket.once("error", (err: NodeJS.ErrnoException) => {
        tcp += ` ${err.code ?? err.message}`
      })
      socket.once("close", () => {
        tcp += `; ${socket.bytesRead} bytes read, ${socket.bytesWritten} written`
      })
    })
    ws.on("close", (code, reason) => {
      const seen = [...client.frames].map(([type, n]) => `${type} ${n}`).join(" ") || "none"
      setImmediate(() => {
        client.closed = `${client.closed ?? ""}${client.name}: ${code} ${String(reason)} ${(performance.now() - openedAt).toFixed(0)} ms after connecting (frames received: ${seen}; TCP:${tcp})`
        resolve(client)
      })
    })
    ws.on("error", (err) => {
      // The client's own error (ws closes the socket itself, and reports 1006 for it).
      client.closed = `${client.closed ?? ""}client error ${err.message}; `
    })
    // A socket that sends nothing within the first-frame deadline (10 s) is closed by the edge:
    // a recipient that only listens would lose the rest of a slow run.
    ws.once("open", () => ws.send('{"type":"ping"}'))
  })
}

async function open(url: string, token: string, userId: string, name: string): Promise<Client> {
  for (let tries = 1; ; tries++) {
    const client = await attempt(url, token, userId, name)
    if (client.closed === undefined || tries === 5) return client
    reopened.push(client.closed)
    await new Promise((resolve) => setTimeout(resolve, 100 * tries))
  }
}

const stack = await startTwoEdgeStack(UNLIMITED_EDGE_RATES)
try {
  const { gateway, natsUrl } = stack
  const edgeAUrl = stack.edgeA.url
  const edgeBUrl = stack.edgeB.url
  const post = functionPoster(gateway)
  const admin = await post("auth/register", { username: "admin", password: "correct horse battery" })
  const users: { id: string; token: string }[] = []
  for (let i = 0; i < pairs * 2; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, pairs * 2 - i) }, (_, k) =>
        post(
          "auth/register",
          { username: `user${i + k}`, password: "correct horse battery" },
          admin.access_token,
        ),
      ),
    )
    users.push(...batch.map((r) => ({ id: r.user.id as string, token: r.access_token as string })))
  }
  const convs: string[] = []
  for (let p = 0; p < pairs; p++) {
    const sender = users[2 * p] as { id: string; token: string }
    const recipient = users[2 * p + 1] as { id: string; token: string }
    convs.push(
      (await post("conversations", { kind: "direct", members: [recipient.id] }, sender.token)).id as string,
    )
  }
  const senders = await Promise.all(
    convs.map((_, p) => open(edgeAUrl, users[2 * p]?.token ?? "", users[2 * p]?.id ?? "", `sender ${p}`)),
  )
  const recipients = await Promise.all(
    convs.map((_, p) =>
      open(edgeBUrl, users[2 * p + 1]?.token ?? "", users[2 * p + 1]?.id ?? "", `recipient ${p}`),
    ),
  )

  // ---- baseline: raw JetStream publish loop, same window per "sender", from this process
  const nc = await connect({ servers: natsUrl })
  const jsm = await nc.jetstreamManager()
  await jsm.streams.add({ name: "BENCH_BASELINE", subjects: ["bench.baseline"] })
  const js = nc.jetstream()
  const total = pairs * perSender
  const payload = new TextEncoder().encode(
    JSON.stringify({
      type: "send",
      id: randomUUID(),
      conv: "x".repeat(22),
      body: { kind: "text", text: "bench message 你好" },
    }),
  )
  const cpu0 = process.cpuUsage()
  const b0 = performance.now()
  await Promise.all(
    Array.from({ length: pairs }, async () => {
      const inFlight = new Set<Promise<unknown>>()
      for (let i = 0; i < perSender; i++) {
        const p = js.publish("bench.baseline", payload, { msgID: randomUUID() })
        inFlight.add(p)
        void p.finally(() => inFlight.delete(p))
        if (inFlight.size >= WINDOW) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    }),
  )
  const baselineSeconds = (performance.now() - b0) / 1000
  const cpu1 = process.cpuUsage(cpu0)
  const baselineCpuPerMsg = (cpu1.user + cpu1.system) / 1e6 / total
  await nc.close()

  // ---- the stack: each sender keeps WINDOW sends in flight; recipients time each delivery
  async function run(ratePerSec: number | undefined) {
    const sentAt = new Map<string, number>()
    const latencies: number[] = []
    // Where the time goes: send -> ack is the edge and JetStream; the rest is after the ack.
    const ackLatencies: number[] = []
    const seen = new Map<string, Set<number>>()
    let duplicates = 0
    let delivered = 0
    const errors = new Map<string, number>()
    let done: () => void = () => undefined
    const finished = new Promise<void>((resolve) => {
      done = resolve
    })
    for (const r of recipients) {
      r.onFrame = (f) => {
        if (f.type !== "message") return
        const at = sentAt.get(f.id as string)
        if (at === undefined) return
        const seqs = seen.get(f.conv as string) ?? new Set<number>()
        if (seqs.has(f.seq as number)) duplicates++
        else {
          seqs.add(f.seq as number)
          latencies.push(performance.now() - at)
          delivered++
        }
        seen.set(f.conv as string, seqs)
        if (delivered === total) done()
      }
    }
    const cpuA0 = await cpuSeconds(stack.edgeA.pid)
    const cpuB0 = await cpuSeconds(stack.edgeB.pid)
    const started = performance.now()
    const interval = ratePerSec === undefined ? 0 : (1000 * pairs) / ratePerSec
    await Promise.all(
      senders.map(async (s, p) => {
        const conv = convs[p] as string
        let inFlight = 0
        let wake: () => void = () => undefined
        s.onFrame = (f) => {
          if (f.type === "error") errors.set(String(f.code), (errors.get(String(f.code)) ?? 0) + 1)
          if (f.type === "ack" || f.type === "error") {
            const at = sentAt.get(String(f.id))
            if (f.type === "ack" && at !== undefined) ackLatencies.push(performance.now() - at)
            inFlight--
            wake()
          }
        }
        // A socket the edge closed gets no more acks: stop its sender (reported below) instead of waiting.
        s.ws.once("close", () => wake())
        for (let i = 0; i < perSender && s.ws.readyState === WebSocket.OPEN; i++) {
          while (inFlight >= WINDOW && s.ws.readyState === WebSocket.OPEN)
            await new Promise<void>((resolve) => (wake = resolve))
          if (interval > 0) {
            const due = started + i * interval + (p * interval) / pairs
            const wait = due - performance.now()
            if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
          }
          const id = randomUUID()
          sentAt.set(id, performance.now())
          inFlight++
          s.ws.send(
            JSON.stringify({ type: "send", id, conv, body: { kind: "text", text: `bench ${i} 你好` } }),
          )
        }
      }),
    )
    await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 60_000))])
    const seconds = (performance.now() - started) / 1000
    const cpuA = (await cpuSeconds(stack.edgeA.pid)) - cpuA0
    const cpuB = (await cpuSeconds(stack.edgeB.pid)) - cpuB0
    // Each run continues the conversations' sequences: count holes between its first and last seq.
    let gaps = 0
    for (const seqs of seen.values()) gaps += Math.max(...seqs) - Math.min(...seqs) + 1 - seqs.size
    return {
      seconds,
      delivered,
      duplicates,
      gaps,
      latencies,
      ackLatencies,
      cpuA,
      cpuB,
      errors: [...errors].join(", ") || "none",
    }
  }

  const persistMetrics = () =>
    Promise.all([
      metricSum(gateway, "cove_connector_batches_total", 'function="persist"'),
      metricSum(gateway, "cove_connector_batch_seconds_sum", 'function="persist"'),
    ])
  /** The connector's batches to the sequencer during `work`, and the time of each POST. */
  const sequencerDuring = async <T>(work: () => Promise<T>): Promise<[T, string]> => {
    const before = await persistMetrics()
    const result = await work()
    const after = await persistMetrics()
    const batches = after[0] - before[0]
    const persistMs = (1000 * (after[1] - before[1])) / batches
    return [
      result,
      `${batches} batches, ${(total / batches).toFixed(1)} messages and ${persistMs.toFixed(1)} ms each (POST to the persist function until its answer)`,
    ]
  }
  const cpuBefore = await cpuByProcess(stack)
  const [fast, fastSequencer] = await sequencerDuring(() => run(undefined))
  const cpuAfter = await cpuByProcess(stack)
  const [paced, pacedSequencer] = await sequencerDuring(() => run(pacedRate))
  const cpuAfterPaced = await cpuByProcess(stack)
  // The edges' own count of the sockets they saw close, by close code (1006: no close frame).
  const closesOn = async (http: string) =>
    ((await (await fetch(`${http}/metrics`)).text()).match(/^cove_edge_closes_total\{.*$/gm) ?? [])
      .map((l) => l.replace(/^cove_edge_closes_total/, ""))
      .join(", ") || "none"
  const closes = `edge A ${await closesOn(stack.edgeA.http)}; edge B ${await closesOn(stack.edgeB.http)}`
  const ms = (x: number) => `${x.toFixed(1)} ms`
  const spread = (xs: number[]) =>
    `p50 ${ms(percentile(xs, 50))}, p90 ${ms(percentile(xs, 90))}, p99 ${ms(percentile(xs, 99))}`
  const lines = [
    `setup: ${pairs} senders on edge A, ${pairs} recipients on edge B (separate processes), ${perSender} messages each, ${WINDOW} in flight per sender`,
    `raw JetStream publish loop (baseline): ${Math.round(total / baselineSeconds)} msg/s, ${(baselineCpuPerMsg * 1e6).toFixed(0)} us client CPU per message`,
    `as fast as possible: ${Math.round(fast.delivered / fast.seconds)} msg/s stored and delivered = ${(fast.delivered / fast.seconds / (total / baselineSeconds)).toFixed(2)}x baseline; lost ${total - fast.delivered}, duplicated ${fast.duplicates}, seq gaps ${fast.gaps}; error frames: ${fast.errors}`,
    `  latency send -> delivered: ${spread(fast.latencies)}`,
    `    of which send -> ack: ${spread(fast.ackLatencies)}`,
    `  sequencer: ${fastSequencer}`,
    `  CPU per message by process (us): ${cpuPerMessage(cpuBefore, cpuAfter, fast.delivered)}`,
    `  edge A (senders) CPU per message: ${((fast.cpuA / fast.delivered) * 1e6).toFixed(0)} us = ${(fast.cpuA / fast.delivered / baselineCpuPerMsg).toFixed(2)}x baseline; edge B (recipients): ${((fast.cpuB / fast.delivered) * 1e6).toFixed(0)} us`,
    `sockets closed during the runs: ${
      [...senders, ...recipients]
        .filter((c) => c.closed !== undefined)
        .map((c) => c.closed)
        .join(", ") || "none"
    }; closes counted by the edges: ${closes}`,
    `sockets opened again after closing before their first pong: ${reopened.join(", ") || "none"}`,
    `paced at ${pacedRate} msg/s: ${Math.round(paced.delivered / paced.seconds)} msg/s delivered; lost ${total - paced.delivered}, duplicated ${paced.duplicates}, seq gaps ${paced.gaps}; error frames: ${paced.errors}`,
    `  latency send -> delivered: ${spread(paced.latencies)}`,
    `    of which send -> ack: ${spread(paced.ackLatencies)}`,
    `  sequencer: ${pacedSequencer}`,
    `  CPU per message by process (us): ${cpuPerMessage(cpuAfter, cpuAfterPaced, paced.delivered)}`,
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
  for (const c of [...senders, ...recipients]) c.ws.terminate()
} finally {
  await stack.stop()
}
