/**
 * Fan-out to one large group: a group of `members` (10,000 is the conversations function's cap)
 * with every member's socket open, half on each of two edges (separate processes), the sockets
 * held by client worker processes (20,000 open files per process here). One sender on edge A.
 * Reports send → first and → last delivery per message, deliveries/s, lost and duplicated, and
 * the NATS side: messages each edge received on the group's delivery subject per message sent,
 * which must be 1 whatever the group size (ARCHITECTURE invariant 5). Baseline in the same run:
 * the same sends to a 2-member conversation. A script, not a test:
 * `npx tsx bench/fanout.ts [members=10000] [messages=30] [burst=100] [workers=2]` after `npm run build`.
 *
 * One bench-only shortcut, because the real path takes too long here (docs/benchmarks.md):
 * members are inserted straight into PostgreSQL (a user and a login session each, as register +
 * login leave them) and their access tokens are signed with the stack's own signing key, opened
 * with the stack's key-encryption key as the auth function opens it: 10,000 scrypt hashes would
 * take ~40 minutes. The edges and the conversations function check every token as any other.
 * Everything else takes the real path: the group is created in one POST /function/conversations
 * (timed), and members connect with presence as it is (not announced in groups over
 * COVE_EDGE_PRESENCE_MAX_MEMBERS, so arrivals cost the group nothing).
 */
import { spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { connect as natsConnect } from "nats"
import pg from "pg"
import WebSocket from "ws"
import { signAccessToken } from "../functions/auth/access-tokens"
import { openSigningKey, parseKeyEncryptionKey } from "../functions/auth/signing-keys"
import { DEFAULT_AUDIENCE, DEFAULT_ISSUER } from "../lib/protocol/tokens"
import {
  cpuSeconds,
  functionPoster,
  metricSum,
  percentile,
  startTwoEdgeStack,
  UNLIMITED_EDGE_RATES,
} from "./two-edge-stack"

const IN_FLIGHT = 50
const DELIVERY_DEADLINE_MS = 30_000
/** Wall-clock ms with sub-ms precision, comparable across the bench's processes. */
const wallNow = () => performance.timeOrigin + performance.now()

type WorkerArgs = { url: string; tokens: string[]; messages: number }
const TEXT = Buffer.from('"text":"')
const PRESENCE = '"type":"presence"'

/**
 * Worker: opens one socket per token, then counts deliveries per message index without
 * decoding JSON (a client this cheap keeps the measurement on the server side). Commands on
 * stdin, answers and "message i fully delivered here" events as JSON lines on stdout.
 */
async function worker(args: WorkerArgs): Promise<void> {
  const n = args.tokens.length
  const m = args.messages
  const got = new Uint8Array(n * m)
  const count = new Uint32Array(m)
  const first = new Float64Array(m)
  const last = new Float64Array(m)
  const warmed = new Uint8Array(n)
  /** Sockets that opened: a message is fully delivered here when each of them has it. */
  let live = n
  let warmCount = 0
  let duplicates = 0
  /** Presence frames received: none are announced in a group over COVE_EDGE_PRESENCE_MAX_MEMBERS. */
  let presenceFrames = 0
  const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`)
  const onData = (socket: number, data: Buffer) => {
    const at = wallNow()
    const k = data.indexOf(TEXT)
    if (k < 0) return
    const tag = data[k + TEXT.length]
    if (tag === 0x77 /* w: warm-up */) {
      if (warmed[socket] === 0) {
        warmed[socket] = 1
        warmCount++
      }
      return
    }
    if (tag !== 0x66 /* f: measured */) return
    let i = 0
    for (let p = k + TEXT.length + 1; ; p++) {
      const c = data[p] as number
      if (c < 0x30 || c > 0x39) break
      i = i * 10 + c - 0x30
    }
    if (i >= m) return
    if (got[socket * m + i] === 1) {
      duplicates++
      return
    }
    got[socket * m + i] = 1
    const c = (count[i] as number) + 1
    count[i] = c
    if (c === 1) first[i] = at
    last[i] = at
    if (c === live) out({ done: i, first: first[i], last: last[i] })
  }
  const sockets: WebSocket[] = []
  let failed = 0
  let retries = 0
  /**
   * Close codes of the attempts retried: 1013, conversations not loaded in time; 1006, uWS
   * dropped a socket it had just upgraded (its 20.30 bug, docs/benchmarks.md).
   */
  const retryCodes: Record<string, number> = {}
  let closedAfterReady = 0
  // As a client would: a refused or closed attempt (1013 when the edge could not load the
  // user's conversations in time) is tried again after a pause, a few times.
  const open = (index: number, attempt = 0): Promise<void> =>
    new Promise<void>((resolve) => {
      const ws = new WebSocket(args.url, {
        headers: { authorization: `Bearer ${args.tokens[index]}` },
        perMessageDeflate: false,
        skipUTF8Validation: true,
      })
      sockets[index] = ws
      let ready = false
      ws.on("message", (data: Buffer) => {
        if (data.includes(PRESENCE)) presenceFrames++
        if (ready) onData(index, data)
        else if (data.includes('"hello"')) ws.send('{"type":"ping"}')
        else if (data.includes('"pong"')) {
          ready = true
          resolve()
        }
      })
      ws.on("error", () => undefined)
      ws.once("close", (code: number) => {
        if (ready) {
          closedAfterReady++
          return
        }
        if (attempt >= 5) {
          failed++
          resolve()
          return
        }
        retries++
        retryCodes[code] = (retryCodes[code] ?? 0) + 1
        setTimeout(() => resolve(open(index, attempt + 1)), 200 * 2 ** attempt)
      })
    })
  const started = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await open(next++)
    }),
  )
  live = n - failed
  out({ opened: live, ms: performance.now() - started, retries, retryCodes })
  for await (const line of createInterface({ input: process.stdin })) {
    const cmd = JSON.parse(line) as { cmd: string }
    if (cmd.cmd === "warm") out({ warm: warmCount })
    else if (cmd.cmd === "report")
      out({ report: { count: [...count], duplicates, closedAfterReady, presenceFrames } })
  }
  for (const ws of sockets) ws.terminate()
}

type Opened = { opened: number; ms: number; retries: number; retryCodes: Record<string, number> }

type WorkerHandle = {
  request(cmd: string): Promise<Record<string, unknown>>
  done(i: number): Promise<{ first: number; last: number } | undefined>
  opened: Promise<Opened>
  readonly pid: number
  stop(): void
}

function startWorker(argsFile: string): WorkerHandle {
  const proc = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "--worker", argsFile], {
    stdio: ["pipe", "pipe", "inherit"],
  })
  process.once("exit", () => proc.kill("SIGKILL"))
  const doneAt = new Map<number, { first: number; last: number }>()
  const doneWaiters = new Map<number, (v: { first: number; last: number }) => void>()
  let reply: ((o: Record<string, unknown>) => void) | undefined
  let openedResolve: (v: Opened) => void = () => undefined
  const opened = new Promise<Opened>((resolve) => {
    openedResolve = resolve
  })
  createInterface({ input: proc.stdout }).on("line", (line) => {
    if (!line.startsWith("{")) return
    const o = JSON.parse(line) as Record<string, unknown>
    if (typeof o.done === "number") {
      const v = { first: o.first as number, last: o.last as number }
      doneAt.set(o.done, v)
      doneWaiters.get(o.done)?.(v)
    } else if (typeof o.opened === "number") openedResolve(o as Opened)
    else reply?.(o)
  })
  return {
    opened,
    request(cmd) {
      return new Promise((resolve) => {
        reply = resolve
        proc.stdin.write(`${JSON.stringify({ cmd })}\n`)
      })
    },
    done(i) {
      const known = doneAt.get(i)
      if (known !== undefined) return Promise.resolve(known)
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(undefined), DELIVERY_DEADLINE_MS)
        doneWaiters.set(i, (v) => {
          clearTimeout(timer)
          resolve(v)
        })
      })
    },
    pid: proc.pid as number,
    stop: () => proc.stdin.end(),
  }
}

type Sender = { ws: WebSocket; onFrame: (data: string) => void }

async function openSender(url: string, token: string): Promise<Sender> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false })
  const sender: Sender = { ws, onFrame: () => undefined }
  ws.on("message", (data) => sender.onFrame(String(data)))
  await new Promise((resolve, reject) => {
    ws.once("open", resolve)
    ws.once("error", reject)
  })
  ws.send('{"type":"ping"}')
  return sender
}

function send(s: Sender, conv: string, text: string): number {
  const at = wallNow()
  s.ws.send(JSON.stringify({ type: "send", id: randomUUID(), conv, body: { kind: "text", text } }))
  return at
}

async function main(members: number, messages: number, burst: number, workerCount: number): Promise<void> {
  const stack = await startTwoEdgeStack(UNLIMITED_EDGE_RATES)
  const procs: WorkerHandle[] = []
  try {
    const post = functionPoster(stack.gateway)
    // The first account through the auth function: it also makes the stack's signing key.
    const admin = await post("auth/register", { username: "owner", password: "correct horse battery" })
    const ownerToken = admin.access_token as string

    // ---- bench-only shortcut: users and sessions in PostgreSQL, tokens signed with the stack's key
    const t0 = performance.now()
    const password = (await readFile(join(stack.dataDir, "postgres", "postgres-password"), "utf8")).trim()
    const db = new pg.Client({
      connectionString: `postgres://cove:${encodeURIComponent(password)}@127.0.0.1:${stack.pgPort}/postgres`,
      options: "-c search_path=cove",
    })
    await db.connect()
    const others = Array.from({ length: members }, () => ({ user: randomUUID(), session: randomUUID() }))
    const soloUser = others.pop() as { user: string; session: string }
    const everyone = [...others, soloUser]
    await db.query(
      `INSERT INTO users (id, username, username_key, password_hash, created_at)
       SELECT u, 'm' || i, 'm' || i, 'bench: no password', now() FROM unnest($1::uuid[]) WITH ORDINALITY AS x(u, i)`,
      [everyone.map((e) => e.user)],
    )
    await db.query(
      "INSERT INTO token_families (id, user_id, created_at) SELECT * FROM unnest($1::uuid[], $2::uuid[]), now()",
      [everyone.map((e) => e.session), everyone.map((e) => e.user)],
    )
    const key = await db.query<{
      kid: string
      public_jwk: Record<string, string>
      private_key_sealed: Buffer
      kek_id: string
      created_at: Date
    }>("SELECT * FROM signing_keys WHERE retired_at IS NULL")
    const row = key.rows[0]
    if (row === undefined) throw new Error("the auth function made no signing key")
    const kek = parseKeyEncryptionKey(
      await readFile(join(stack.dataDir, "generated-secrets", "auth-key-encryption-key"), "utf8"),
    )
    const signer = {
      kid: row.kid,
      privateKey: openSigningKey(
        {
          kid: row.kid,
          publicJwk: row.public_jwk,
          privateKeySealed: row.private_key_sealed,
          kekId: row.kek_id,
          createdAt: row.created_at,
        },
        kek,
      ),
    }
    const settings = { issuer: DEFAULT_ISSUER, audience: DEFAULT_AUDIENCE, accessTtlSeconds: 3600 }
    const tokenOf = (e: { user: string; session: string }, i: number) =>
      signAccessToken(
        signer,
        { userId: e.user, username: `m${i}`, sessionId: e.session, tokenId: randomUUID() },
        new Date(),
        settings,
      )
    const memberTokens = [ownerToken, ...(await Promise.all(others.map(tokenOf)))]
    const soloToken = await tokenOf(soloUser, members)
    const setupSeconds = (performance.now() - t0) / 1000

    await db.end()

    // ---- the group, through the conversations function as a client creates it: one request
    // naming the other members (9,999 ids fit its 512 KiB body limit in stack.yml)
    const t1 = performance.now()
    const created = await post(
      "conversations",
      { kind: "group", title: "fan-out", members: others.map((e) => e.user) },
      ownerToken,
    )
    const createSeconds = (performance.now() - t1) / 1000
    const group = created.id as string
    const direct = (await post("conversations", { kind: "direct", members: [soloUser.user] }, ownerToken))
      .id as string

    const nc = await natsConnect({ servers: stack.natsUrl })
    // What each publish on the group's delivery subject costs NATS: counted here, once.
    let groupPublishes = 0
    nc.subscribe(`cove.deliver.${group}`, {
      callback: () => {
        groupPublishes++
      },
    })
    await nc.flush()

    // ---- sockets: member i on edge A when i is even, on edge B when odd; spread over workers
    const t2 = performance.now()
    for (let w = 0; w < workerCount; w++) {
      const url = w % 2 === 0 ? stack.edgeA.url : stack.edgeB.url
      const tokens = memberTokens.filter((_, i) => i % workerCount === w)
      const file = join(stack.dataDir, `fanout-worker-${w}.json`)
      await writeFile(file, JSON.stringify({ url, tokens, messages: messages + burst }))
      procs.push(startWorker(file))
    }
    const opened = await Promise.all(procs.map((p) => p.opened))
    const connectSeconds = (performance.now() - t2) / 1000
    const socketCount = opened.reduce((a, o) => a + o.opened, 0)
    const onEdge = await Promise.all(
      [stack.edgeA, stack.edgeB].map((e) => metricSum(e.http, "cove_edge_connections")),
    )
    const sender = await openSender(stack.edgeA.url, ownerToken)
    const solo = await openSender(stack.edgeB.url, soloToken)

    // Every socket has joined the group's topic once it has received a delivery.
    let warmups = 0
    for (let ready = 0; ready < socketCount && warmups < 50; warmups++) {
      send(sender, group, `w${warmups}`)
      await new Promise((resolve) => setTimeout(resolve, 300))
      ready = (await Promise.all(procs.map((p) => p.request("warm")))).reduce(
        (a, o) => a + (o.warm as number),
        0,
      )
    }

    // The edges' CPU while nothing is sent: presence heartbeats, one KV put per user per 10 s.
    const idle0 = await Promise.all([cpuSeconds(stack.edgeA.pid), cpuSeconds(stack.edgeB.pid)])
    await new Promise((resolve) => setTimeout(resolve, 5_000))
    const idleCpu =
      ((await cpuSeconds(stack.edgeA.pid)) - idle0[0] + (await cpuSeconds(stack.edgeB.pid)) - idle0[1]) / 5

    // ---- baseline: the same sends, one at a time, to a 2-member conversation across the edges
    const baseline: number[] = []
    for (let i = 0; i < messages; i++) {
      const at = await new Promise<number>((resolve) => {
        let sentAt = 0
        solo.onFrame = (f) => {
          if (f.includes(`"text":"b${i}"`)) resolve(wallNow() - sentAt)
        }
        sentAt = send(sender, direct, `b${i}`)
      })
      baseline.push(at)
    }

    type Phase = {
      first: number[]
      last: number[]
      seconds: number
      edgeA: number
      edgeB: number
      cpuA: number
      cpuB: number
      cpuClients: number
    }
    const measure = async (indices: number[], together: boolean): Promise<Phase> => {
      // Deliveries counted by each edge, then the CPU seconds of the edges and the client processes.
      const counters = () =>
        Promise.all([
          metricSum(stack.edgeA.http, "cove_edge_deliveries_total"),
          metricSum(stack.edgeB.http, "cove_edge_deliveries_total"),
          cpuSeconds(stack.edgeA.pid),
          cpuSeconds(stack.edgeB.pid),
          ...procs.map((p) => cpuSeconds(p.pid)),
        ])
      const before = await counters()
      const first: number[] = []
      const last: number[] = []
      const started = wallNow()
      const sentAt = new Map<number, number>()
      const collect = async (i: number) => {
        const done = await Promise.all(procs.map((p) => p.done(i)))
        if (done.some((d) => d === undefined)) return
        const at = sentAt.get(i) as number
        first.push(Math.min(...done.map((d) => d?.first ?? 0)) - at)
        last.push(Math.max(...done.map((d) => d?.last ?? 0)) - at)
      }
      if (together) {
        for (const i of indices) sentAt.set(i, send(sender, group, `f${i}`))
        await Promise.all(indices.map(collect))
      } else {
        for (const i of indices) {
          sentAt.set(i, send(sender, group, `f${i}`))
          await collect(i)
        }
      }
      const seconds = (wallNow() - started) / 1000
      const after = await counters()
      const d = after.map((x, k) => x - (before[k] as number))
      return {
        first,
        last,
        seconds,
        edgeA: d[0] as number,
        edgeB: d[1] as number,
        cpuA: d[2] as number,
        cpuB: d[3] as number,
        cpuClients: d.slice(4).reduce((a, x) => a + x, 0),
      }
    }
    const publishesBefore = groupPublishes
    const one = await measure(
      Array.from({ length: messages }, (_, i) => i),
      false,
    )
    const many = await measure(
      Array.from({ length: burst }, (_, i) => messages + i),
      true,
    )
    const publishes = groupPublishes - publishesBefore
    const reports = await Promise.all(procs.map((p) => p.request("report")))
    const counts = reports.map((r) => (r.report as { count: number[] }).count)
    const delivered = counts.reduce((a, c) => a + c.reduce((x, y) => x + y, 0), 0)
    const duplicates = reports.reduce((a, r) => a + (r.report as { duplicates: number }).duplicates, 0)
    const dropped = reports.reduce(
      (a, r) => a + (r.report as { closedAfterReady: number }).closedAfterReady,
      0,
    )
    const retries = opened.reduce((a, o) => a + o.retries, 0)
    const retryCodes: Record<string, number> = {}
    for (const o of opened)
      for (const [code, n] of Object.entries(o.retryCodes)) retryCodes[code] = (retryCodes[code] ?? 0) + n
    const retried = Object.entries(retryCodes)
      .map(([code, n]) => `${n} closed with ${code}`)
      .join(", ")
    const presenceFrames = reports.reduce(
      (a, r) => a + (r.report as { presenceFrames: number }).presenceFrames,
      0,
    )
    const expected = socketCount * (messages + burst)

    const ms = (x: number) => `${x.toFixed(1)} ms`
    const pct = (xs: number[]) =>
      `p50 ${ms(percentile(xs, 50))}, p90 ${ms(percentile(xs, 90))}, p99 ${ms(percentile(xs, 99))}`
    const perEdge = (p: Phase, n: number) =>
      `edge A ${(p.edgeA / n).toFixed(2)}, edge B ${(p.edgeB / n).toFixed(2)} NATS messages received per message sent`
    const lines = [
      `setup: users, sessions and tokens by the bench shortcut in ${setupSeconds.toFixed(1)} s; the group of ${members} members created through POST /function/conversations in ${createSeconds.toFixed(2)} s`,
      `sockets: ${socketCount} of ${members} open (${onEdge[0]} on edge A, ${onEdge[1]} on edge B; ${workerCount} client processes) in ${connectSeconds.toFixed(1)} s = ${Math.round(socketCount / connectSeconds)}/s, ${retries} attempts retried${retries > 0 ? ` (${retried})` : ""}; ${warmups} warm-up messages until every socket had a delivery`,
      `baseline, 2-member conversation across the edges, one message at a time: send -> delivered ${pct(baseline)}`,
      `one message at a time (${messages}): send -> first delivery ${pct(one.first)}`,
      `  send -> last of ${socketCount} deliveries ${pct(one.last)} = ${(percentile(one.last, 50) / percentile(baseline, 50)).toFixed(1)}x baseline at p50`,
      `  ${Math.round((socketCount * one.last.length) / one.last.reduce((a, x) => a + x / 1000, 0))} deliveries/s while delivering; ${perEdge(one, messages)}`,
      `  CPU per socket delivery: edges ${(((one.cpuA + one.cpuB - idleCpu * one.seconds) / (socketCount * messages)) * 1e6).toFixed(2)} us (idle CPU of ${(idleCpu * 100).toFixed(0)} % of a core subtracted), client processes ${((one.cpuClients / (socketCount * messages)) * 1e6).toFixed(2)} us`,
      `burst of ${burst} messages sent at once: ${Math.round((socketCount * many.last.length) / many.seconds)} deliveries/s (${(many.seconds * 1000).toFixed(0)} ms from first send to last delivery)`,
      `  send -> first delivery ${pct(many.first)}; -> last delivery ${pct(many.last)}`,
      `  ${perEdge(many, burst)}; CPU per socket delivery: edges ${(((many.cpuA + many.cpuB - idleCpu * many.seconds) / (socketCount * burst)) * 1e6).toFixed(2)} us, client processes ${((many.cpuClients / (socketCount * burst)) * 1e6).toFixed(2)} us`,
      `NATS: ${publishes} publishes on the group's delivery subject for ${messages + burst} messages; each edge holds one subscription for its ${onEdge[0]} / ${onEdge[1]} sockets`,
      `lost ${expected - delivered} of ${expected} deliveries, duplicated ${duplicates}; sockets closed during the run ${dropped}; presence frames received by the members ${presenceFrames}`,
    ]
    process.stdout.write(`${lines.join("\n")}\n`)
    sender.ws.terminate()
    solo.ws.terminate()
    await nc.close()
  } finally {
    for (const p of procs) p.stop()
    await stack.stop()
  }
}

const workerAt = process.argv.indexOf("--worker")
if (workerAt >= 0) {
  await worker(JSON.parse(await readFile(process.argv[workerAt + 1] ?? "", "utf8")) as WorkerArgs)
} else {
  await main(
    Number(process.argv[2] ?? "10000"),
    Number(process.argv[3] ?? "30"),
    Number(process.argv[4] ?? "100"),
    Number(process.argv[5] ?? "2"),
  )
}
