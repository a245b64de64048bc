/**
 * Authenticated upgrades per second and RSS per idle authenticated socket, with the edge
 * (gateway/main.ts) in its own process, NATS and a JWK Set on loopback, and the clients spread
 * over worker processes (20,000 open files per process here). A script, not a test:
 * `npx tsx bench/edge-upgrades.ts [sockets=10000] [workers=2]`.
 *
 * Each client connects with its own user's token, reads hello, and sends one ping (so that the
 * first-frame deadline does not close it), then stays idle. The rate counts all three steps.
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

/** Talks to the edge's inspector (CDP): a full GC, then process.memoryUsage(). */
async function connectInspector(child: ChildProcess): Promise<{ memory(): Promise<Memory>; close(): void }> {
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

async function main(total: number, workers: number): Promise<void> {
  const log = createLogger({ name: "bench", level: "warn" })
  const dir = await mkdtemp(join(tmpdir(), "cove-bench-"))
  const nats = await startNats({ port: await freePort(), storeDir: dir, log })
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { extractable: true })
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "EdDSA" }
  const jwks = createServer((_req, res) => res.end(JSON.stringify({ keys: [jwk] })))
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve))
  const port = await freePort()
  // The inspector lets the bench collect garbage in the edge before reading its memory.
  const edge = spawn(
    process.execPath,
    ["--inspect=127.0.0.1:0", "--import", "tsx", join(root, "gateway/main.ts")],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        LOG_LEVEL: "info",
        COVE_EDGE_PORT: String(port),
        NATS_URL: nats.url,
        COVE_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`,
      },
    },
  )
  const edgeLines = lines(edge)
  const inspector = await connectInspector(edge)
  for (;;) {
    const { value, done } = await edgeLines.next()
    if (done === true) throw new Error("the edge exited before listening")
    if (value.includes("edge listening")) break
  }
  // The edge's log is not needed past this point, but its pipe must keep draining.
  void (async () => {
    for (;;) if ((await edgeLines.next()).done === true) return
  })()
  const url = `ws://127.0.0.1:${port}/v1/ws`
  // Warm up: the first upgrade fetches the JWK Set and compiles the hot paths.
  const warm = await new Promise<WebSocket>((resolve) => {
    const ws = new WebSocket(url, { headers: { authorization: "Bearer x" } })
    ws.once("unexpected-response", () => resolve(ws))
    // terminate() below reports the refused handshake as an error: expected here.
    ws.on("error", () => undefined)
  })
  warm.terminate()
  const idle = await inspector.memory()

  const per = Math.ceil(total / workers)
  const privateJwk = await exportJWK(privateKey)
  const procs = Array.from({ length: workers }, (_, w) =>
    spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        import.meta.filename,
        "--worker",
        JSON.stringify({
          url,
          first: w * per,
          count: Math.min(per, total - w * per),
          jwk: privateJwk,
        } satisfies WorkerArgs),
      ],
      { cwd: root, stdio: ["pipe", "pipe", "inherit"] },
    ),
  )
  process.once("exit", () => {
    for (const p of [edge, ...procs]) p.kill("SIGKILL")
  })
  const its = procs.map(lines)
  await Promise.all(its.map(nextJson))
  const started = performance.now()
  const cpuBefore = cpuMs(edge.pid as number)
  for (const p of procs) p.stdin?.write("go\n")
  const reports = await Promise.all(its.map(nextJson))
  const wallMs = performance.now() - started
  const edgeCpuMs = cpuMs(edge.pid as number) - cpuBefore
  const opened = reports.reduce((n, r) => n + (r.opened ?? 0), 0)
  // Past the first-frame deadline (10 s), whose timers hold memory until they fire.
  await new Promise((r) => setTimeout(r, 12_000))
  const loaded = await inspector.memory()
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const connections = /cove_edge_connections (\d+)/.exec(metrics)?.[1]

  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
  const perSocket = (bytes: number) => (bytes / opened).toFixed(0)
  inspector.close()
  process.stdout.write(
    `${[
      `edge-upgrades: ${opened} authenticated sockets from ${workers} client processes, ${IN_FLIGHT} in flight each`,
      `  upgrades/s (connect + JWT verify + hello + ping/pong): ${Math.round(opened / (wallMs / 1000))} (${Math.round(wallMs)} ms wall)`,
      `  edge CPU per upgrade: ${((edgeCpuMs * 1000) / opened).toFixed(0)} us (${edgeCpuMs} ms for all; clients share the 2 cores)`,
      `  edge RSS after GC, idle: ${mib(idle.rss)} MiB; with ${connections} open sockets: ${mib(loaded.rss)} MiB`,
      `  per idle authenticated socket: ${perSocket(loaded.rss - idle.rss)} bytes RSS, of which ${perSocket(loaded.heapUsed - idle.heapUsed)} bytes JS heap`,
    ].join("\n")}\n`,
  )
  for (const p of procs) p.stdin?.end()
  edge.kill("SIGTERM")
  await new Promise((r) => edge.once("exit", r))
  await new Promise<void>((resolve) => jwks.close(() => resolve()))
  await nats.stop()
  await rm(dir, { recursive: true, force: true })
}

const workerAt = process.argv.indexOf("--worker")
if (workerAt >= 0) {
  await worker(JSON.parse(process.argv[workerAt + 1] ?? "{}") as WorkerArgs)
} else {
  await main(Number(process.argv[2] ?? "10000"), Number(process.argv[3] ?? "2"))
}
