/**
 * Authenticated upgrades per second and RSS per idle authenticated socket, with the edge
 * (gateway/main.ts) in its own process, NATS and a JWK Set on loopback, and the clients spread
 * over worker processes (20,000 open files per process here). A script, not a test:
 * `npx tsx bench/edge-upgrades.ts [sockets=10000] [workers=2]`.
 *
 * Each client connects with its own user's token, reads hello, and sends one ping (so that the
 * first-frame deadline does not close it), then stays idle. The rate counts all three steps.
 * Memory is read after a full GC in the edge (through its inspector), idle and with every
 * socket open; without the GC the figure mostly measures garbage left by token verification.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose"
import WebSocket from "ws"
import { createUwsTransport, type HttpReply, loadNativeUws } from "../gateway/socket"
import { startNats } from "../infra/local/nats-server"
import { freePort } from "../infra/local/ports"
import { createLogger } from "../lib/log"
import { ACCESS_TOKEN_TYP, DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../lib/protocol/tokens"

const root = join(import.meta.dirname, "..")
const IN_FLIGHT = 200

type WorkerArgs = { url: string; first: number; count: number; jwk: JWK }

/** Worker: opens `count` sockets, reports, then holds them until stdin closes. */
async function worker(args: WorkerArgs): Promise<void> {
  const key = await importJWK(args.jwk, "EdDSA")
  const now = Math.floor(Date.now() / 1000)
  const tokens: string[] = []
  for (let i = 0; i < args.count; i++) {
    tokens.push(
      await new SignJWT({})
        .setProtectedHeader({ alg: "EdDSA", kid: "bench", typ: ACCESS_TOKEN_TYP })
        .setSubject(`u${args.first + i}`)
        .setIssuer(DEFAULT_ISSUER)
        .setAudience(DEFAULT_AUDIENCE)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(key),
    )
  }
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`)
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
  const sockets: WebSocket[] = []
  const open = (token: string) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(args.url, {
        headers: { authorization: `Bearer ${token}` },
        perMessageDeflate: false,
      })
      ws.once("error", reject)
      ws.on("message", (data) => {
        const frame = JSON.parse(String(data)) as { type: string }
        if (frame.type === "hello") ws.send('{"type":"ping"}')
        else if (frame.type === "pong") resolve()
      })
      sockets.push(ws)
    })
  const started = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < tokens.length) await open(tokens[next++] as string)
    }),
  )
  const ms = performance.now() - started
  process.stdout.write(`${JSON.stringify({ opened: sockets.length, ms })}\n`)
  process.stdin.once("end", () => process.exit(0))
  process.stdin.resume()
}

type Memory = { rss: number; heapUsed: number }
type Inspector = { memory(): Promise<Memory>; close(): void }

/** Talks to a server's inspector (CDP): a full GC, then process.memoryUsage(). */
async function connectInspector(child: ChildProcess): Promise<Inspector> {
  if (child.stderr === null) throw new Error("no stderr")
  const stderr = createInterface({ input: child.stderr })[Symbol.asyncIterator]()
  let url: string | undefined
  while (url === undefined) {
    const { value, done } = await stderr.next()
    if (done === true) throw new Error("the edge exited before its inspector listened")
    url = /ws:\/\/\S+/.exec(value)?.[0]
  }
  void (async () => {
    for (;;) if ((await stderr.next()).done === true) return
  })()
  const ws = new WebSocket(url)
  await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject))
  let id = 0
  const call = (method: string, params: object = {}) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const mine = ++id
      const onMessage = (data: WebSocket.RawData) => {
        const answer = JSON.parse(String(data)) as { id?: number; result: Record<string, unknown> }
        if (answer.id !== mine) return
        ws.off("message", onMessage)
        resolve(answer.result)
      }
      ws.on("message", onMessage)
      ws.send(JSON.stringify({ id: mine, method, params }))
    })
  return {
    async memory() {
      await call("HeapProfiler.collectGarbage")
      const { result } = (await call("Runtime.evaluate", {
        expression: "JSON.stringify(process.memoryUsage())",
      })) as { result: { value: string } }
      return JSON.parse(result.value) as Memory
    },
    close: () => ws.close(),
  }
}

/** CPU time (user + system) of a process, in ms, from /proc (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  return (Number(fields[11]) + Number(fields[12])) * 10
}

function lines(child: ChildProcess): AsyncIterator<string> {
  if (child.stdout === null) throw new Error("no stdout")
  return createInterface({ input: child.stdout })[Symbol.asyncIterator]()
}

async function nextJson(it: AsyncIterator<string>): Promise<Record<string, number>> {
  for (;;) {
    const { value, done } = await it.next()
    if (done === true) throw new Error("the worker ended early")
    if (value.startsWith("{")) return JSON.parse(value) as Record<string, number>
  }
}

type Target = { readonly proc: ChildProcess; readonly url: string; readonly inspector: Inspector }

type Measured = {
  readonly opened: number
  readonly wallMs: number
  readonly cpuMs: number
  readonly rssPerSocket: number
  readonly heapPerSocket: number
}

/** Starts a server process with the inspector on; `port` is read from its first JSON log line. */
async function startTarget(args: string[], env: Record<string, string>, wsPath: string): Promise<Target> {
  const proc = spawn(process.execPath, ["--inspect=127.0.0.1:0", "--import", "tsx", ...args], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  })
  const out = lines(proc)
  const inspector = await connectInspector(proc)
  let port: number | undefined
  while (port === undefined) {
    const { value, done } = await out.next()
    if (done === true) throw new Error(`${args.join(" ")} exited before listening`)
    if (value.startsWith("{")) port = (JSON.parse(value) as { port?: number }).port
  }
  // The log is not needed past this point, but the pipe must keep draining.
  void (async () => {
    for (;;) if ((await out.next()).done === true) return
  })()
  return { proc, url: `ws://127.0.0.1:${port}${wsPath}`, inspector }
}

