/**
 * End-to-end messaging: clients on two edges (separate processes) send through the whole stack
 * and the recipients, on the other edge, receive. Baseline in the same run: a raw JetStream
 * publish loop from this process (PubAck awaited, same window). Reports stored-and-delivered
 * throughput, send → delivered latency p50/p90/p99 at a paced rate, losses, duplicates and seq
 * gaps, and each edge's CPU per message against the baseline's. A script, not a test:
 * `npx tsx bench/messaging.ts [pairs=25] [messages per sender=200] [paced rate=5000]` after
 * `npm run build`.
 */
import { randomUUID } from "node:crypto"
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "nats"
import WebSocket from "ws"
import { freePort } from "../infra/local/ports"
import { descendants, startProgram } from "../test/support/processes"

const root = join(import.meta.dirname, "..")
const pairs = Number(process.argv[2] ?? "25")
const perSender = Number(process.argv[3] ?? "200")
const pacedRate = Number(process.argv[4] ?? "5000")
const WINDOW = 8
const PATH = process.env.PATH ?? "/usr/bin:/bin"
const limits = {
  COVE_EDGE_RATE_PER_SEC: "100000",
  COVE_EDGE_RATE_BURST: "100000",
  COVE_EDGE_USER_RATE_PER_SEC: "100000",
  COVE_EDGE_USER_RATE_BURST: "100000",
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN
}

