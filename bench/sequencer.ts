/**
 * Sequencer throughput: events published to JetStream as edges publish them, then carried by
 * the connector to the persist function and stored in PostgreSQL with contiguous seqs. The
 * whole local stack runs (as `npm start` runs it); the baseline, in the same run, is the raw
 * JetStream publish loop that fills the stream. A script, not a test:
 * `npx tsx bench/sequencer.ts [messages=50000] [conversations=100]` after `npm run build`.
 */
import { randomUUID } from "node:crypto"
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "nats"
import pg from "pg"
import { inboundDedupId, subjects } from "../lib/protocol/subjects"
import { startProgram } from "../test/support/processes"

const root = join(import.meta.dirname, "..")
const total = Number(process.argv[2] ?? "50000")
const conversations = Number(process.argv[3] ?? "100")
const PATH = process.env.PATH ?? "/usr/bin:/bin"

const dir = await mkdtemp(join(tmpdir(), "cove-bench-seq-"))
await chmod(dir, 0o755)
const cove = startProgram(
  join(root, "node_modules/.bin/tsx"),
  ["infra/start.ts"],
  { PATH, LOG_LEVEL: "warn", COVE_DATA_DIR: dir, COVE_GATEWAY_PORT: "0", COVE_EDGE_PORT: "0" },
  root,
)
try {
  await cove.waitFor(/Cove is up/, 120_000)
  const gatewayUrl = (await cove.waitFor(/functions +(http:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const natsUrl = (await cove.waitFor(/nats +(nats:\/\/127\.0\.0\.1:\d+)/))[1] as string
  const pgPort = (await cove.waitFor(/postgres +postgres:\/\/cove:\*\*\*@127\.0\.0\.1:(\d+)/))[1] as string
  const password = (await readFile(join(dir, "postgres", "postgres-password"), "utf8")).trim()
  const db = new pg.Client({
    connectionString: `postgres://cove:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres`,
    options: "-c search_path=cove",
  })
  await db.connect()
  // Members as the auth and conversations functions would have made them.
  const users = Array.from({ length: 10 }, () => randomUUID())
  for (const [i, id] of users.entries()) {
    await db.query(
      "INSERT INTO users (id, username, username_key, password_hash, created_at) VALUES ($1, $2, $2, 'x', now())",
      [id, `user${i}`],
    )
  }
  const convs = Array.from({ length: conversations }, (_, i) => `bench-${i}`)
  for (const conv of convs) {
    await db.query(
      "INSERT INTO conversations (id, kind, title, created_by, created_at) VALUES ($1, 'group', $1, $2, now())",
      [conv, users[0]],
    )
    await db.query(
      "INSERT INTO conversation_members (conversation_id, user_id, role, joined_at) SELECT $1, unnest($2::uuid[]), 'member', now()",
      [conv, users],
    )
  }

  const nc = await connect({ servers: natsUrl })
  const js = nc.jetstream()
  const jsm = await nc.jetstreamManager()
  const partitions = (await jsm.streams.info("COVE_IN")).config.subjects.length
  const encoder = new TextEncoder()
  const started = performance.now()
  const inFlight = new Set<Promise<unknown>>()
  for (let i = 0; i < total; i++) {
    const conv = convs[i % convs.length] as string
    const from = users[i % users.length] as string
    const event = {
      v: 1,
      type: "message",
      id: randomUUID(),
      conv,
      from,
      body: { kind: "text", text: `message ${i} 你好` },
      ts: new Date().toISOString(),
    }
    const p = js.publish(subjects.inbound(conv, partitions), encoder.encode(JSON.stringify(event)), {
      msgID: inboundDedupId(event),
    })
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p))
    if (inFlight.size >= 2000) await Promise.race(inFlight)
  }
  await Promise.all(inFlight)
  const published = performance.now()
  for (;;) {
    const { rows } = await db.query<{ n: string }>(
      "SELECT coalesce(sum(last_seq), 0) AS n FROM conversation_heads",
    )
    if (Number(rows[0]?.n) >= total) break
    await new Promise((r) => setTimeout(r, 50))
  }
  const stored = performance.now()
  const gaps = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM (SELECT conversation_id, count(*) c, max(seq) m FROM messages GROUP BY conversation_id) x WHERE c <> m`,
  )
  const count = await db.query<{ n: string }>("SELECT count(*) AS n FROM messages")
  const metrics = await (await fetch(`${gatewayUrl}/metrics`)).text()
  const sum = (name: string) =>
    [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+(?:\\.\\d+)?)$`, "gm"))].reduce(
      (a, m) => a + Number(m[1]),
      0,
    )
  const batches = sum("cove_connector_batches_total")
  const publishRate = total / ((published - started) / 1000)
  const storeRate = total / ((stored - started) / 1000)
  process.stdout.write(
    `${[
      `raw JetStream publish loop (baseline): ${Math.round(publishRate)} msg/s (${total} messages, ${partitions} partitions)`,
      `published -> stored by connector + persist + PostgreSQL: ${Math.round(storeRate)} msg/s = ${(storeRate / publishRate).toFixed(2)}x baseline`,
      `stored ${count.rows[0]?.n} rows in ${conversations} conversations; conversations with a seq gap: ${gaps.rows[0]?.n}`,
      `connector batches: ${batches}, ${(total / batches).toFixed(1)} messages per batch on average, ${(
        (1000 * sum("cove_connector_batch_seconds_sum")) / batches
      ).toFixed(1)} ms per POST to the persist function (until its answer)`,
    ].join("\n")}\n`,
  )
  await nc.close()
  await db.end()
} finally {
  cove.child.kill("SIGINT")
  await cove.exited
  await rm(dir, { recursive: true, force: true })
}