/** Opens `total` idle sockets on `target` from `workers` processes; reads CPU and memory. */
async function load(target: Target, total: number, workers: number, jwk: JWK): Promise<Measured> {
  // Warm up: the first upgrade fetches the JWK Set and compiles the hot paths.
  await new Promise<void>((resolve) => {
    const ws = new WebSocket(target.url, { headers: { authorization: "Bearer x" } })
    ws.on("error", () => resolve())
    ws.on("unexpected-response", () => resolve())
    ws.on("open", () => resolve())
  })
  const idle = await target.inspector.memory()
  const per = Math.ceil(total / workers)
  const procs = Array.from({ length: workers }, (_, w) => {
    const args: WorkerArgs = { url: target.url, first: w * per, count: Math.min(per, total - w * per), jwk }
    return spawn(
      process.execPath,
      ["--import", "tsx", import.meta.filename, "--worker", JSON.stringify(args)],
      {
        cwd: root,
        stdio: ["pipe", "pipe", "inherit"],
      },
    )
  })
  process.once("exit", () => {
    for (const p of procs) p.kill("SIGKILL")
  })
  const its = procs.map(lines)
  await Promise.all(its.map(nextJson))
  const pid = target.proc.pid as number
  const started = performance.now()
  const cpuBefore = cpuMs(pid)
  for (const p of procs) p.stdin?.write("go\n")
  const reports = await Promise.all(its.map(nextJson))
  const wallMs = performance.now() - started
  const spent = cpuMs(pid) - cpuBefore
  const opened = reports.reduce((n, r) => n + (r.opened ?? 0), 0)
  const loaded = await target.inspector.memory()
  for (const p of procs) p.stdin?.end()
  await Promise.all(procs.map((p) => new Promise((r) => p.once("exit", r))))
  return {
    opened,
    wallMs,
    cpuMs: spent,
    rssPerSocket: (loaded.rss - idle.rss) / opened,
    heapPerSocket: (loaded.heapUsed - idle.heapUsed) / opened,
  }
}