/** CPU seconds used so far by a process (user + system), from /proc. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / 100
}

type Client = { ws: WebSocket; userId: string; onFrame: (f: Record<string, unknown>) => void }

async function open(url: string, token: string, userId: string): Promise<Client> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } })
  const client: Client = { ws, userId, onFrame: () => undefined }
  ws.on("message", (data) => client.onFrame(JSON.parse(String(data)) as Record<string, unknown>))
  await new Promise((resolve, reject) => {
    ws.once("open", resolve)
    ws.once("error", reject)
  })
  return client
}

const dir = await mkdtemp(join(tmpdir(), "cove-bench-msg-"))
await chmod(dir, 0o755)
const env = {
  PATH,
  LOG_LEVEL: "warn",
  COVE_DATA_DIR: dir,
  // Another stack file measures a subset of the functions (e.g. without the search indexer).
  COVE_STACK_FILE: process.env.COVE_STACK_FILE ?? "./stack.yml",
  COVE_GATEWAY_PORT: "0",
  COVE_EDGE_PORT: "0",
  ...limits,
}
const cove = startProgram(join(root, "node_modules/.bin/tsx"), ["infra/start.ts"], env, root)
let edgeB: ReturnType<typeof startProgram> | undefined
try {
  await cove.waitFor(/Cove is up/, 120_000)
  const gateway = (await cove.waitFor(/functions +(http:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const edgeAUrl = (await cove.waitFor(/edge +(ws:\/\/127\.0\.0\.1:\d+\/v1\/ws)/))[1] as string
  const natsUrl = (await cove.waitFor(/nats +(nats:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const edgeBPort = await freePort()
  edgeB = startProgram(process.execPath, [join(root, "build/gateway.mjs")], {
    PATH,
    LOG_LEVEL: "info",
    NATS_URL: natsUrl,
    COVE_EDGE_PORT: String(edgeBPort),
    COVE_FUNCTIONS_URL: gateway,
    COVE_JWKS_URL: `${gateway}/function/auth/jwks`,
    ...limits,
  })
  await edgeB.waitFor(/listening/)
  const edgeBUrl = `ws://127.0.0.1:${edgeBPort}/v1/ws`
  const allPids = await descendants(cove.child.pid as number)
  let edgeAProcess: number | undefined
  for (const p of allPids) {
    const cmd = await readFile(`/proc/${p.pid}/cmdline`, "utf8").catch(() => "")
    if (cmd.includes("gateway.mjs")) edgeAProcess = p.pid
  }
  if (edgeAProcess === undefined) throw new Error("edge A process not found")

  const post = async (path: string, body: unknown, token?: string) => {
    const res = await fetch(`${gateway}/function/${path}`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(body),
    })
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    // biome-ignore lint/suspicious/noExplicitAny: a script reading JSON answers it just made.
    return (await res.json()) as Record<string, any>
  }
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
    convs.map((_, p) => open(edgeAUrl, users[2 * p]?.token ?? "", users[2 * p]?.id ?? "")),
  )
  const recipients = await Promise.all(
    convs.map((_, p) => open(edgeBUrl, users[2 * p + 1]?.token ?? "", users[2 * p + 1]?.id ?? "")),
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
    const seen = new Map<string, Set<number>>()
    let duplicates = 0
    let delivered = 0
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
    const cpuA0 = await cpuSeconds(edgeAProcess as number)
    const cpuB0 = await cpuSeconds(edgeB?.child.pid as number)
    const started = performance.now()
    const interval = ratePerSec === undefined ? 0 : (1000 * pairs) / ratePerSec
    await Promise.all(
      senders.map(async (s, p) => {
        const conv = convs[p] as string
        let inFlight = 0
        let wake: () => void = () => undefined
        s.onFrame = (f) => {
          if (f.type === "ack" || f.type === "error") {
            inFlight--
            wake()
          }
        }
        for (let i = 0; i < perSender; i++) {
          while (inFlight >= WINDOW) await new Promise<void>((resolve) => (wake = resolve))
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
    const cpuA = (await cpuSeconds(edgeAProcess as number)) - cpuA0
    const cpuB = (await cpuSeconds(edgeB?.child.pid as number)) - cpuB0
    // Each run continues the conversations' sequences: count holes between its first and last seq.
    let gaps = 0
    for (const seqs of seen.values()) gaps += Math.max(...seqs) - Math.min(...seqs) + 1 - seqs.size
    return { seconds, delivered, duplicates, gaps, latencies, cpuA, cpuB }
  }

  const metricsText = async () => (await fetch(`${gateway}/metrics`)).text()
  const sum = (text: string, name: string, label: string) =>
    [...text.matchAll(new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} ([\\d.e+-]+)$`, "gm"))].reduce(
      (a, m) => a + Number(m[1]),
      0,
    )
  const before = await metricsText()
  const fast = await run(undefined)
  const after = await metricsText()
  const batches =
    sum(after, "cove_connector_batches_total", 'function="persist"') -
    sum(before, "cove_connector_batches_total", 'function="persist"')
  const persistSeconds =
    sum(after, "cove_function_duration_seconds_sum", 'function="persist"') -
    sum(before, "cove_function_duration_seconds_sum", 'function="persist"')
  const paced = await run(pacedRate)
  const ms = (x: number) => `${x.toFixed(1)} ms`
  const lines = [
    `setup: ${pairs} senders on edge A, ${pairs} recipients on edge B (separate processes), ${perSender} messages each, ${WINDOW} in flight per sender`,
    `raw JetStream publish loop (baseline): ${Math.round(total / baselineSeconds)} msg/s, ${(baselineCpuPerMsg * 1e6).toFixed(0)} us client CPU per message`,
    `as fast as possible: ${Math.round(fast.delivered / fast.seconds)} msg/s stored and delivered = ${(fast.delivered / fast.seconds / (total / baselineSeconds)).toFixed(2)}x baseline; lost ${total - fast.delivered}, duplicated ${fast.duplicates}, seq gaps ${fast.gaps}`,
    `  latency send -> delivered: p50 ${ms(percentile(fast.latencies, 50))}, p90 ${ms(percentile(fast.latencies, 90))}, p99 ${ms(percentile(fast.latencies, 99))}`,
    `  sequencer: ${batches} batches, ${(fast.delivered / batches).toFixed(1)} messages each, ${((1000 * persistSeconds) / batches).toFixed(1)} ms per batch in the persist function`,
    `  edge A (senders) CPU per message: ${((fast.cpuA / fast.delivered) * 1e6).toFixed(0)} us = ${(fast.cpuA / fast.delivered / baselineCpuPerMsg).toFixed(2)}x baseline; edge B (recipients): ${((fast.cpuB / fast.delivered) * 1e6).toFixed(0)} us`,
    `paced at ${pacedRate} msg/s: ${Math.round(paced.delivered / paced.seconds)} msg/s delivered; lost ${total - paced.delivered}, duplicated ${paced.duplicates}, seq gaps ${paced.gaps}`,
    `  latency send -> delivered: p50 ${ms(percentile(paced.latencies, 50))}, p90 ${ms(percentile(paced.latencies, 90))}, p99 ${ms(percentile(paced.latencies, 99))}`,
  ]
  process.stdout.write(`${lines.join("\n")}\n`)
  for (const c of [...senders, ...recipients]) c.ws.terminate()
} finally {
  edgeB?.child.kill("SIGTERM")
  await edgeB?.exited
  cove.child.kill("SIGINT")
  await cove.exited
  await rm(dir, { recursive: true, force: true })
}
