/**
 * The control outbox: membership changes and revocations are queued with the change and
 * published to COVE_CONTROL (what the edges follow) in commit order, even when the publishing
 * process died after the commit or NATS could not be reached then. Real PostgreSQL and NATS; the
 * function's NATS connection goes through a TCP proxy that the test cuts.
 */
import { randomUUID } from "node:crypto"
import { connect, type JetStreamManager } from "nats"
import type pg from "pg"
import t from "tap"
import { ensureControlStream } from "../../gateway/control-events"
import { natsControlPublisher } from "../../lib/adapters/nats-control"
import { pgControlOutbox, queueControlEvent } from "../../lib/adapters/pg-control-outbox"
import { pgSessionStore } from "../../lib/adapters/pg-sessions"
import { inTransaction } from "../../lib/adapters/pg-transaction"
import type { ControlEvent } from "../../lib/ports"
import { collect } from "../support/auth"
import { eventually, testLog, withNats, withPostgres, withSchema } from "../support/servers"
import { withTcpProxy } from "../support/tcp-proxy"

type Kept = { subject: string; msgId: string | undefined; event: Record<string, unknown> }

/** Everything COVE_CONTROL holds, in stream order. */
async function kept(jsm: JetStreamManager): Promise<Kept[]> {
  const { state } = await jsm.streams.info("COVE_CONTROL")
  const out: Kept[] = []
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage("COVE_CONTROL", { seq })
    out.push({ subject: m.subject, msgId: m.header?.get("Nats-Msg-Id"), event: m.json() })
  }
  return out
}

function membership(conv: string, added: string[], removed: string[]): ControlEvent {
  return {
    kind: "membership",
    event: { type: "membership", id: randomUUID(), conv, added, removed, by: "owner" },
  }
}

/** Queues events as a change's transaction does, without publishing them (the process "died"). */
function queue(pool: pg.Pool, key: string, ...events: ControlEvent[]): Promise<void> {
  return inTransaction(pool, async (client) => {
    for (const e of events) await queueControlEvent(client, key, e)
  })
}

async function queued(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM control_outbox")
  return rows[0]?.n ?? -1
}

t.test("control events go out in commit order, however their first publish ended", async (t) => {
  const [pgServer, nats] = await Promise.all([withPostgres(t), withNats(t)])
  const { pool } = await withSchema(t, pgServer)
  const observer = await connect({ servers: nats.url })
  t.teardown(() => observer.close())
  const jsm = await observer.jetstreamManager()
  await ensureControlStream(jsm, 3_600_000, testLog)
  const proxy = await withTcpProxy(t, nats.port)
  const fnNc = await connect({ servers: proxy.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 })
  t.teardown(() => fnNc.close())
  const outbox = pgControlOutbox(pool, natsControlPublisher(fnNc, 300), testLog, { minAgeMs: 0 })
  t.teardown(() => outbox.stop())
  const users = ["u-ann", "u-ben", "u-cat", "u-dan"] as const

  await t.test(
    "a flushed change is stored by JetStream, told to the members, and leaves the outbox",
    async (t) => {
      const members = await collect(t, observer, "cove.deliver.conv-1")
      const change = membership("conv-1", [users[0], users[1]], [])
      await queue(pool, "conv-1", change)
      t.equal(await outbox.flush("conv-1"), true)
      const stream = await kept(jsm)
      t.same(
        stream.map((k) => [k.subject, k.event.added, k.event.removed]),
        [
          [`cove.user.${users[0]}.membership`, [users[0]], []],
          [`cove.user.${users[1]}.membership`, [users[1]], []],
        ],
        "each affected user's edges get their own copy",
      )
      t.match(stream[0]?.msgId, /^cove-control-\d+-0$/, "named for JetStream's dedup")
      t.equal(await queued(pool), 0)
      await eventually(async () => (members.length === 1 ? true : undefined), "the members' copy")
      t.same(members, [change.event])
    },
  )

  await t.test("a process that died after the commit: the relay publishes its events in order", async (t) => {
    const before = (await kept(jsm)).length
    await queue(pool, "conv-2", membership("conv-2", [users[2]], []))
    await queue(pool, "conv-2", membership("conv-2", [], [users[2]]))
    t.equal((await kept(jsm)).length, before, "nothing published yet")
    t.equal(await outbox.relay(), 1, "one key emptied")
    const after = (await kept(jsm)).slice(before)
    t.same(
      after.map((k) => [k.subject, k.event.added, k.event.removed]),
      [
        [`cove.user.${users[2]}.membership`, [users[2]], []],
        [`cove.user.${users[2]}.membership`, [], [users[2]]],
      ],
      "added, then removed: the edge ends with the user out",
    )
    t.equal(await queued(pool), 0)
  })

  await t.test("the next change of a conversation publishes what an earlier one left first", async (t) => {
    const before = (await kept(jsm)).length
    await queue(pool, "conv-3", membership("conv-3", [], [users[3]]))
    await queue(pool, "conv-3", membership("conv-3", [users[3]], []))
    // Three at once, as three instances would: each event once, in order.
    t.same(await Promise.all([outbox.flush("conv-3"), outbox.flush("conv-3"), outbox.flush("conv-3")]), [
      true,
      true,
      true,
    ])
    const after = (await kept(jsm)).slice(before)
    t.same(
      after.map((k) => [k.event.added, k.event.removed]),
      [
        [[], [users[3]]],
        [[users[3]], []],
      ],
    )
  })

  await t.test(
    "NATS out of reach: the change holds, its event waits, and is stored once when NATS is back",
    async (t) => {
      const before = (await kept(jsm)).length
      proxy.cut()
      await queue(pool, "conv-4", membership("conv-4", [], [users[0]]))
      t.equal(await outbox.flush("conv-4"), false, "no PubAck: the caller hears it was not published")
      t.equal(await queued(pool), 1, "the event stays queued")
      proxy.resume()
      outbox.start(50)
      await eventually(async () => ((await queued(pool)) === 0 ? true : undefined), "the relay")
      outbox.stop()
      // The first attempt, held in the client's buffer while it reconnected, and the relay's: one kept.
      await new Promise((resolve) => setTimeout(resolve, 200))
      const after = (await kept(jsm)).slice(before)
      t.same(
        after.map((k) => [k.subject, k.event.removed]),
        [[`cove.user.${users[0]}.membership`, [users[0]]]],
      )
    },
  )

  await t.test("a revocation and its notice are committed together; the notice follows", async (t) => {
    const sessions = pgSessionStore(pool)
    const user = randomUUID()
    const before = (await kept(jsm)).length
    proxy.cut()
    const notice = { type: "revoked", user, reason: "disabled" } as const
    t.equal(await sessions.revokeUser(user, "disabled", new Date(), notice), 0, "no sessions to revoke")
    t.equal(await outbox.flush(user), false)
    proxy.resume()
    await eventually(async () => ((await outbox.flush(user)) ? true : undefined), "NATS back")
    const after = (await kept(jsm)).slice(before)
    t.same(
      after.map((k) => [k.subject, k.event]),
      [[`cove.user.${user}.revoked`, notice]],
    )
    t.equal(await queued(pool), 0)
  })
})