async function stopTarget(target: Target): Promise<void> {
  target.inspector.close()
  target.proc.kill("SIGTERM")
  await new Promise((r) => target.proc.once("exit", r))
}

/** The baseline: the same transport adapter, accepting every upgrade, answering hello and pong. */
async function bare(): Promise<void> {
  const reply = (): HttpReply => ({ status: 404, contentType: "text/plain", body: "" })
  const transport = createUwsTransport<null>(
    loadNativeUws(),
    {
      hardMaxPayloadBytes: 65_536,
      idleTimeoutS: 120,
      hardMaxBackpressureBytes: 1_048_576,
      droppedClose: { code: 4010, reason: "SLOW_CONSUMER" },
    },
    {
      upgrade: async () => ({ accept: true, data: null }),
      open: (socket) => socket.send('{"type":"hello"}'),
      message: (socket) => socket.send('{"type":"pong"}'),
      close: () => undefined,
      routes: {},
      notUpgrade: reply,
      notFound: reply,
      fault: reply,
    },
  )
  const port = await transport.listen("127.0.0.1", 0)
  process.stdout.write(`${JSON.stringify({ port })}\n`)
  process.once("SIGTERM", () => {
    transport.close()
    process.exit(0)
  })
}

async function main(total: number, workers: number): Promise<void> {
  const log = createLogger({ name: "bench", level: "warn" })
  const dir = await mkdtemp(join(tmpdir(), "cove-bench-"))
  const nats = await startNats({ port: await freePort(), storeDir: dir, log })
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "EdDSA" }
  const jwks = createServer((_req, res) => res.end(JSON.stringify({ keys: [jwk] })))
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve))
  const privateJwk = await exportJWK(privateKey)

  const baseline = await startTarget([import.meta.filename, "--bare"], {}, "/v1/ws")
  const base = await load(baseline, total, workers, privateJwk)
  await stopTarget(baseline)

  const edge = await startTarget(
    [join(root, "gateway/main.ts")],
    {
      LOG_LEVEL: "info",
      COVE_EDGE_PORT: String(await freePort()),
      NATS_URL: nats.url,
      COVE_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
    },
    "/v1/ws",
  )
  const cove = await load(edge, total, workers, privateJwk)
  await stopTarget(edge)

  const rate = (m: Measured) => m.opened / (m.wallMs / 1000)
  const row = (name: string, m: Measured) =>
    `  ${name.padEnd(22)} ${String(Math.round(rate(m))).padStart(6)}/s  ${((m.cpuMs * 1000) / m.opened).toFixed(0).padStart(4)} us CPU  ${m.rssPerSocket.toFixed(0).padStart(5)} B RSS  ${m.heapPerSocket.toFixed(0).padStart(5)} B JS heap`
  process.stdout.write(
    `${[
      `edge-upgrades: ${cove.opened} sockets from ${workers} client processes (${IN_FLIGHT} in flight each); per upgrade: connect, hello, ping/pong`,
      "  server                 upgrades    server CPU   per idle socket, after a full GC",
      row("bare uWS (baseline)", base),
      row("edge (JWT, sessions)", cove),
      `  edge/baseline: ${(rate(cove) / rate(base)).toFixed(2)}x the rate, ${(cove.cpuMs / base.cpuMs).toFixed(1)}x the CPU, ${(cove.rssPerSocket / Math.max(1, base.rssPerSocket)).toFixed(1)}x the RSS per socket`,
    ].join("\n")}\n`,
  )
  await new Promise<void>((resolve) => jwks.close(() => resolve()))
  await nats.stop()
  await rm(dir, { recursive: true, force: true })
}

const workerAt = process.argv.indexOf("--worker")
if (process.argv.includes("--bare")) {
  await bare()
} else if (workerAt >= 0) {
  await worker(JSON.parse(process.argv[workerAt + 1] ?? "{}") as WorkerArgs)
} else {
  await main(Number(process.argv[2] ?? "10000"), Number(process.argv[3] ?? "2"))
}
